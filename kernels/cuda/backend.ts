// The `cuda` TensorFlow.js backend: tensors live in device memory behind the Device interface
// (kernels/cuda/device.ts: the CUDA addon on a GPU, kernels/cuda/host-device.ts in tests), and kernels
// (kernels/cuda/kernels.ts) launch device kernels on them. readSync copies a tensor back. Identity and Reshape
// share a buffer under a reference count, as the cpu and wasm backends do.
import * as tf from '@tensorflow/tfjs';
import { KernelBackend, util } from '@tensorflow/tfjs';
import type { BackendTimingInfo, BackendValues, DataId, DataType, TensorInfo } from '@tensorflow/tfjs';
import type { DeviceDType, DevicePtr, Device } from './device.js';
import { registerCudaKernels } from './kernels.js';
import { cpuFallbackCounts, cpuFallbacksSince, registerCpuFallbacks } from './fallback.js';

export { cpuFallbackCounts, cpuFallbacksSince };

interface TensorData {
  ptr: DevicePtr; // 0 for an empty tensor: nothing is allocated
  dtype: DeviceDType;
  size: number;
  refCount: number;
}

/** A tfjs dtype as the device stores it; string and complex64 have no device form. */
function deviceDType(dtype: DataType): DeviceDType {
  if (dtype === 'float32' || dtype === 'int32' || dtype === 'bool') return dtype;
  throw new Error(`the cuda backend has no ${dtype} tensors (only float32, int32 and bool)`);
}

/** Values in the element type the device stores: float32, or int32 (bool as 0/1). */
function deviceArray(values: BackendValues, dtype: DeviceDType): Float32Array | Int32Array {
  if (dtype === 'float32') return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
  return values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
}

export class CudaBackend extends KernelBackend {
  private readonly data = new Map<DataId, TensorData>();
  // Constant tables uploaded once per host array (RoPE's cos and sin), freed when the array is collected.
  private readonly constants = new WeakMap<Float32Array, DevicePtr>();
  private readonly constantPtrs = new Set<DevicePtr>();
  private readonly freeConstant = new FinalizationRegistry<DevicePtr>((ptr) => {
    if (this.constantPtrs.delete(ptr)) this.device.free(ptr);
  });

  constructor(readonly device: Device) {
    super();
  }

  override write(values: BackendValues | null, shape: number[], dtype: DataType): DataId {
    const dataId = {};
    this.move(dataId, values, shape, dtype, 1);
    return dataId;
  }

  override move(dataId: DataId, values: BackendValues | null, shape: number[], dtype: DataType, refCount: number): void {
    const deviceType = deviceDType(dtype);
    const size = util.sizeFromShape(shape);
    const ptr = size > 0 ? this.device.alloc(size * 4) : 0;
    if (values != null && size > 0) this.device.upload(ptr, deviceArray(values, deviceType));
    this.data.set(dataId, { ptr, dtype: deviceType, size, refCount });
  }

  /** A tensor of `shape`, uploaded from `values`, or uninitialised (for a kernel to write) without them. */
  makeTensorInfo(shape: number[], dtype: DataType, values?: BackendValues): TensorInfo {
    return { dataId: this.write(values ?? null, shape, dtype), shape, dtype };
  }

  /** A second tensor on x's buffer (Identity, Reshape): no copy, one more reference. */
  share(x: TensorInfo, shape: number[] = x.shape): TensorInfo {
    this.incRef(x.dataId);
    return { dataId: x.dataId, shape, dtype: x.dtype };
  }

  /** The device buffer of a tensor (0 when it is empty). */
  ptr(t: TensorInfo): DevicePtr {
    return this.get(t.dataId).ptr;
  }

  /** The device buffer holding `values`, uploaded on first use and kept while the array lives. */
  constant(values: Float32Array): DevicePtr {
    let ptr = this.constants.get(values);
    if (ptr === undefined) {
      ptr = this.device.alloc(Math.max(values.length, 1) * 4);
      if (values.length > 0) this.device.upload(ptr, values);
      this.constants.set(values, ptr);
      this.constantPtrs.add(ptr);
      this.freeConstant.register(values, ptr);
    }
    return ptr;
  }

  /** The tensor's record; one that lives on another backend is moved here first (tfjs's data mover). */
  private get(dataId: DataId): TensorData {
    if (!this.data.has(dataId)) tf.engine().moveData(this, dataId);
    const d = this.data.get(dataId);
    if (!d) throw new Error('cuda backend: a tensor it does not hold (disposed?)');
    return d;
  }

  override refCount(dataId: DataId): number {
    return this.data.get(dataId)?.refCount ?? 0;
  }

  override incRef(dataId: DataId): void {
    this.get(dataId).refCount++;
  }

  override numDataIds(): number {
    return this.data.size;
  }

  override readSync(dataId: DataId): BackendValues {
    const { ptr, dtype, size } = this.get(dataId);
    const values = dtype === 'float32' ? new Float32Array(size) : new Int32Array(size);
    if (size > 0) this.device.download(ptr, values);
    return dtype === 'bool' ? Uint8Array.from(values) : values;
  }

  override async read(dataId: DataId): Promise<BackendValues> {
    return this.readSync(dataId);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const d = this.data.get(dataId);
    if (!d) return true;
    d.refCount--;
    if (!force && d.refCount > 0) return false;
    if (d.ptr !== 0) this.device.free(d.ptr);
    this.data.delete(dataId);
    return true;
  }

  override memory(): { unreliable: boolean; numBytesInGPU: number; numBytesInGPUAllocated: number } {
    const { inUseBytes, reservedBytes } = this.device.memory();
    return { unreliable: false, numBytesInGPU: inUseBytes, numBytesInGPUAllocated: reservedBytes };
  }

  /** Wall time of f with the device synced before and after, so its kernels are inside the measure. */
  override async time(f: () => void): Promise<BackendTimingInfo> {
    this.device.sync();
    const start = util.now();
    f();
    this.device.sync();
    return { kernelMs: util.now() - start };
  }

  override floatPrecision(): 32 {
    return 32;
  }

  override epsilon(): number {
    return 1e-7;
  }

  override dispose(): void {
    for (const d of this.data.values()) if (d.ptr !== 0) this.device.free(d.ptr);
    this.data.clear();
    for (const ptr of this.constantPtrs) this.device.free(ptr);
    this.constantPtrs.clear();
  }
}

let registeredDevice: Device | null = null;

/**
 * Registers the tfjs backend 'cuda' on `device`, its kernels, and the CPU fallback for every other kernel
 * tfjs has; tf.setBackend('cuda') then activates it. Idempotent (a second call keeps the first device).
 * Its priority is below cpu's, so it is never picked unasked.
 */
export function registerCudaBackend(device: Device): void {
  if (registeredDevice) return;
  registerCudaKernels();
  registerCpuFallbacks();
  tf.registerBackend('cuda', () => new CudaBackend(device), 0);
  registeredDevice = device;
}

/** The device of the registered 'cuda' backend, or null before registerCudaBackend. */
export function cudaDevice(): Device | null {
  return registeredDevice;
}
