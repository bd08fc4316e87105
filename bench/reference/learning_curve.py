"""PyTorch's side of `npm run bench:curve` (bench/learning-curve.ts), and the plot.

    bench/.venv/bin/python bench/reference/learning_curve.py --dir bench/out/curve --svg bench/learning-curve.svg

Reads from DIR: config.json (config, lr, steps), initial.safetensors (tsbert's initial
weights, loaded by name), batches.safetensors (step i trains on batch i) and tsbert.json
(tsbert's per-step losses). Trains the reference the same number of steps with
torch.optim.Adam, writes DIR/torch.json ({"mlm": [...], "nsp": [...], "seconds": s}) and draws
the MLM and NSP curves of both implementations on one plot (SVG, reproducible bytes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import config_from_json, load_batches, load_model  # noqa: E402
from tsbert_ref import make_optimizer, train_step  # noqa: E402


def plot(ours: dict, torch_: dict, meta: dict, svg: Path) -> None:
    """Both losses of both implementations against the step, one axes, log-scaled losses."""
    plt.rcParams.update({"svg.hashsalt": "tsbert", "svg.fonttype": "none", "font.size": 10})
    steps = range(1, len(ours["mlm"]) + 1)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, label, color in (("mlm", "MLM", "tab:blue"), ("nsp", "NSP", "tab:green")):
        ax.plot(steps, ours[key], color=color, linewidth=2.2, alpha=0.55, label=f"{label}, tsbert")
        ax.plot(steps, torch_[key], color="black", linewidth=0.9, linestyle=(0, (3, 2)), label=f"{label}, PyTorch")
    ax.set_yscale("log")
    ax.set_yticks([0.5, 0.7, 1, 2, 3, 5, 7, 10])
    ax.get_yaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlim(1, len(ours["mlm"]))
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log scale)")
    c = meta["config"]
    ax.set_title(f"tsbert vs PyTorch, WikiText-2: B=64, L=64, lr {meta['lr']}, dropout {c['dropout']}, "
                 f"vocab {c['vocabSize']}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(ncol=2, loc="upper right", frameon=False)
    fig.tight_layout()
    fig.savefig(svg, format="svg", metadata={"Date": None})
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--svg", type=Path, required=True)
    args = ap.parse_args()
    meta = json.loads((args.dir / "config.json").read_text())
    cfg, lr, steps = config_from_json(meta["config"]), meta["lr"], meta["steps"]
    model = load_model(cfg, args.dir / "initial.safetensors")
    batches = load_batches(args.dir / "batches.safetensors")
    assert len(batches) >= steps
    opt = make_optimizer(model, lr)
    curve = {"mlm": [], "nsp": []}
    started = time.perf_counter()
    for i in range(steps):
        mlm, nsp = train_step(model, opt, batches[i])
        curve["mlm"].append(mlm)
        curve["nsp"].append(nsp)
        if (i + 1) % 50 == 0:
            print(f"PyTorch step {i + 1}: mlm {mlm:.4f}, nsp {nsp:.4f}", flush=True)
    curve["seconds"] = time.perf_counter() - started
    (args.dir / "torch.json").write_text(json.dumps(curve) + "\n")
    plot(json.loads((args.dir / "tsbert.json").read_text()), curve, meta, args.svg)
    print(f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads): {steps} steps in {curve['seconds']:.1f} s;"
          f" wrote {args.dir / 'torch.json'} and {args.svg}")


if __name__ == "__main__":
    main()
