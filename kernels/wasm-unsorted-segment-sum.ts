// UnsortedSegmentSum for the wasm backend, which ships without it. tfjs uses it as the gradient of
// tf.gather, so without it an embedding lookup cannot be trained on wasm.
import { UnsortedSegmentSum, util } from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo, UnsortedSegmentSumAttrs } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

// out[s, ...] = sum of x[r, ...] over the rows r whose segment id is s. Segment ids index the
// leading dims of x (segmentIds.shape is a prefix of x.shape). Negative ids are dropped, as in
// TensorFlow; ids >= numSegments are an error.
const unsortedSegmentSum: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as BackendWasm;
  const x = inputs.x as TensorInfo;
  const segmentIds = inputs.segmentIds as TensorInfo;
  const { numSegments } = attrs as unknown as UnsortedSegmentSumAttrs;

  const idRank = segmentIds.shape.length;
  if (!segmentIds.shape.every((dim, i) => dim === x.shape[i])) {
    throw new Error(`UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`);
  }
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`UnsortedSegmentSum: numSegments must be a non-negative integer, got ${numSegments}`);
  }
  const innerShape = x.shape.slice(idRank);
  const innerSize = util.sizeFromShape(innerShape);
  const rows = util.sizeFromShape(segmentIds.shape);

  const out = wasm.makeOutput([numSegments, ...innerShape], x.dtype);
  // Views are taken only after makeOutput: allocating can grow the wasm heap, which detaches
  // any typed array made over the old buffer.
  const outVals = wasm.typedArrayFromHeap(out);
  const xVals = wasm.typedArrayFromHeap(x);
  const ids = wasm.typedArrayFromHeap(segmentIds);
  // The heap block may be reused memory.
  outVals.fill(0);
  for (let r = 0; r < rows; r++) {
    const segment = ids[r];
    if (segment < 0) continue;
    if (segment >= numSegments) {
      wasm.disposeData(out.dataId);
      throw new Error(`UnsortedSegmentSum: segment id ${segment} at row ${r} is >= numSegments ${numSegments}`);
    }
    const src = r * innerSize;
    const dst = segment * innerSize;
    for (let j = 0; j < innerSize; j++) outVals[dst + j] += xVals[src + j];
  }
  return out;
};

export const wasmUnsortedSegmentSumConfig: KernelConfig = {
  kernelName: UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSum,
};
