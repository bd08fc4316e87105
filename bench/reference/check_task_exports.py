"""Checks tsbert's Hugging Face exports of models it fine-tuned (bench/task-exports.ts writes them).

    bench/.venv/bin/python bench/reference/check_task_exports.py DIR

DIR/<name>/ holds the export of a model fine-tuned a few steps by tsbert, and DIR/<name>.json
what tsbert computed with it: the texts (or pairs), the head's raw outputs, `classify()`'s scores
of every label (sequence heads) or `tagTokens()`'s entities for each aggregation strategy (token
heads). Each export is loaded by `AutoModelForSequenceClassification` /
`AutoModelForTokenClassification` (no tensor missing, unexpected or mismatched; `id2label` and
`problem_type` as tsbert's) and run through transformers' `pipeline`: the outputs must match
(logits within 1e-5, scores within 1e-5, the same entities with the same words and offsets).
Prints a line a model; exit 1 if any fails.
"""

import json
import sys
from pathlib import Path

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    pipeline,
)

TOLERANCE = 1e-5


def utf16_offsets(text: str) -> list[int]:
    """JavaScript's index (UTF-16 code units) of each Python index (code points) of `text`."""
    out, at = [], 0
    for ch in text:
        out.append(at)
        at += 2 if ord(ch) > 0xFFFF else 1
    out.append(at)
    return out


def check(folder: Path, name: str) -> list[str]:
    """What differs between tsbert's outputs and transformers' for the export `name` (empty: none)."""
    ours = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    token = ours["kind"] == "token_classification"
    auto = AutoModelForTokenClassification if token else AutoModelForSequenceClassification
    model, info = auto.from_pretrained(folder / name, output_loading_info=True)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder / name)
    problems = [f"{k}: {v}" for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v]
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if labels != ours["labels"]:
        problems.append(f"id2label {labels} != {ours['labels']}")
    if not token and model.config.problem_type != ours["kind"]:
        problems.append(f"problem_type {model.config.problem_type} != {ours['kind']}")
    inputs = ours["inputs"]
    firsts = [x if isinstance(x, str) else x[0] for x in inputs]
    seconds = None if all(isinstance(x, str) for x in inputs) else [x[1] for x in inputs]
    enc = tokenizer(firsts, seconds, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    width = logits.shape[-1]
    for row, raw in enumerate(ours["logits"]):
        theirs = logits[row].reshape(-1, width)[: len(raw) // width].reshape(-1)
        worst = (theirs - torch.tensor(raw)).abs().max().item()
        if worst > TOLERANCE:
            problems.append(f"input {row}: logits differ by {worst:.2e}")
    if token:
        for strategy, expected in ours["entities"].items():
            tagger = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy=strategy)
            for text, mine, theirs in zip(firsts, expected, tagger(firsts)):
                js = utf16_offsets(text)
                got = [
                    (e.get("entity_group", e.get("entity")), e["word"], js[e["start"]], js[e["end"]], float(e["score"]))
                    for e in theirs
                ]
                want = [(e["entity"], e["word"], e["start"], e["end"], e["score"]) for e in mine]
                same = len(got) == len(want) and all(
                    g[:4] == w[:4] and abs(g[4] - w[4]) <= TOLERANCE for g, w in zip(got, want)
                )
                if not same:
                    problems.append(f"{strategy} entities of {text!r}: ours {want}, transformers {got}")
    else:
        classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, top_k=None)
        given = [x if isinstance(x, str) else {"text": x[0], "text_pair": x[1]} for x in inputs]
        for row, (mine, theirs) in enumerate(zip(ours["scores"], classifier(given))):
            theirs = {e["label"]: e["score"] for e in theirs}
            worst = max(abs(theirs[e["label"]] - e["score"]) for e in mine)
            if worst > TOLERANCE or len(theirs) != len(mine):
                problems.append(f"input {row}: pipeline scores differ by {worst:.2e}")
    return problems


def main() -> int:
    folder = Path(sys.argv[1])
    failed = 0
    for spec in sorted(folder.glob("*.json")):
        name = spec.stem
        problems = check(folder, name)
        failed += bool(problems)
        verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems[:5])
        print(f"{name}: transformers loads tsbert's fine-tuned export, same logits and pipeline outputs: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
