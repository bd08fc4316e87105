"""The reference values of the task metrics (src/training/task-metrics.ts), made by scikit-learn,
SciPy and seqeval, for __test__/training/task-metrics.spec.ts (which runs without Python).

    bench/.venv/bin/python bench/reference/make_metric_fixtures.py [--out FILE]

Writes FILE (default __test__/fixtures/task-metrics.json) from seeded cases:
- single: class ids (gold, predicted) and class names, with scikit-learn's accuracy_score,
  per-class precision_recall_fscore_support, its macro averages (labels = every class,
  zero_division=0) and confusion_matrix; one case has a class never predicted, one a class
  predicted but never gold;
- multi: 0/1 label matrices, with the subset accuracy (exact match), micro and macro f1_score and
  the per-label scores;
- regression: predictions and targets (one case with ties on both sides), with scipy.stats'
  pearsonr and spearmanr and mean_squared_error;
- entities: tag sentences (IOB2, IOB1, IOE1, IOE2, IOBES, and random B/I/E/S/O tags) with a
  tagger's errors, with seqeval.metrics' (default mode, not strict) precision, recall, F1, token
  accuracy, classification_report per entity type and get_entities of both sides.
Deterministic: running it again rewrites the same file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import seqeval.metrics as sq
from scipy.stats import pearsonr, spearmanr
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, mean_squared_error,
                             precision_recall_fscore_support)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "__test__" / "fixtures" / "task-metrics.json"
SEED = 20261207
TYPES = ["LOC", "MISC", "ORG", "PER"]


def per_class(gold, predicted, names, **kwargs) -> list[dict]:
    """scikit-learn's precision, recall, F1 and support of each class (or label)."""
    p, r, f, s = precision_recall_fscore_support(gold, predicted, average=None, zero_division=0, **kwargs)
    return [{"label": n, "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, n in enumerate(names)]


def single_case(name: str, gold: np.ndarray, predicted: np.ndarray, names: list[str]) -> dict:
    labels = list(range(len(names)))
    p, r, f, _ = precision_recall_fscore_support(gold, predicted, average="macro", labels=labels, zero_division=0)
    return {
        "name": name, "names": names, "gold": gold.tolist(), "predicted": predicted.tolist(),
        "accuracy": float(accuracy_score(gold, predicted)),
        "macroPrecision": float(p), "macroRecall": float(r), "macroF1": float(f),
        "perClass": per_class(gold, predicted, names, labels=labels),
        "confusion": confusion_matrix(gold, predicted, labels=labels).tolist(),
    }


def noisy(rng: np.random.Generator, gold: np.ndarray, k: int, rate: float) -> np.ndarray:
    """`gold` with a share `rate` of its ids replaced by random ones."""
    wrong = rng.random(gold.shape) < rate
    return np.where(wrong, rng.integers(0, k, gold.shape), gold)


def single_cases(rng: np.random.Generator) -> list[dict]:
    three = ["negative", "neutral", "positive"]
    five = ["a", "b", "c", "d", "e"]
    gold = rng.integers(0, 3, 60)
    cases = [single_case("3 classes", gold, noisy(rng, gold, 3, 0.35), three)]
    gold = rng.integers(0, 5, 200)
    cases.append(single_case("5 classes", gold, noisy(rng, gold, 5, 0.5), five))
    gold = rng.integers(0, 5, 80)
    predicted = noisy(rng, gold, 5, 0.4)
    predicted[predicted == 3] = 1
    cases.append(single_case("5 classes, one never predicted", gold, predicted, five))
    gold = rng.integers(0, 2, 40) * 2  # classes 0 and 2 only
    predicted = noisy(rng, gold, 3, 0.4)
    predicted[:3] = 1  # class 1 is predicted but never gold
    cases.append(single_case("3 classes, one never gold", gold, predicted, three))
    return cases


def multi_cases(rng: np.random.Generator) -> list[dict]:
    names = ["sports", "politics", "science", "arts"]
    gold = (rng.random((50, 4)) < [0.5, 0.3, 0.2, 0.05]).astype(int)
    gold[:, 3] = 0  # a label never gold ...
    predicted = np.where(rng.random(gold.shape) < 0.2, 1 - gold, gold)
    predicted[10:14] = gold[10:14]  # ... some rows exactly right
    return [{
        "name": "4 labels", "names": names, "gold": gold.tolist(), "predicted": predicted.tolist(),
        "exactMatch": float(accuracy_score(gold, predicted)),
        "microF1": float(f1_score(gold, predicted, average="micro", zero_division=0)),
        "macroF1": float(f1_score(gold, predicted, average="macro", zero_division=0)),
        "perClass": per_class(gold, predicted, names),
    }]


def regression_case(name: str, gold: np.ndarray, predicted: np.ndarray) -> dict:
    return {
        "name": name, "gold": gold.tolist(), "predicted": predicted.tolist(),
        "pearson": float(pearsonr(predicted, gold).statistic),
        "spearman": float(spearmanr(predicted, gold).statistic),
        "mse": float(mean_squared_error(gold, predicted)),
    }


def regression_cases(rng: np.random.Generator) -> list[dict]:
    gold = np.round(rng.uniform(0, 5, 60), 4)
    cases = [regression_case("continuous", gold, np.round(gold + rng.normal(0, 1, 60), 4))]
    gold = rng.integers(0, 6, 50).astype(float)  # similarity grades 0..5
    predicted = np.round(np.clip(gold + rng.normal(0, 1.2, 50), 0, 5) * 2) / 2  # halves, ties
    cases.append(regression_case("ties on both sides", gold, predicted))
    return cases


def spans(rng: np.random.Generator, length: int) -> list[tuple[str, int, int]]:
    """Random entities (type, start, end inclusive) of a sentence, some of them adjacent."""
    out: list[tuple[str, int, int]] = []
    i = int(rng.integers(0, 3))
    while i < length:
        end = min(length - 1, i + int(rng.integers(0, 3)))
        out.append((TYPES[int(rng.integers(0, len(TYPES)))], i, end))
        i = end + 1 + int(rng.integers(0, 3))  # 0: the next entity touches this one
    return out


def encode(entities: list[tuple[str, int, int]], length: int, scheme: str) -> list[str]:
    """The tags of `entities` in `scheme`."""
    tags = ["O"] * length
    for n, (t, start, end) in enumerate(entities):
        before = n > 0 and entities[n - 1][2] == start - 1 and entities[n - 1][0] == t
        after = n + 1 < len(entities) and entities[n + 1][1] == end + 1 and entities[n + 1][0] == t
        for i in range(start, end + 1):
            if scheme == "IOB2":
                p = "B" if i == start else "I"
            elif scheme == "IOB1":
                p = "B" if i == start and before else "I"
            elif scheme == "IOE2":
                p = "E" if i == end else "I"
            elif scheme == "IOE1":
                p = "E" if i == end and after else "I"
            else:  # IOBES
                p = "S" if start == end else "B" if i == start else "E" if i == end else "I"
            tags[i] = f"{p}-{t}"
    return tags


def entity_case(name: str, gold: list[list[str]], predicted: list[list[str]]) -> dict:
    report = sq.classification_report(gold, predicted, output_dict=True, zero_division=0)
    types = sorted(k for k in report if not k.endswith(" avg"))
    return {
        "name": name, "gold": gold, "predicted": predicted,
        "precision": float(sq.precision_score(gold, predicted, zero_division=0)),
        "recall": float(sq.recall_score(gold, predicted, zero_division=0)),
        "f1": float(sq.f1_score(gold, predicted, zero_division=0)),
        "accuracy": float(sq.accuracy_score(gold, predicted)),
        "perType": [{"label": t, "precision": float(report[t]["precision"]), "recall": float(report[t]["recall"]),
                     "f1": float(report[t]["f1-score"]), "support": int(report[t]["support"])} for t in types],
        "goldEntities": [list(e) for e in get_entities(gold)],
        "predictedEntities": [list(e) for e in get_entities(predicted)],
    }


def scheme_tags(scheme: str) -> list[str]:
    prefixes = {"IOB2": "BI", "IOB1": "BI", "IOE2": "IE", "IOE1": "IE", "IOBES": "BIES", "mixed": "BIES"}[scheme]
    return ["O"] + [f"{p}-{t}" for p in prefixes for t in TYPES]


def entity_cases(rng: np.random.Generator) -> list[dict]:
    cases = []
    for scheme in ["IOB2", "IOB1", "IOE2", "IOE1", "IOBES"]:
        tags = scheme_tags(scheme)
        gold, predicted = [], []
        for _ in range(12):
            length = int(rng.integers(3, 14))
            sentence = encode(spans(rng, length), length, scheme)
            gold.append(sentence)
            # a tagger's errors: some tags replaced by others of the scheme (an I- after O, a type
            # change inside an entity, a cut or joined entity, ...)
            predicted.append([tags[int(rng.integers(0, len(tags)))] if rng.random() < 0.15 else t for t in sentence])
        cases.append(entity_case(scheme, gold, predicted))
    tags = scheme_tags("mixed")
    gold = [[tags[int(rng.integers(0, len(tags)))] for _ in range(int(rng.integers(2, 12)))] for _ in range(10)]
    predicted = [[tags[int(rng.integers(0, len(tags)))] if rng.random() < 0.3 else t for t in s] for s in gold]
    cases.append(entity_case("random B/I/E/S/O tags", gold, predicted))
    gold = [["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "E-ORG", "S-MISC", "E-MISC", "I-MISC"],
            ["B-PER", "E-PER", "E-PER", "S-LOC", "I-LOC", "O", "E-ORG"], ["O", "O"], ["I-MISC"]]
    predicted = [["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "I-ORG", "I-ORG", "S-MISC", "E-MISC", "O"],
                 ["B-PER", "E-PER", "O", "S-LOC", "I-LOC", "O", "E-ORG"], ["O", "I-PER"], ["B-MISC"]]
    cases.append(entity_case("by hand: I- and E- opening entities, type changes", gold, predicted))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    fixture = {
        "made_by": "bench/reference/make_metric_fixtures.py",
        "single": single_cases(rng),
        "multi": multi_cases(rng),
        "regression": regression_cases(rng),
        "entities": entity_cases(rng),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
