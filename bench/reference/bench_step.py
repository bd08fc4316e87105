"""PyTorch's side of `npm run bench:compare` (bench/compare.ts writes the inputs and prints the table).

    bench/.venv/bin/python bench/reference/bench_step.py --dir bench/out/compare --threads 2

Reads from DIR: config.json (config, lr, warmup, repeats), initial.safetensors (tsbert's
initial weights, loaded by name) and batches.safetensors (one batch, see parity.load_batches).
Times, on the CPU with THREADS intra-op threads, the reference's training step
(forward, MLM + NSP loss, backward, torch.optim.Adam; train mode, so dropout as configured)
and its encode (encoder forward, eval mode, no autograd), each `warmup` untimed runs then
`repeats` timed ones, and writes DIR/torch.json: {"train_ms": [...], "encode_ms": [...],
"threads": n, "torch": version}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parity import config_from_json, load_batches, load_model  # noqa: E402
from tsbert_ref import make_optimizer, train_step  # noqa: E402


def timed(fn, warmup: int, repeats: int) -> list[float]:
    """Milliseconds of each of `repeats` calls of fn after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--threads", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
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
