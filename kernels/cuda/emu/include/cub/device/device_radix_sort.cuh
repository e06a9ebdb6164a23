// The emulator's CUB radix sort (kernels/cuda/src/segment_sum.cu): SortPairs as a stable sort on bits
// [begin_bit, end_bit) of the keys, with CUB's protocol: a null temp_storage asks for its size, and a call
// with less temporary storage than it asked for fails, as may inputs that overlap outputs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "../../cuda_runtime.h"

namespace cub {

struct DeviceRadixSort {
  template <typename Key, typename Value, typename NumItems>
  static cudaError_t SortPairs(void* temp_storage, size_t& temp_storage_bytes, const Key* keys_in, Key* keys_out,
                               const Value* values_in, Value* values_out, NumItems num_items, int begin_bit = 0,
                               int end_bit = sizeof(Key) * 8, cudaStream_t stream = 0) {
    (void)stream;
    const size_t n = num_items > 0 ? (size_t)num_items : 0;
    // As CUB asks: room for a second copy of the keys and values, and the histograms.
    const size_t needed = n * (sizeof(Key) + sizeof(Value)) + 4096;
    if (!temp_storage) {
      temp_storage_bytes = needed;
      return cudaSuccess;
    }
    if (temp_storage_bytes < needed) return ringlet_emu::fail(cudaErrorInvalidValue, "SortPairs: too little temp storage");
    if (begin_bit < 0 || end_bit > (int)sizeof(Key) * 8 || begin_bit >= end_bit)
      return ringlet_emu::fail(cudaErrorInvalidValue, "SortPairs: bad bit range");
    if (n == 0) return cudaSuccess;
    for (const void* p : {(const void*)keys_in, (const void*)keys_out, (const void*)values_in, (const void*)values_out,
                          (const void*)temp_storage})
      if (!ringlet_emu::device_buffer_of(p, 1)) return ringlet_emu::fail(cudaErrorInvalidValue, "SortPairs: not device memory");
    const auto overlaps = [n](const void* a, size_t ea, const void* b, size_t eb) {
      const auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
      return x < y + n * eb && y < x + n * ea;
    };
    if (overlaps(keys_in, sizeof(Key), keys_out, sizeof(Key)) ||
        overlaps(values_in, sizeof(Value), values_out, sizeof(Value)))
      return ringlet_emu::fail(cudaErrorInvalidValue, "SortPairs: inputs overlap outputs");
    using Bits = std::make_unsigned_t<Key>;
    const int width = end_bit - begin_bit;
    const Bits mask = width >= (int)sizeof(Bits) * 8 ? ~Bits{0} : (Bits)((Bits{1} << width) - 1);
    const auto digit = [&](size_t i) { return (Bits)(((Bits)keys_in[i] >> begin_bit) & mask); };
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return digit(a) < digit(b); });
    std::vector<Key> keys(n);
    std::vector<Value> values(n);
    for (size_t i = 0; i < n; i++) {
      keys[i] = keys_in[order[i]];
      values[i] = values_in[order[i]];
    }
    std::copy(keys.begin(), keys.end(), keys_out);
    std::copy(values.begin(), values.end(), values_out);
    return cudaSuccess;
  }
};

}  // namespace cub
