"""The PyTorch peer of `ringlet bench train`: exactly Ringlet's architecture (lm/model.ts) and step
(train/step.ts): tied embedding, RMSNorm, RoPE on the two halves of each head, causal grouped-query
attention, SwiGLU, no biases; mean cross-entropy; global-norm clipping to 1.0; AdamW (beta 0.9/0.95,
decay 0.1 on matrices only). Random tokens, like Ringlet's benchmark. Prints one JSON line.

Run: .venv/bin/python bench/peers/torch_train.py --d-model 128 --n-layers 4 --n-heads 4 --n-kv-heads 4 \
       --ffn-hidden 352 --context 128 --vocab 4096 --batch 16 --steps 10 --threads 1
"""
import argparse
import json
import math
import resource
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
            qg = q.reshape(B, Hkv, (H // Hkv) * T, hd)
            s = qg @ k.transpose(-1, -2) / math.sqrt(hd) + self.mask[:T, :T].repeat(H // Hkv, 1)
            o = (torch.softmax(s, -1) @ v).reshape(B, H, T, hd).transpose(1, 2).reshape(B * T, a.d_model)
            x = x + o @ l.wo
            h = rms_norm(x, l.mlp_norm, a.norm_eps)
            x = x + (F.silu(h @ l.w_gate) * (h @ l.w_up)) @ l.w_down
        return rms_norm(x, self.final_norm, a.norm_eps) @ self.emb.t()


def add_model_args(p):
    """Ringlet's model dimensions and the batch, as `ringlet bench` passes them (bench/peers.ts)."""
    for name, default in [("d-model", 128), ("n-layers", 4), ("n-heads", 4), ("n-kv-heads", 4), ("ffn-hidden", 352),
                          ("context", 128), ("vocab", 4096), ("batch", 16), ("steps", 10), ("warmup-steps", 2), ("threads", 1)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--norm-eps", type=float, default=1e-5)
    p.add_argument("--compile", type=int, default=0, help="1: torch.compile the model (inductor, C++ on CPU)")


def adamw(model):
    decayed = [p for n, p in model.named_parameters() if p.dim() >= 2 and n != "emb"]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and n != "emb")]
    return torch.optim.AdamW([{"params": decayed, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                             lr=1e-3, betas=(0.9, 0.95), eps=1e-8)


def timed_steps(a, model, forward, batch, seed):
    """Warm-up steps, then `a.steps` timed steps of AdamW on random tokens; returns each step's seconds."""
    opt = adamw(model)
    gen = torch.Generator().manual_seed(seed)

    def step():
        inputs = torch.randint(0, a.vocab, (batch, a.context), generator=gen)
        targets = torch.randint(0, a.vocab, (batch * a.context,), generator=gen)
        loss = F.cross_entropy(forward(inputs), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup_steps):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def main():
    p = argparse.ArgumentParser()
    add_model_args(p)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = Model(a)
    forward = torch.compile(model) if a.compile else model
    times = timed_steps(a, model, forward, a.batch, seed=7)
    tokens = a.batch * a.context * a.steps
    print(json.dumps({
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "compiled": bool(a.compile),
        "params": sum(p.numel() for p in model.parameters()),
        "tokens_per_s": tokens / sum(times),
        "step_s_min": min(times),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    main()
