"""PyTorch's side of `npm run bench:compare` and of the GPU check's throughput.

    bench/.venv/bin/python bench/reference/bench_step.py --dir bench/out/compare --threads 2
    python3 bench/reference/bench_step.py --dir $OUT/step-512 --device cuda

Reads from DIR what the TypeScript side wrote (bench/support.ts `startBoth`): config.json
(config, lr, warmup, repeats), initial.safetensors (tsbert's initial weights, loaded by name)
and batches.safetensors (one batch, see parity.load_batches). Times, on `--device` (the CPU
with THREADS intra-op threads, or CUDA: timings synchronise the device, TF32 stays off), the
reference's training step (forward, MLM + NSP loss, backward, torch.optim.Adam; train mode,
so dropout as configured) and its encode (encoder forward, eval mode, no autograd), each
`warmup` untimed runs then `repeats` timed ones, and writes DIR/torch.json: {"train_ms": [...],
"encode_ms": [...], "pairs_per_sec": of the median step, "threads": n, "device": ...,
"gpu": name or null, "torch": version}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import config_from_json, load_batches, load_model  # noqa: E402
from tsbert_ref import Batch, make_optimizer, train_step  # noqa: E402


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False

    meta = json.loads((args.dir / "config.json").read_text())
    model = load_model(config_from_json(meta["config"]), args.dir / "initial.safetensors").to(args.device)
    (batch,) = load_batches(args.dir / "batches.safetensors")
    batch = Batch(**{f.name: getattr(batch, f.name).to(args.device) for f in fields(batch)})
    opt = make_optimizer(model, meta["lr"])

    train_ms = timed(lambda: train_step(model, opt, batch), meta["warmup"], meta["repeats"], args.device)

    def encode() -> None:
        model.eval()
        with torch.no_grad():
            model.encoder(batch.tokens, batch.segments, batch.valid_lens)

    encode_ms = timed(encode, meta["warmup"], meta["repeats"], args.device)
    median = sorted(train_ms)[len(train_ms) // 2]
    result = {"train_ms": train_ms, "encode_ms": encode_ms,
              "pairs_per_sec": batch.tokens.shape[0] * 1000 / median, "threads": torch.get_num_threads(),
              "device": args.device, "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
              "torch": torch.__version__}
    (args.dir / "torch.json").write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
