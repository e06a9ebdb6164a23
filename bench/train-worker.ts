// One data-parallel worker of `ringlet bench train --workers N`, in a worker thread: it trains on its own
// batches and averages gradients with the other workers through shared memory before each AdamW step
// (the in-process stand-in for the ring all-reduce).
import { workerData, parentPort } from 'node:worker_threads';
import { runThroughput, type WorkerShared } from './train-throughput.js';

const result = await runThroughput(workerData.options, workerData.shared as WorkerShared);
parentPort!.postMessage(result);
