// `ringlet bench train --backend cuda` without a GPU: the same benchmark on the cuda backend over the host
// Device (kernels/cuda/host-device.ts), so its cuda-only figures (device, precision, peak_tflops,
// cpu_fallback_ops) are computed by the code a GPU run takes. The host device is no GPU the datasheet table
// knows: its peak and MFU are null, which is what a GPU missing from the table also gets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostDevice } from '../kernels/cuda/host-device.js';
import { benchTrainThroughput } from '../bench/train-throughput.js';
import { nativeTestSkip } from './native-addon.js';

test(
  'bench train on the cuda backend reports the device, precision, its peak and the CPU fallbacks',
  { skip: nativeTestSkip() },
  async () => {
    const device = new HostDevice();
    const r = await benchTrainThroughput({
      preset: 'nano',
      backend: 'cuda',
      precision: 'bf16',
      device,
      batchSize: 2,
      steps: 2,
      warmupSteps: 1,
    });
    assert.equal(r.backend, 'cuda');
    assert.equal(r.device, device.info().name);
    assert.equal(r.precision, 'bf16');
    assert.equal(r.peak_tflops, null);
    assert.equal(r.mfu, null);
    assert.equal(r.cpu_fallback_ops, 0, 'a training step runs every op on the device');
    assert.ok(r.tokens_per_s > 0);
    assert.ok(!('peak_gflops_per_core' in r), 'no CPU peak is measured for a GPU run');
  },
);
