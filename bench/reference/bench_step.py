"""PyTorch's side of `npm run bench:compare` and of the GPU check's throughput.

    bench/.venv/bin/python bench/reference/bench_step.py --dir bench/out/compare --threads 2
    python3 bench/reference/bench_step.py --synthetic 512 --device cuda --out torch-512.json

Reads from DIR: config.json (config, lr, warmup, repeats), initial.safetensors (tsbert's
initial weights, loaded by name) and batches.safetensors (one batch, see parity.load_batches).
Times, on the CPU with THREADS intra-op threads, the reference's training step
(forward, MLM + NSP loss, backward, torch.optim.Adam; train mode, so dropout as configured)
and its encode (encoder forward, eval mode, no autograd), each `warmup` untimed runs then
`repeats` timed ones, and writes DIR/torch.json: {"train_ms": [...], "encode_ms": [...],
"threads": n, "torch": version}.

With `--synthetic B` instead (scripts/gpu-check.sh): the textbook model (vocab 20256, dropout
0.2) with PyTorch's own initialisation and a random valid batch of B rows (L = 64, P = 10),
on `--device` (cpu or cuda; CUDA timings synchronise the device, TF32 stays off), written to
`--out` with "pairs_per_sec" of the median step added.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tsbert_ref import Batch, BertModel, Config, make_optimizer, train_step  # noqa: E402


def timed(fn, warmup: int, repeats: int, device: str = "cpu") -> list[float]:
    """Milliseconds of each of `repeats` calls of fn after `warmup` untimed ones."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - started) * 1000)
    return out


def synthetic_batch(b: int, vocab: int, device: str, L: int = 64, P: int = 10, seed: int = 0) -> Batch:
    """A random valid batch: word ids in [5, vocab) inside each row's valid length, `<pad>` after."""
    g = torch.Generator().manual_seed(seed)
    valid = torch.randint(P + 2, L + 1, (b,), generator=g)
    pos = torch.arange(L)
    tokens = torch.where(pos < valid[:, None], torch.randint(5, vocab, (b, L), generator=g), torch.ones(b, L, dtype=torch.int64))
    split = (valid // 2)[:, None]
    segments = ((pos >= split) & (pos < valid[:, None])).to(torch.int64)
    pred = torch.stack([torch.randperm(int(v) - 1, generator=g)[:P] + 1 for v in valid])
    batch = Batch(tokens, segments, valid, pred, torch.ones(b, P), torch.randint(5, vocab, (b, P), generator=g),
                  torch.arange(b) % 2)
    return Batch(*(t.to(device) for t in (batch.tokens, batch.segments, batch.valid_lens, batch.pred_positions,
                                        batch.mlm_weights, batch.mlm_labels, batch.nsp_labels)))


def synthetic(args: argparse.Namespace) -> None:
    """The --synthetic mode: textbook model, random batch, on args.device."""
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    b = args.synthetic
    model = BertModel(Config(vocab_size=20256)).to(args.device)
    batch = synthetic_batch(b, 20256, args.device)
    opt = make_optimizer(model, 0.01)
    train_ms = timed(lambda: train_step(model, opt, batch), 3, 20 if b > 1 else 50, args.device)
    median = sorted(train_ms)[len(train_ms) // 2]
    result = {"device": args.device, "batch": b, "train_ms": train_ms, "pairs_per_sec": b * 1000 / median,
              "torch": torch.__version__,
              "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None}
    args.out.write_text(json.dumps(result) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "train_ms"}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--synthetic", type=int, metavar="B")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.synthetic:
        synthetic(args)
        return
    from parity import config_from_json, load_batches, load_model  # needs safetensors, which --synthetic does not

    meta = json.loads((args.dir / "config.json").read_text())
    model = load_model(config_from_json(meta["config"]), args.dir / "initial.safetensors")
    (batch,) = load_batches(args.dir / "batches.safetensors")
    opt = make_optimizer(model, meta["lr"])

    train_ms = timed(lambda: train_step(model, opt, batch), meta["warmup"], meta["repeats"])

    def encode() -> None:
        model.eval()
        with torch.no_grad():
            model.encoder(batch.tokens, batch.segments, batch.valid_lens)

    encode_ms = timed(encode, meta["warmup"], meta["repeats"])
    result = {"train_ms": train_ms, "encode_ms": encode_ms, "threads": torch.get_num_threads(),
              "torch": torch.__version__}
    (args.dir / "torch.json").write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
