"""Writes the golden fixtures in crates/tsbert-core/tests/fixtures/golden/ from the PyTorch reference.

    bench/.venv/bin/python bench/reference/make_golden.py [--out DIR]

Small model (V=50, H=16, F=32, 2 heads, 2 layers, 16 positions, dropout 0), one seeded
batch (B=4, L=12, P=2), float32:
  initial.safetensors   every parameter, by its tsbert name
  batch.json            config, lr, adamSteps and the batch as `Batch`-style (src/data/batch.ts) flat arrays
  expected.safetensors  encoded, mlm_logits, nsp_logits, mlm_loss, nsp_loss (initial weights,
                        dropout off); grad.<name> (gradient of MLM + NSP); step3.<name> (after
                        3 Adam steps on the batch at lr); step_losses [3,2] (mlm, nsp before each step)
It then prints float64 cross-checks (nothing of them is stored). Deterministic: running it
again rewrites byte-identical files on the same torch build.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.func import functional_call

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tsbert_ref import Batch, BertModel, Config, check_names, losses, make_optimizer, train_step  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CFG = Config(vocab_size=50, hidden=16, ffn_hidden=32, heads=2, layers=2, dropout=0.0, max_positions=16)
B, L, P = 4, 12, 2
LR, STEPS = 0.01, 3
WEIGHT_SEED, BATCH_SEED = 20261125, 7
PAD, MASK, CLS, SEP = 1, 2, 3, 4  # the d2l vocabulary's reserved ids (<unk> is 0)


def is_layer_norm_weight(name: str) -> bool:
    """LayerNorm scales: the addnorm `ln.weight`s and the MLM head's `mlm.mlp.2.weight`."""
    return name.endswith("ln.weight") or name == "mlm.mlp.2.weight"


def golden_weights(model: BertModel, seed: int) -> None:
    """Overwrites every parameter, in state_dict order: N(0, 0.2²), LayerNorm scales 1 + N(0, 0.2²)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if is_layer_norm_weight(name) else 0.0))


def golden_batch(seed: int) -> dict:
    """A random, valid batch shaped like the pretraining data, as `Batch`-style (src/data/batch.ts) flat lists.

    Rows are `<cls> A... <sep> B... <sep>` then `<pad>`; segment 0 for A (and the padding), 1 for
    B. Predicted tokens become `<mask>` and keep their id as the label. Forced: row 0 is full
    length, row 3 has the minimum length 5, its 2nd prediction is padding (position 0, weight 0,
    label 0), and both NSP classes occur.
    """
    g = torch.Generator().manual_seed(seed)
    rand = lambda lo, hi: int(torch.randint(lo, hi, (1,), generator=g))  # noqa: E731
    valid_lens = [rand(5, L + 1) for _ in range(B)]
    valid_lens[0], valid_lens[3] = L, 5
    tokens, segments, positions, weights, labels = [], [], [], [], []
    for r, n in enumerate(valid_lens):
        sep1 = rand(2, n - 2)  # index of the first <sep>: A has >= 1 token, B has >= 1 token
        row = [CLS] + [rand(5, CFG.vocab_size) for _ in range(n - 1)] + [PAD] * (L - n)
        row[sep1], row[n - 1] = SEP, SEP
        segments += [0] * (sep1 + 1) + [1] * (n - 1 - sep1) + [0] * (L - n)
        candidates = [i for i in range(1, n - 1) if i != sep1]
        real = P - 1 if r == 3 else P
        picks = sorted(candidates[int(i)] for i in torch.randperm(len(candidates), generator=g)[:real])
        for pos in picks:
            labels.append(row[pos])
            row[pos] = MASK
        positions += picks + [0] * (P - real)
        weights += [1.0] * real + [0.0] * (P - real)
        labels += [0] * (P - real)
        tokens += row
    nsp = [int(x) for x in torch.randperm(B, generator=g) % 2]  # two of each
    return {"batchSize": B, "seqLen": L, "numPreds": P, "tokens": tokens, "segments": segments,
            "validLens": valid_lens, "predPositions": positions, "mlmWeights": weights,
            "mlmLabels": labels, "nspLabels": nsp}


def check_batch(b: dict) -> None:
    """Asserts the invariants the native input checks and the fixture's purpose need."""
    t = Batch.from_json(b)
    assert all(5 <= v <= L for v in b["validLens"]) and 0 in b["mlmWeights"] and set(b["nspLabels"]) == {0, 1}
    for r in range(B):
        n = b["validLens"][r]
        assert all(x == PAD for x in t.tokens[r, n:].tolist()) and set(t.segments[r].tolist()) <= {0, 1}
        for j in range(P):
            assert 0 <= t.pred_positions[r, j] < n and 0 <= t.mlm_labels[r, j] < CFG.vocab_size
    assert int(t.tokens.max()) < CFG.vocab_size


def grads_of(model: BertModel, batch: Batch) -> dict[str, torch.Tensor]:
    """Gradient of MLM + NSP at the model's current weights, by parameter name."""
    model.zero_grad(set_to_none=False)
    mlm, nsp, *_ = losses(model, batch)
    (mlm + nsp).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def float64_checks(model32: BertModel, batch: Batch, expected: dict[str, torch.Tensor]) -> None:
    """Prints how far the stored float32 results are from float64 and runs gradcheck (nothing stored)."""
    model64 = BertModel(CFG).double()
    model64.load_state_dict({k: v.double() for k, v in model32.state_dict().items()})
    model64.eval()
    mlm, nsp, enc, mlm_logits, nsp_logits = losses(model64, batch)
    g64 = grads_of(model64, batch)
    rel = lambda a, b: float((a.double() - b.detach()).abs().max() / b.detach().abs().max().clamp_min(1e-30))  # noqa: E731
    print("float32 vs float64, max |diff| / max |float64|:")
    print(f"  encoded {rel(expected['encoded'], enc):.2e}  mlm_logits {rel(expected['mlm_logits'], mlm_logits):.2e}"
          f"  nsp_logits {rel(expected['nsp_logits'], nsp_logits):.2e}")
    print(f"  mlm_loss {rel(expected['mlm_loss'], mlm.reshape(1)):.2e}  nsp_loss {rel(expected['nsp_loss'], nsp.reshape(1)):.2e}"
          f"  (float64 losses {mlm.item():.10f}, {nsp.item():.10f})")
    # W_k's bias adds q·b_k to every key's score of a query, which softmax ignores: its gradient
    # is exactly 0 in theory, so its float32 value is pure rounding noise (compare it absolutely).
    kb = [n for n in g64 if n.endswith("W_k.bias")]
    worst = max((n for n in g64 if n not in kb), key=lambda n: rel(expected[f"grad.{n}"], g64[n]))
    print(f"  gradients: worst {worst} {rel(expected[f'grad.{worst}'], g64[worst]):.2e}; W_k.bias max |grad|"
          f" float32 {max(expected[f'grad.{n}'].abs().max().item() for n in kb):.1e},"
          f" float64 {max(g64[n].abs().max().item() for n in kb):.1e}")

    # The same 3 Adam steps in float64. W_k.bias moves on rounding noise (Adam's first step is
    # lr * g / (|g| + eps), about lr * sign(g), whatever |g|), so its step3 values only agree to
    # ~lr; every other parameter agrees to ~1e-6.
    opt = make_optimizer(model64, LR)
    for _ in range(STEPS):
        train_step(model64, opt, batch)
    d = {n: (expected[f"step{STEPS}.{n}"].double() - p.detach()).abs().max().item() for n, p in model64.named_parameters()}
    print(f"  step{STEPS}: max |diff| {max(v for n, v in d.items() if n not in kb):.1e} except W_k.bias"
          f" {max(d[n] for n in kb):.1e}")

    # Padding must not leak: other token/segment ids past valid_len leave every loss and every
    # valid position's encoding bit-identical (masked keys get exactly zero weight).
    other = Batch(**vars(batch))
    other.tokens, other.segments = batch.tokens.clone(), batch.segments.clone()
    for r, n in enumerate(batch.valid_lens.tolist()):
        other.tokens[r, n:], other.segments[r, n:] = 7, 1
    with torch.no_grad():
        a, b = losses(model32.eval(), batch), losses(model32, other)
    valid = torch.arange(L)[None, :] < batch.valid_lens[:, None]
    same = all(torch.equal(x, y) for x, y in zip(a[:2], b[:2])) and torch.equal(a[2][valid], b[2][valid])
    print(f"padding changes nothing at valid positions (float32, bit-exact): {same}")
    assert same

    # Finite-difference gradcheck of both losses w.r.t. every parameter, tiny float64 model.
    tiny = Config(vocab_size=11, hidden=8, ffn_hidden=12, heads=2, layers=2, dropout=0.0, max_positions=8)
    m = BertModel(tiny).double().eval()
    golden_weights(m, 3)
    tb = Batch(tokens=torch.tensor([[3, 5, 2, 4, 9, 4], [3, 2, 4, 8, 4, 1], [3, 6, 4, 2, 4, 1]]),
               segments=torch.tensor([[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 1, 0]]),
               valid_lens=torch.tensor([6, 5, 5]), pred_positions=torch.tensor([[2, 4], [1, 0], [3, 1]]),
               mlm_weights=torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]]),
               mlm_labels=torch.tensor([[7, 10], [6, 0], [5, 6]]), nsp_labels=torch.tensor([1, 0, 1]))
    names = [n for n, _ in m.named_parameters()]

    def f(*params):
        mlm, nsp, *_ = losses(_Functional(m, dict(zip(names, params))), tb)
        return mlm, nsp

    ok = torch.autograd.gradcheck(f, tuple(p.detach().clone().requires_grad_() for p in m.parameters()),
                                  eps=1e-6, atol=1e-6, rtol=1e-4)
    print(f"float64 gradcheck, {sum(p.numel() for p in m.parameters())} parameters of a tiny model: {ok}")


class _Functional:
    """Calls a module with substituted parameters (torch.func.functional_call), for gradcheck."""

    def __init__(self, module: BertModel, params: dict[str, torch.Tensor]):
        self.module, self.params = module, params

    def __call__(self, *args):
        return functional_call(self.module, self.params, args)


def main() -> None:
    """Builds the model and batch, writes the three fixture files and prints the checks."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "crates" / "tsbert-core" / "tests" / "fixtures" / "golden")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    model = BertModel(CFG)
    check_names(model)
    golden_weights(model, WEIGHT_SEED)
    initial = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    batch_json = golden_batch(BATCH_SEED)
    check_batch(batch_json)
    batch = Batch.from_json(batch_json)

    model.eval()
    with torch.no_grad():
        mlm, nsp, encoded, mlm_logits, nsp_logits = losses(model, batch)
    expected = {"encoded": encoded, "mlm_logits": mlm_logits, "nsp_logits": nsp_logits,
                "mlm_loss": mlm.reshape(1), "nsp_loss": nsp.reshape(1)}
    expected.update({f"grad.{n}": g for n, g in grads_of(model, batch).items()})

    opt = make_optimizer(model, LR)
    step_losses = [train_step(model, opt, batch) for _ in range(STEPS)]
    assert step_losses[0] == (mlm.item(), nsp.item())
    expected["step_losses"] = torch.tensor(step_losses, dtype=torch.float32)
    expected.update({f"step{STEPS}.{n}": p.detach().clone() for n, p in model.named_parameters()})
    expected = {k: v.to(torch.float32).contiguous() for k, v in expected.items()}

    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"generator": f"bench/reference/make_golden.py, torch {torch.__version__}"}  # one key: HashMap order
    save_file(initial, str(args.out / "initial.safetensors"), metadata=meta)
    save_file(expected, str(args.out / "expected.safetensors"), metadata=meta)
    doc = {"config": CFG.to_json(), "lr": LR, "adamSteps": STEPS, **batch_json}
    (args.out / "batch.json").write_text(json.dumps(doc, indent=1) + "\n")
    assert all(torch.equal(v, load_file(str(args.out / "initial.safetensors"))[k]) for k, v in initial.items())

    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}: "
          + ", ".join(f"{p.name} {p.stat().st_size} B" for p in sorted(args.out.iterdir()) if p.suffix != ".md"))
    print(f"initial losses: mlm {mlm.item():.6f}, nsp {nsp.item():.6f}; step losses {step_losses}")
    model.load_state_dict(initial)
    float64_checks(model, batch, expected)


if __name__ == "__main__":
    main()
