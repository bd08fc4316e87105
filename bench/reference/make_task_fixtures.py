"""Hugging Face task-model fixtures, made by transformers, for the core's tests of the task heads
(crates/tsbert-core/tests/integration/task_heads.rs).

    bench/.venv/bin/python bench/reference/make_task_fixtures.py [--out DIR]
    bench/.venv/bin/python bench/reference/make_task_fixtures.py --check-exports DIR

With --check-exports DIR: DIR/<name> holds tsbert's Hugging Face export of the fixture <name>;
each is loaded by `AutoModelForSequenceClassification` / `AutoModelForTokenClassification`
(no tensor missing, unexpected or mismatched) and must give the fixture's logits (max abs
difference at most 1e-5 on the real tokens), also on pairs of texts tokenized by the export's
own tokenizer (segment ids included); exit 1 otherwise.

Writes to DIR (default crates/tsbert-core/tests/fixtures/hf-task/), from the encoder sizes and
the tokenizer of the `hf` fixtures (hidden 32, 2 layers, 4 heads, GELU, dropout 0):
- single/: a `BertForSequenceClassification`, 3 labels, `problem_type`
  single_label_classification, with `id2label`;
- multi/: the same with 4 labels, multi_label_classification;
- regression/: the same with 1 label, regression;
- token/: a `BertForTokenClassification`, 5 labels;
each a seeded random model whose every bias, layer-norm parameter and head weight is moved off
its initial value by random noise before saving (Hugging Face initialises biases to zero, which
would hide a missing or misnamed one), saved by `save_pretrained` with the tokenizer;
- expected.safetensors: for each model `<name>.text_logits` and `<name>.pair_logits` of the
  texts and pairs of texts.json (padded on the right to the longest), and on the batch of
  ../hf/expected.json `<name>.logits`,
  `<name>.loss` (with the labels below) and `<name>.grad.<parameter>` of every parameter;
  `labels.single`, `labels.multi`, `labels.regression`, `labels.token` (-100 on padding and on
  special tokens, as a tagger's data has them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from safetensors.torch import load_file
from transformers import (AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer,
                          BertConfig, BertForSequenceClassification, BertForTokenClassification)

ROOT = Path(__file__).resolve().parents[2]
HF = ROOT / "crates" / "tsbert-core" / "tests" / "fixtures" / "hf"
# texts and pairs as a user gives them, whose logits (`<name>.text_logits`, `<name>.pair_logits`)
# the fixtures record too (texts.json holds them)
TEXTS = ["the crane is flying over the river", "a dog sat on the mat", "tokyo is a big city"]
PAIRS = [("the crane is flying", "it is over the river"), ("the dog slept", "the cat ran")]


def perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """`model` in train mode (dropout is 0) with every bias, layer norm and head weight moved off
    its initial value."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias") or "LayerNorm" in name or name.startswith("classifier."):
                p.add_(0.1 * torch.randn_like(p))
    return model.train()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "crates" / "tsbert-core" / "tests" / "fixtures" / "hf-task")
    ap.add_argument("--check-exports", type=Path)
    args = ap.parse_args()
    if args.check_exports:
        raise SystemExit(check_exports(args.check_exports, args.out))
    tokenizer = AutoTokenizer.from_pretrained(HF / "model")
    batch = json.loads((HF / "expected.json").read_text(encoding="utf-8"))["batch"]
    ids = torch.tensor(batch["inputIds"])
    types = torch.tensor(batch["tokenTypeIds"])
    mask = torch.tensor(batch["attentionMask"])
    rows = ids.shape[0]

    generator = torch.Generator().manual_seed(5)
    special = torch.tensor([[t in tokenizer.all_special_ids for t in row] for row in ids.tolist()])
    labels = {
        "single": torch.tensor([2, 0, 1, 2]),
        "multi": (torch.rand(rows, 4, generator=generator) > 0.5).float(),
        "regression": torch.randn(rows, generator=generator),
        "token": torch.where((mask == 0) | special, -100, torch.randint(0, 5, ids.shape, generator=generator)),
    }
    models = {
        "single": (BertForSequenceClassification, {"num_labels": 3, "problem_type": "single_label_classification",
                                                   "id2label": {0: "negative", 1: "neutral", 2: "positive"}}),
        "multi": (BertForSequenceClassification, {"num_labels": 4, "problem_type": "multi_label_classification"}),
        "regression": (BertForSequenceClassification, {"num_labels": 1, "problem_type": "regression"}),
        "token": (BertForTokenClassification, {"num_labels": 5,
                                               "id2label": {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}}),
    }
    tensors: dict[str, torch.Tensor] = {f"labels.{k}": v.contiguous() for k, v in labels.items()}
    for seed, (name, (cls, extra)) in enumerate(models.items()):
        config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=32, type_vocab_size=2, hidden_act="gelu",
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **extra)
        torch.manual_seed(10 + seed)
        model = perturbed(cls(config))
        model.save_pretrained(args.out / name, safe_serialization=True)
        # a fresh copy: calling a tokenizer with padding leaves that padding in the tokenizer.json it saves
        AutoTokenizer.from_pretrained(HF / "model").save_pretrained(args.out / name)
        with torch.no_grad():  # texts as a user gives them (no mask token), single and paired
            singles = tokenizer(TEXTS, padding=True, return_token_type_ids=True, return_tensors="pt")
            pairs = tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_token_type_ids=True,
                              return_tensors="pt")
            tensors[f"{name}.text_logits"] = model(**singles).logits.contiguous()
            tensors[f"{name}.pair_logits"] = model(**pairs).logits.contiguous()
        output = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels[name])
        output.loss.backward()
        tensors[f"{name}.logits"] = output.logits.detach().contiguous()
        tensors[f"{name}.loss"] = output.loss.detach().reshape(1)
        for pname, p in model.named_parameters():
            tensors[f"{name}.grad.{pname}"] = p.grad.detach().contiguous()
    save_file(tensors, str(args.out / "expected.safetensors"))
    (args.out / "texts.json").write_text(json.dumps({"texts": TEXTS, "pairs": PAIRS}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: " + ", ".join(f"{k} loss {tensors[f'{k}.loss'].item():.6f}" for k in models))


def check_exports(folder: Path, fixtures: Path) -> int:
    """Loads tsbert's exports of the fixtures with transformers' Auto classes; compares the logits."""
    batch = json.loads((HF / "expected.json").read_text(encoding="utf-8"))["batch"]
    ids, types, mask = (torch.tensor(batch[k]) for k in ("inputIds", "tokenTypeIds", "attentionMask"))
    expected = load_file(str(fixtures / "expected.safetensors"))
    failed = 0
    for name in ("single", "multi", "regression", "token"):
        auto = AutoModelForTokenClassification if name == "token" else AutoModelForSequenceClassification
        model, info = auto.from_pretrained(folder / name, output_loading_info=True)
        unloaded = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        with torch.no_grad():
            logits = model.eval()(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
        diff = (logits - expected[f"{name}.logits"]).abs()
        if name == "token":
            diff = diff * mask.unsqueeze(-1)
        worst = diff.max().item()
        # pairs through the export's own tokenizer, as a user's code calls it: segment ids included
        tokenizer = AutoTokenizer.from_pretrained(folder / name)
        pairs = tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt")
        with torch.no_grad():
            pair_logits = model(**pairs).logits
        pair_diff = (pair_logits - expected[f"{name}.pair_logits"]).abs()
        if name == "token":
            pair_diff = pair_diff * pairs["attention_mask"].unsqueeze(-1)
        worst = max(worst, pair_diff.max().item())
        ok = worst <= 1e-5 and not unloaded
        failed += not ok
        print(f"{name}: {type(model).__name__}, max abs logit difference {worst:.2e}, "
              f"{'nothing missing or unexpected' if not unloaded else unloaded}: {'PASS' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    main()
