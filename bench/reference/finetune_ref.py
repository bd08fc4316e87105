"""PyTorch's side of `npm run bench:finetune` (bench/finetune.ts): fine-tuning from tsbert's starting weights on
tsbert's batches with tsbert's learning rates, and (given tsbert's losses) both loss curves drawn on one plot.

    bench/.venv/bin/python bench/reference/finetune_ref.py --job bench/out/finetune/groups-curve.job.json

The job (JSON, written by bench/finetune.ts):
  arch      "hf": a Hugging Face folder, loaded by AutoModelForSequenceClassification or
            AutoModelForTokenClassification with the dropout its config.json says; "textbook": a tsbert
            folder of the textbook model with a sequence head, rebuilt on tsbert_ref.py's encoder (the
            pooler `hidden.0`, dropout, `classifier`), its weights loaded by name
  model     the folder;  task  "sequence" or "token"
  batches   safetensors: tokens.i, segments.i [B,L], valid_lens.i [B], labels.i ([B] or [B,L], -100 not
            scored) of step i;  valid  (optional) held-out batches in the same layout
  lrs       the learning rate of each step (tsbert's schedule);  weight_decay, clip_norm, seed, threads
  ours      (optional) tsbert's losses, drawn with these on `svg` under `title`
  out       where the result goes: {"losses", "seconds", "examplesPerSec", "accuracy", "peakRssMiB"}
The recipe: torch.optim.AdamW (betas 0.9, 0.999, eps 1e-8), weight decay on every parameter but the biases and
the layer norms, the gradients' global norm clipped to clip_norm, the learning rate set before each step. The
examples a second count the steps after the first (forward, backward, clipping, update), as tsbert's do.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification  # noqa: E402
from transformers.utils import logging as transformers_logging  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import config_from_json, read_safetensors  # noqa: E402
from tsbert_ref import BertEncoder, Config  # noqa: E402


class TextbookClassifier(nn.Module):
    """tsbert's textbook model with a sequence head: encoder, pooler (`hidden.0`, Tanh), dropout, `classifier`."""

    def __init__(self, cfg: Config, num_labels: int):
        super().__init__()
        self.encoder = BertEncoder(cfg)
        self.hidden = nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.Tanh())
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.hidden, num_labels)

    def forward(self, tokens: Tensor, segments: Tensor, valid_lens: Tensor) -> Tensor:
        """→ logits [B, num_labels]."""
        pooled = self.hidden(self.encoder(tokens, segments, valid_lens)[:, 0, :])
        return self.classifier(self.dropout(pooled))


def load_textbook(folder: Path) -> nn.Module:
    """The textbook model of a tsbert folder (its config.json names the weights), strictly by name."""
    manifest = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    c = manifest["config"]
    for other in ("attentionDropout", "classifierDropout"):
        if c.get(other, c["dropout"]) != c["dropout"]:
            raise SystemExit(f"{folder}: {other} differs from dropout; the reference has one dropout")
    model = TextbookClassifier(config_from_json(c), c["task"]["numLabels"])
    model.load_state_dict(read_safetensors(folder / manifest["weights"]["file"]), strict=True)
    return model


def load_hf(folder: Path, task: str) -> nn.Module:
    """A Hugging Face task model, float32; fails when a weight of it is missing from the folder."""
    cls = AutoModelForTokenClassification if task == "token" else AutoModelForSequenceClassification
    model, info = cls.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
    if info["missing_keys"]:
        raise SystemExit(f"{folder}: weights missing for {sorted(info['missing_keys'])}")
    return model


def read_batches(path: Path) -> list[dict[str, Tensor]]:
    """The batches of a file written by bench/finetune.ts, int64."""
    t = read_safetensors(path)
    n = sum(1 for k in t if k.startswith("tokens."))
    keys = ("tokens", "segments", "valid_lens", "labels")
    return [{k: t[f"{k}.{i}"].to(torch.int64) for k in keys} for i in range(n)]


def logits_and_loss(model: nn.Module, arch: str, b: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The head's logits of batch `b` and their cross-entropy (mean over the scored labels)."""
    if arch == "textbook":
        logits = model(b["tokens"], b["segments"], b["valid_lens"])
        return logits, F.cross_entropy(logits, b["labels"])
    mask = (torch.arange(b["tokens"].shape[1])[None, :] < b["valid_lens"][:, None]).to(torch.int64)
    out = model(input_ids=b["tokens"], attention_mask=mask, token_type_ids=b["segments"], labels=b["labels"])
    return out.logits, out.loss


def optimizer(model: nn.Module, weight_decay: float, lr: float) -> torch.optim.AdamW:
    """AdamW with weight decay on every parameter but the biases and the layer norms (tsbert's rule)."""
    spared = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    spared |= {id(p) for name, p in model.named_parameters() if name.endswith("bias")}
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if id(p) not in spared], "weight_decay": weight_decay},
              {"params": [p for p in params if id(p) in spared], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)


def accuracy(model: nn.Module, arch: str, batches: list[dict[str, Tensor]]) -> float:
    """Held-out accuracy of a sequence head, dropout off."""
    model.eval()
    right = total = 0
    with torch.no_grad():
        for b in batches:
            logits, _ = logits_and_loss(model, arch, b)
            right += int((logits.argmax(-1) == b["labels"]).sum())
            total += b["labels"].numel()
    return right / total


def plot(ours: list[float], theirs: list[float], title: str, svg: Path) -> None:
    """Both loss curves against the step, one axes."""
    plt.rcParams.update({"svg.hashsalt": "tsbert", "svg.fonttype": "none", "font.size": 10})
    steps = range(1, len(ours) + 1)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(steps, ours, color="tab:blue", linewidth=2.2, alpha=0.55, label="tsbert")
    ax.plot(steps, theirs, color="black", linewidth=0.9, linestyle=(0, (3, 2)), label="PyTorch (transformers)")
    ax.set_xlim(1, len(ours))
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", frameon=False)
    fig.tight_layout()
    fig.savefig(svg, format="svg", metadata={"Date": None})
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--job", type=Path, required=True)
    job = json.loads(ap.parse_args().job.read_text(encoding="utf-8"))
    transformers_logging.disable_progress_bar()
    torch.set_num_threads(job["threads"])
    torch.manual_seed(job["seed"])
    arch, folder = job["arch"], Path(job["model"])
    model = load_textbook(folder) if arch == "textbook" else load_hf(folder, job["task"])
    batches = read_batches(Path(job["batches"]))
    lrs = job["lrs"]
    assert len(batches) >= len(lrs), f"{len(batches)} batches for {len(lrs)} steps"
    opt = optimizer(model, job["weight_decay"], lrs[0])
    losses, seconds, examples = [], 0.0, 0
    model.train()
    for i, lr in enumerate(lrs):
        b = batches[i]
        for group in opt.param_groups:
            group["lr"] = lr
        started = time.perf_counter()
        _, loss = logits_and_loss(model, arch, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), job["clip_norm"])
        opt.step()
        if i > 0 or len(lrs) == 1:
            seconds += time.perf_counter() - started
            examples += b["tokens"].shape[0]
        losses.append(loss.item())
        if (i + 1) % 50 == 0:
            print(f"PyTorch step {i + 1}: loss {losses[-1]:.4f}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; before scoring
    result = {"losses": losses, "seconds": seconds, "examplesPerSec": examples / seconds, "accuracy": None,
              "peakRssMiB": peak}
    if job.get("valid"):
        result["accuracy"] = accuracy(model, arch, read_batches(Path(job["valid"])))
    Path(job["out"]).write_text(json.dumps(result) + "\n", encoding="utf-8")
    if job.get("ours"):
        plot(job["ours"], losses, job["title"], Path(job["svg"]))
    print(f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads): {len(lrs)} steps,"
          f" {result['examplesPerSec']:.1f} examples/s; wrote {job['out']}", flush=True)


if __name__ == "__main__":
    main()
