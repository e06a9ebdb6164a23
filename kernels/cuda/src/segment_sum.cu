// UnsortedSegmentSum, deterministic: y[s, :] = Σ x[r, :] over the rows r with ids[r] = s, added in
// ascending r. The rows are sorted by id with CUB's radix sort, which is stable, so each segment's rows
// come out in ascending order; each segment's start is found by binary search; then one thread per
// (segment, column) adds its segment's rows in that order. No float atomics, and a frequent id (a common
// token in an embedding's gradient) costs one thread a long but coalesced and pipelined loop, instead of
// a scan of every row per segment. Ids outside [0, segments) sort after every segment and are dropped.
#include <cub/device/device_radix_sort.cuh>

#include "ops.h"

namespace ringlet {

namespace {

__global__ void segment_keys_kernel(const int32_t* ids, uint32_t* keys, int32_t* rows_of, int64_t rows,
                                    int64_t segments) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows; r += (int64_t)gridDim.x * blockDim.x) {
    const int32_t id = ids[r];
    keys[r] = id >= 0 && id < segments ? (uint32_t)id : (uint32_t)segments;
    rows_of[r] = (int32_t)r;
  }
}

// starts[s] = the first position of the sorted keys at or after s, for s in [0, segments].
__global__ void segment_starts_kernel(const uint32_t* sorted, int64_t rows, int32_t* starts, int64_t segments) {
  for (int64_t s = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; s <= segments;
       s += (int64_t)gridDim.x * blockDim.x) {
    int64_t lo = 0, hi = rows;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (sorted[mid] < (uint32_t)s)
        lo = mid + 1;
      else
        hi = mid;
    }
    starts[s] = (int32_t)lo;
  }
}

constexpr int THREADS = 256;

// Block b covers segment b / tiles, columns (b mod tiles)·THREADS..; four rows' loads in flight at a time,
// added in order.
__global__ void segment_sum_kernel(const float* x, const int32_t* order, const int32_t* starts, float* y, int64_t inner,
                                   int64_t tiles) {
  const int64_t s = blockIdx.x / tiles, col = (blockIdx.x % tiles) * THREADS + threadIdx.x;
  if (col >= inner) return;
  const int64_t begin = starts[s], end = starts[s + 1];
  float acc = 0;
  int64_t j = begin;
  for (; j + 4 <= end; j += 4) {
    const float a = x[order[j] * inner + col], b = x[order[j + 1] * inner + col];
    const float c = x[order[j + 2] * inner + col], d = x[order[j + 3] * inner + col];
    acc += a;
    acc += b;
    acc += c;
    acc += d;
  }
  for (; j < end; j++) acc += x[order[j] * inner + col];
  y[s * inner + col] = acc;
}

}  // namespace

void segment_sum(const float* x, const int32_t* ids, float* y, int64_t rows, int64_t inner, int64_t segments) {
  if (segments == 0 || inner == 0) return;
  if (rows == 0) {
    fill(y, DType::f32, 0, segments * inner);
    return;
  }
  if (rows >= INT32_MAX || segments >= INT32_MAX) throw Failure("unsortedSegmentSum: too many rows or segments");
  const int64_t tiles = (inner + THREADS - 1) / THREADS;
  if (segments * tiles > INT32_MAX) throw Failure("unsortedSegmentSum: too many segments for one launch");
  Context& c = ctx();
  Context::Scratch keys(c, 4 * rows), sorted_keys(c, 4 * rows), order_in(c, 4 * rows), order(c, 4 * rows);
  Context::Scratch starts(c, 4 * (segments + 1));
  c.launch("unsortedSegmentSum", dim3(blocks_for(rows, THREADS)), dim3(THREADS), 0, segment_keys_kernel, ids,
           keys.as<uint32_t>(), order_in.as<int32_t>(), rows, segments);
  int end_bit = 1;  // enough bits for the sentinel `segments`
  while (end_bit < 32 && (uint64_t{1} << end_bit) <= (uint64_t)segments) end_bit++;
  size_t temp_bytes = 0;
  check(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys.as<const uint32_t>(), sorted_keys.as<uint32_t>(),
                                        order_in.as<const int32_t>(), order.as<int32_t>(), (int)rows, 0, end_bit,
                                        c.stream),
        "unsortedSegmentSum: sort size");
  Context::Scratch temp(c, temp_bytes > 0 ? temp_bytes : 16);  // a null buffer would ask for the size again
  c.begin("unsortedSegmentSum (sort)");
  c.end("unsortedSegmentSum (sort)",
        cub::DeviceRadixSort::SortPairs(temp.as<void>(), temp_bytes, keys.as<const uint32_t>(),
                                        sorted_keys.as<uint32_t>(), order_in.as<const int32_t>(), order.as<int32_t>(),
                                        (int)rows, 0, end_bit, c.stream));
  c.launch("unsortedSegmentSum", dim3(blocks_for(segments + 1, THREADS)), dim3(THREADS), 0, segment_starts_kernel,
           sorted_keys.as<const uint32_t>(), rows, starts.as<int32_t>(), segments);
  c.launch("unsortedSegmentSum", dim3((unsigned)(segments * tiles)), dim3(THREADS), 0, segment_sum_kernel, x,
           order.as<const int32_t>(), starts.as<const int32_t>(), y, inner, tiles);
}

}  // namespace ringlet
