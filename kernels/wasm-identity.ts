// Identity (tf.clone) for the wasm backend without a copy. tfjs clones every tensor a custom gradient
// saves for its backward pass, and the stock wasm kernel copies the data each time: in a training step
// of the 1.3M preset that was ~26 ms of ~320 (the fused cross-entropy alone saves the whole logits).
// No wasm kernel writes into its inputs, so the clone can share the buffer under the backend's reference
// count, exactly as the stock Reshape does.
import { Identity } from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

const identity: KernelFunc = ({ inputs, backend }) => {
  const x = inputs.x as TensorInfo;
  (backend as BackendWasm).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

export const wasmSharedIdentityConfig: KernelConfig = { kernelName: Identity, backendName: 'wasm', kernelFunc: identity };
