"""Re-derives the golden fixtures' forward results with plain NumPy (float64), no PyTorch.

    bench/.venv/bin/python bench/reference/check_golden.py [--dir DIR]

A second, independent reading of the spec: the forward pass and both losses are written
out here again in NumPy and compared with expected.safetensors; a sample of the stored
gradients is checked by central finite differences of that NumPy loss. Exits 1 on a mismatch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]


def layer_norm(x, w, b, eps=1e-5):
    """LayerNorm over the last axis (biased variance)."""
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def linear(p, name, x):
    """x @ W.T + b for the parameters `{name}.weight` [out, in] and `{name}.bias`."""
    return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]


def log_softmax(x):
    """Log-softmax over the last axis."""
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def forward(p, cfg, b):
    """→ encoded [B,L,H], mlm_logits [B,P,V], nsp_logits [B,2], mlm_loss, nsp_loss (dropout off)."""
    B, L, P, H, nh = b["batchSize"], b["seqLen"], b["numPreds"], cfg["hidden"], cfg["heads"]
    d = H // nh
    tok = np.array(b["tokens"]).reshape(B, L)
    seg = np.array(b["segments"]).reshape(B, L)
    valid = np.arange(L)[None, :] < np.array(b["validLens"])[:, None]  # [B,L]
    x = p["encoder.token_embedding.weight"][tok] + p["encoder.segment_embedding.weight"][seg] + p["encoder.pos_embedding"][:L]
    for i in range(cfg["layers"]):
        a = f"encoder.blks.{i}"
        heads = []
        for h in range(nh):
            cols = slice(h * d, (h + 1) * d)
            q, k, v = (linear(p, f"{a}.attention.W_{n}", x)[..., cols] for n in "qkv")
            s = np.where(valid[:, None, :], q @ k.transpose(0, 2, 1) / np.sqrt(d), -1e9)  # [B,Lq,Lk]
            heads.append(np.exp(log_softmax(s)) @ v)
        attn = linear(p, f"{a}.attention.W_o", np.concatenate(heads, -1))
        y = layer_norm(attn + x, p[f"{a}.addnorm1.ln.weight"], p[f"{a}.addnorm1.ln.bias"])
        f = linear(p, f"{a}.ffn.dense2", np.maximum(linear(p, f"{a}.ffn.dense1", y), 0))
        x = layer_norm(f + y, p[f"{a}.addnorm2.ln.weight"], p[f"{a}.addnorm2.ln.bias"])
    pos = np.array(b["predPositions"]).reshape(B, P)
    g = x[np.arange(B)[:, None], pos]  # [B,P,H]
    g = layer_norm(np.maximum(linear(p, "mlm.mlp.0", g), 0), p["mlm.mlp.2.weight"], p["mlm.mlp.2.bias"])
    mlm_logits = linear(p, "mlm.mlp.3", g)
    nsp_logits = linear(p, "nsp.output", np.tanh(linear(p, "hidden.0", x[:, 0])))
    w = np.array(b["mlmWeights"], dtype=np.float64)
    ce = -np.take_along_axis(log_softmax(mlm_logits).reshape(B * P, -1), np.array(b["mlmLabels"])[:, None], 1)[:, 0]
    mlm_loss = (ce * w).sum() / (w.sum() + 1e-8)
    nsp_loss = -np.take_along_axis(log_softmax(nsp_logits), np.array(b["nspLabels"])[:, None], 1).mean()
    return x, mlm_logits, nsp_logits, mlm_loss, nsp_loss


def main() -> int:
    """Compares and prints; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / "crates" / "tsbert-core" / "tests" / "fixtures" / "golden")
    args = ap.parse_args()
    doc = json.loads((args.dir / "batch.json").read_text())
    params = {k: v.astype(np.float64) for k, v in load_file(str(args.dir / "initial.safetensors")).items()}
    exp = load_file(str(args.dir / "expected.safetensors"))
    enc, mlm_logits, nsp_logits, mlm_loss, nsp_loss = forward(params, doc["config"], doc)
    ok = True
    for name, got in [("encoded", enc), ("mlm_logits", mlm_logits), ("nsp_logits", nsp_logits),
                      ("mlm_loss", [mlm_loss]), ("nsp_loss", [nsp_loss])]:
        err = np.abs(exp[name] - np.asarray(got)).max()
        ok &= bool(err < 1e-5)
        print(f"{name:12s} max |stored - numpy| {err:.2e}")

    rng = np.random.default_rng(0)
    worst = 0.0
    for name in sorted(params):
        for idx in [tuple(rng.integers(0, n) for n in params[name].shape) for _ in range(3)]:
            loss = lambda: sum(forward(params, doc["config"], doc)[3:])  # noqa: E731
            orig, h = params[name][idx], 1e-5
            params[name][idx] = orig + h
            up = loss()
            params[name][idx] = orig - h
            down = loss()
            params[name][idx] = orig
            worst = max(worst, abs((up - down) / (2 * h) - exp[f"grad.{name}"][idx]))
    ok &= bool(worst < 1e-4)
    print(f"grad.*       max |stored - finite difference| over {3 * len(params)} entries {worst:.2e}")
    print("golden fixtures agree with the NumPy reading" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
