"""The Gloo peer of `ringlet bench allreduce`: PyTorch's CPU collective (what DDP uses on CPUs) summing
float32 buffers across N processes on loopback, timed as Ringlet's benchmark times its ring: per size one
warm-up, then `--iterations` all-reduces; per iteration the slowest rank's time, then the median. Bus
bandwidth as NCCL defines it: size / time x 2(N-1)/N. One thread per process. Checks each result (rank r
contributes r + 1, so every element must equal N(N+1)/2). Prints one JSON line.

Run: .venv/bin/python bench/peers/gloo_allreduce.py --workers 2 --sizes 1,4,16,64 --iterations 5
"""
import argparse
import json
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def upper_median(xs):
    # bench/median.ts takes the upper of the two middle values; so does this.
    return sorted(xs)[len(xs) // 2]


def rank_main(rank, n, port, sizes, iterations, results):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=n)
    seconds = []
    expected = n * (n + 1) / 2
    largest = torch.zeros(max(sizes) * (1 << 20) // 4)
    for _ in range(2):  # warm up at the largest size first, as Ringlet's benchmark does
        dist.all_reduce(largest)
    for mib in sizes:
        buf = torch.empty(mib * (1 << 20) // 4)
        for i in range(iterations + 1):
            buf.fill_(rank + 1)
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            if i > 0:
                seconds.append(time.perf_counter() - t0)
            if not bool((buf == expected).all()):
                raise RuntimeError(f"rank {rank}: all-reduce of {mib} MiB is not {expected} everywhere")
    results[rank] = seconds
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workers", default="2")
    p.add_argument("--sizes", default="1,4,16,64")
    p.add_argument("--iterations", type=int, default=5)
    a = p.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    rows = []
    for n in [int(x) for x in a.workers.split(",")]:
        manager = mp.Manager()
        results = manager.dict()
        mp.spawn(rank_main, args=(n, free_port(), sizes, a.iterations, results), nprocs=n, join=True)
        per_rank = [results[r] for r in range(n)]
        for s, mib in enumerate(sizes):
            slowest = [max(t[s * a.iterations + i] for t in per_rank) for i in range(a.iterations)]
            seconds = upper_median(slowest)
            rows.append({
                "workers": n,
                "size_mib": mib,
                "seconds": seconds,
                "busbw_bytes_per_s": mib * (1 << 20) / seconds * 2 * (n - 1) / n,
            })
        manager.shutdown()
    print(json.dumps({"torch_version": torch.__version__, "backend": "gloo", "threads_per_rank": 1, "rows": rows}))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
