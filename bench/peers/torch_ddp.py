"""The PyTorch peer of `ringlet bench scaling`: DDP strong scaling on the model of torch_train.py. The same
global batch (`--batch` windows per optimizer step) on 1 process, then split over `--workers` processes
that average their gradients with DDP over Gloo on loopback; one thread per process. Reports tokens/s of
each and the speedup; `--repeats` alternates the two runs and takes the median of the pairs' speedups, as
Ringlet's benchmark does. Prints one JSON line.

Run: .venv/bin/python bench/peers/torch_ddp.py --batch 16 --steps 10 --workers 2 [--compile 1]
"""
import argparse
import json
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from torch_train import Model, add_model_args, timed_steps


def rank_main(rank, a, port, results):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=a.workers)
    torch.manual_seed(1)
    model = Model(a)
    ddp = DistributedDataParallel(model)
    forward = torch.compile(ddp) if a.compile else ddp
    times = timed_steps(a, model, forward, a.batch // a.workers, seed=7 + rank)
    # Replicas must agree after training, or this is not data parallelism.
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    copies = [torch.empty_like(flat) for _ in range(a.workers)]
    dist.all_gather(copies, flat)
    results[rank] = {"seconds": sum(times), "identical": all(torch.equal(c, flat) for c in copies)}
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_process(a):
    torch.set_num_threads(1)
    torch.manual_seed(1)
    model = Model(a)
    forward = torch.compile(model) if a.compile else model
    return sum(timed_steps(a, model, forward, a.batch, seed=7))


def ddp(a):
    results = mp.Manager().dict()
    mp.spawn(rank_main, args=(a, free_port(), results), nprocs=a.workers, join=True)
    if not all(results[r]["identical"] for r in range(a.workers)):
        raise RuntimeError("DDP replicas differ after training")
    return max(results[r]["seconds"] for r in range(a.workers))  # ranks step in lockstep: the slowest


def main():
    p = argparse.ArgumentParser()
    add_model_args(p)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    if a.batch % a.workers:
        raise SystemExit(f"--batch {a.batch} does not split evenly over {a.workers} workers")
    tokens = a.batch * a.context * a.steps
    pairs = [(tokens / one_process(a), tokens / ddp(a)) for _ in range(a.repeats)]
    speedups = sorted(two / one for one, two in pairs)
    print(json.dumps({
        "torch_version": torch.__version__,
        "compiled": bool(a.compile),
        "workers": a.workers,
        "global_batch": a.batch,
        "tokens_per_s_1": sorted(one for one, _ in pairs)[len(pairs) // 2],
        "tokens_per_s_n": sorted(two for _, two in pairs)[len(pairs) // 2],
        "speedup": speedups[len(speedups) // 2],
        "speedups": [two / one for one, two in pairs],
    }))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
