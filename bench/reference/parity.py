"""PyTorch's side of `npm run bench:parity` (bench/parity.ts writes the inputs and compares).

    bench/.venv/bin/python bench/reference/parity.py --dir bench/out/parity

Reads from DIR: config.json (config, lr, steps), initial.safetensors (tsbert's initial
weights, loaded by name), batches.safetensors (see `load_batches`; step i trains on batch i)
and ours.safetensors (tsbert's gradient `grad<s>.<name>` and parameters `step<s>.<name>` of
every step s). Writes DIR/torch.safetensors, float32:
  encoded, mlm_logits, nsp_logits, mlm_loss [1], nsp_loss [1]  batch 0, initial weights, eval
  step_losses.mlm [steps], step_losses.nsp [steps]             losses before each Adam step
  grad.<name>                                                   gradient of step 1 (batch 0)
  step<steps>.<name>                                            parameters after the steps
  adam<s>.<name>  torch.optim.Adam's step s taken from tsbert's parameters after step s − 1
                  with tsbert's gradient of step s (its moments carried over from steps < s):
                  the update rule alone, on identical inputs
and DIR/floor.json: the same forward values, gradients and end-to-end parameters computed by
PyTorch in float32 against float64 (relative error max|f32 − f64| / max|f64|), the float32
noise floor of each comparison. Also exports `load_batches` for the other bench scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import config_from_json, load_batches, load_model, read_safetensors  # noqa: E402
from tsbert_ref import Batch, BertModel, losses, make_optimizer, train_step  # noqa: E402


def run(model: BertModel, batches: list[Batch], lr: float, steps: int) -> dict[str, torch.Tensor]:
    """Forward of batch 0 (eval), then `steps` Adam steps (step i on batch i): the forward
    values, losses, step 1's gradients and the parameters after the last step."""
    model.eval()
    with torch.no_grad():
        mlm, nsp, encoded, mlm_logits, nsp_logits = losses(model, batches[0])
    out = {"encoded": encoded, "mlm_logits": mlm_logits, "nsp_logits": nsp_logits,
           "mlm_loss": mlm.reshape(1), "nsp_loss": nsp.reshape(1)}
    opt = make_optimizer(model, lr)
    step_losses = []
    for i in range(steps):
        step_losses.append(train_step(model, opt, batches[i]))
        if i == 0:  # train_step zeroes the gradients first, so these are step 1's
            out.update({f"grad.{n}": p.grad.detach().clone() for n, p in model.named_parameters()})
    out["step_losses.mlm"] = torch.tensor([s[0] for s in step_losses], dtype=torch.float64)
    out["step_losses.nsp"] = torch.tensor([s[1] for s in step_losses], dtype=torch.float64)
    out.update({f"step{steps}.{n}": p.detach().clone() for n, p in model.named_parameters()})
    return out


def adam_replay(model: BertModel, initial: dict, ours: dict, lr: float, steps: int) -> dict[str, torch.Tensor]:
    """torch.optim.Adam fed tsbert's parameters and gradients: step s starts from tsbert's
    parameters after step s − 1 and uses tsbert's gradient of step s."""
    opt = make_optimizer(model, lr)
    out = {}
    for s in range(1, steps + 1):
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(initial[n] if s == 1 else ours[f"step{s - 1}.{n}"])
                p.grad = ours[f"grad{s}.{n}"].clone()
        opt.step()
        out.update({f"adam{s}.{n}": p.detach().clone() for n, p in model.named_parameters()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, required=True)
    args = ap.parse_args()
    meta = json.loads((args.dir / "config.json").read_text())
    cfg, lr, steps = config_from_json(meta["config"]), meta["lr"], meta["steps"]
    assert cfg.dropout == 0.0, "parity needs dropout 0"
    batches = load_batches(args.dir / "batches.safetensors")
    assert len(batches) >= steps
    initial = read_safetensors(args.dir / "initial.safetensors")

    out = run(load_model(cfg, args.dir / "initial.safetensors"), batches, lr, steps)
    out.update(adam_replay(load_model(cfg, args.dir / "initial.safetensors"), initial,
                           read_safetensors(args.dir / "ours.safetensors"), lr, steps))
    save_file({k: v.to(torch.float32).contiguous() for k, v in out.items()}, str(args.dir / "torch.safetensors"),
              metadata={"generator": f"bench/reference/parity.py, torch {torch.__version__}"})

    # The same in float64: how far PyTorch's own float32 results are from exact arithmetic.
    model64 = load_model(cfg, args.dir / "initial.safetensors").double()
    batches64 = [Batch(**{k: v.double() if v.is_floating_point() else v for k, v in vars(b).items()}) for b in batches]
    out64 = run(model64, batches64, lr, steps)
    rel = lambda a, b: float((a.double() - b).abs().max() / b.abs().max()) if b.abs().max() > 0 else float("inf")  # noqa: E731
    floor = {k: rel(out[k], v) for k, v in out64.items()}
    (args.dir / "floor.json").write_text(json.dumps(floor, indent=1) + "\n")
    print(f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads): losses of batch 0"
          f" mlm {out['mlm_loss'].item():.6f}, nsp {out['nsp_loss'].item():.6f}; wrote torch.safetensors"
          f" ({len(out)} tensors) and floor.json (float32 vs float64)")


if __name__ == "__main__":
    main()
