"""The PyTorch peer of `ringlet bench train`: exactly Ringlet's architecture (lm/model.ts) and step
(train/step.ts): tied embedding, RMSNorm, RoPE on the two halves of each head, causal grouped-query
attention, SwiGLU, no biases; mean cross-entropy; global-norm clipping to 1.0; AdamW (beta 0.9/0.95,
decay 0.1 on matrices only). Random tokens, like Ringlet's benchmark. Prints one JSON line.

On a GPU (--device cuda, the GPU check scripts/gpu-check.sh): --precision tf32 (matmuls on TF32 tensor cores)
or bf16 (autocast), --compile none|default|max-autotune-no-cudagraphs|reduce-overhead, --attention sdpa
(PyTorch's fused causal attention, as a practitioner would write it; math is the explicit T×T softmax).
Steps are timed between torch.cuda.synchronize calls; the JSON adds the median step and the peak memory.

Run: .venv/bin/python bench/peers/torch_train.py --d-model 128 --n-layers 4 --n-heads 4 --n-kv-heads 4 \
       --ffn-hidden 352 --context 128 --vocab 4096 --batch 16 --steps 10 --threads 1
     python3 bench/peers/torch_train.py ... --device cuda --precision bf16 --compile reduce-overhead \
       --attention sdpa --warmup-steps 3 --steps 10
"""
import argparse
import contextlib
import json
import math
import resource
import statistics
import time

import torch
import torch.nn.functional as F


def rms_norm(x, g, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def rope(x, cos, sin):  # x [B, H, T, hd]
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Model(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        d, hd = a.d_model, a.d_model // a.n_heads
        kv = a.n_kv_heads * hd
        P = lambda *s, std=0.02: torch.nn.Parameter(torch.randn(*s) * std)
        self.emb = P(a.vocab, d)
        rs = 0.02 / math.sqrt(2 * a.n_layers)
        self.layers = torch.nn.ModuleList()
        for _ in range(a.n_layers):
            l = torch.nn.Module()
            l.attn_norm = torch.nn.Parameter(torch.ones(d))
            l.wq, l.wk, l.wv, l.wo = P(d, d), P(d, kv), P(d, kv), P(d, d, std=rs)
            l.mlp_norm = torch.nn.Parameter(torch.ones(d))
            l.w_gate, l.w_up, l.w_down = P(d, a.ffn_hidden), P(d, a.ffn_hidden), P(a.ffn_hidden, d, std=rs)
            self.layers.append(l)
        self.final_norm = torch.nn.Parameter(torch.ones(d))
        half = hd // 2
        t = torch.arange(a.context, dtype=torch.float64)[:, None]
        ang = t * torch.pow(torch.tensor(float(a.rope_theta), dtype=torch.float64), -torch.arange(half, dtype=torch.float64) / half)
        self.register_buffer("cos", torch.cos(ang).float())
        self.register_buffer("sin", torch.sin(ang).float())
        self.register_buffer("mask", torch.full((a.context, a.context), float("-inf")).triu(1))

    def forward(self, tokens):
        a = self.a
        B, T = tokens.shape
        H, Hkv, hd = a.n_heads, a.n_kv_heads, a.d_model // a.n_heads
        x = self.emb[tokens.reshape(-1)]
        for l in self.layers:
            h = rms_norm(x, l.attn_norm, a.norm_eps)
            q = (h @ l.wq).view(B, T, H, hd).transpose(1, 2)
            k = (h @ l.wk).view(B, T, Hkv, hd).transpose(1, 2)
            v = (h @ l.wv).view(B, T, Hkv, hd).transpose(1, 2)
            q, k = rope(q, self.cos[:T], self.sin[:T]), rope(k, self.cos[:T], self.sin[:T])
            if a.attention == "sdpa":
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=H != Hkv)
            else:
                qg = q.reshape(B, Hkv, (H // Hkv) * T, hd)
                s = qg @ k.transpose(-1, -2) / math.sqrt(hd) + self.mask[:T, :T].repeat(H // Hkv, 1)
                o = (torch.softmax(s, -1) @ v).reshape(B, H, T, hd)
            o = o.transpose(1, 2).reshape(B * T, a.d_model)
            x = x + o @ l.wo
            h = rms_norm(x, l.mlp_norm, a.norm_eps)
            x = x + (F.silu(h @ l.w_gate) * (h @ l.w_up)) @ l.w_down
        return rms_norm(x, self.final_norm, a.norm_eps) @ self.emb.t()


COMPILE_MODES = ["none", "default", "max-autotune-no-cudagraphs", "reduce-overhead"]


def compile_mode(value):
    """A torch.compile mode, or None for eager; 0 and 1 (the flag's earlier values) mean none and default."""
    value = {"0": "none", "1": "default"}.get(value, value)
    if value not in COMPILE_MODES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(COMPILE_MODES)}")
    return None if value == "none" else value


def add_model_args(p):
    """Ringlet's model dimensions and the batch, as `ringlet bench` passes them (bench/peers.ts)."""
    for name, default in [("d-model", 128), ("n-layers", 4), ("n-heads", 4), ("n-kv-heads", 4), ("ffn-hidden", 352),
                          ("context", 128), ("vocab", 4096), ("batch", 16), ("steps", 10), ("warmup-steps", 2), ("threads", 1)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--norm-eps", type=float, default=1e-5)
    p.add_argument("--compile", type=compile_mode, default=None,
                   help="torch.compile mode of the model (inductor; C++ on CPU): " + ", ".join(COMPILE_MODES))
    p.add_argument("--attention", choices=["math", "sdpa"], default="math")


def adamw(model):
    decayed = [p for n, p in model.named_parameters() if p.dim() >= 2 and n != "emb"]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and n != "emb")]
    return torch.optim.AdamW([{"params": decayed, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                             lr=1e-3, betas=(0.9, 0.95), eps=1e-8)


def timed_steps(a, model, forward, batch, seed, device="cpu", bf16=False):
    """Warm-up steps, then `a.steps` timed steps of AdamW on random tokens; returns each step's seconds.
    The tokens are drawn on the host, as Ringlet's benchmark draws them, and copied to `device`; with bf16
    the forward pass and loss run under autocast."""
    opt = adamw(model)
    gen = torch.Generator().manual_seed(seed)
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step():
        inputs = torch.randint(0, a.vocab, (batch, a.context), generator=gen).to(device, non_blocking=True)
        targets = torch.randint(0, a.vocab, (batch * a.context,), generator=gen).to(device, non_blocking=True)
        autocast = torch.autocast(device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with autocast:
            loss = F.cross_entropy(forward(inputs), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.detach()

    for _ in range(a.warmup_steps):
        step()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def main():
    p = argparse.ArgumentParser()
    add_model_args(p)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default=None,
                   help="matmul precision: fp32 (default on cpu), tf32 (default on cuda), bf16 autocast")
    a = p.parse_args()
    precision = a.precision or ("tf32" if a.device == "cuda" else "fp32")
    if precision == "tf32" and a.device != "cuda":
        p.error("--precision tf32 needs --device cuda")
    torch.set_num_threads(a.threads)
    # TF32 also for bf16: what autocast leaves in fp32 (the optimizer, norms) is not a matmul, but no product is left out.
    torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
    torch.backends.cudnn.allow_tf32 = precision != "fp32"
    torch.manual_seed(1)
    model = Model(a).to(a.device)  # drawn on the host: the same weights on every device
    forward = torch.compile(model, mode=a.compile) if a.compile else model
    times = timed_steps(a, model, forward, a.batch, seed=7, device=a.device, bf16=precision == "bf16")
    tokens_per_step = a.batch * a.context
    print(json.dumps({
        "torch_version": torch.__version__,
        "device": torch.cuda.get_device_name() if a.device == "cuda" else "cpu",
        "precision": precision,
        "compile": a.compile or "none",
        "attention": a.attention,
        "threads": torch.get_num_threads(),
        "compiled": bool(a.compile),
        "params": sum(p.numel() for p in model.parameters()),
        "warmup_steps": a.warmup_steps,
        "steps": a.steps,
        "tokens_per_s": tokens_per_step * a.steps / sum(times),
        "tokens_per_s_median": tokens_per_step / statistics.median(times),
        "step_s_median": statistics.median(times),
        "step_s_min": min(times),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        **({"peak_memory_bytes": torch.cuda.max_memory_allocated()} if a.device == "cuda" else {}),
    }))


if __name__ == "__main__":
    main()
