"""The fixture of `tagTokens` (__test__/api/tag-tokens.spec.ts): a tiny BERT tagger and what
transformers' token-classification pipeline finds with it, for each aggregation strategy.

    bench/.venv/bin/python bench/reference/make_tag_fixtures.py [--out DIR]

Writes to DIR (default __test__/fixtures/tag-tokens/):
- model/: a seeded random `BertForTokenClassification` (hidden 32, 2 layers, 4 heads,
  intermediate 64, 64 positions, GELU, dropout 0) with the labels O, B-PER, I-PER, B-LOC, I-LOC
  in `id2label` / `label2id`, saved by `save_pretrained` (safetensors) with the lowercasing
  WordPiece tokenizer of crates/tsbert-core/tests/fixtures/hf/model (its tokenizer.json and
  vocab.txt copied as they are; tokenizer_config.json copied with `model_max_length` set to the
  model's 64 positions, where the pipeline cuts a longer text, as tagTokens does). Its weights
  are spread wider than Hugging Face's initialisation (encoder N(0, 0.2²), classifier
  N(0, 0.5²), every bias and layer norm moved off its initial value) so that the predicted
  label changes from token to token and the strategies disagree;
- expected.json: `texts` (sub-words, punctuation, repeated spaces, accents, an accent as a
  combining mark, CJK and kana, characters out of the vocabulary, an empty text, a text of more
  than 64 tokens, special tokens written in the text), `labels`, and `results[strategy][i]`:
  the pipeline's output for texts[i] with `aggregation_strategy` = strategy, for none, simple,
  first, average and max — each entity's `entity` (none) or `entity_group` (the others),
  `score`, `word`, `start`, `end` (Python string indices: code points) and `index` (none);
  `keepingO[strategy][i]`: the same with `ignore_labels=[]` (O tokens and groups kept), for
  none and simple; `relabelled`: `labels` RELABELLED below and `results`, the pipeline's output
  with the model's labels renamed so (config.json's id2label changed, the weights the same);
  `tokens[i]`: the tokens the tokenizer makes of texts[i] (for reading the
  fixture).

The pipeline runs each text alone (no padding); it cuts the long text at `model_max_length`
(64 tokens with [CLS] and [SEP]) by itself, since its preprocessing always truncates.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertForTokenClassification, pipeline

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "crates" / "tsbert-core" / "tests" / "fixtures" / "hf" / "model"
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
# the same model's labels renamed: without a B-/I- prefix (`get_tag` takes PER for an I- of its
# own type) and with another prefix (S-LOC: its own type to `get_tag`, but a group named LOC)
RELABELLED = ["O", "B-PER", "PER", "S-LOC", "LOC"]
STRATEGIES = ["none", "simple", "first", "average", "max"]
POSITIONS = 64
TEXTS = [
    # whole words and words split into sub-words (## pieces), several in a row
    "the careful drivers appear early in kyoto and the owners deserve answers",
    # punctuation (split off as tokens of their own; the pipeline's words glue them back)
    "yes, the crane is flying over the river. is it big?! no: 12:34",
    # runs of spaces, a tab and a newline between words
    "tokyo   is  a big\tcity \n  with    old houses",
    # accented letters the lowercasing tokenizer strips (é as one code point), CJK and kana
    "café crème brûlée: 東京は大きい都市です",
    # accents as combining marks: after a word (e + U+0301) the mark is left out of the token's
    # offsets; inside one (e + U+0300) the token "creme" is shorter than its text, which
    # transformers' test (a token of another length than its text) takes for a sub-word, so the
    # word strategies glue it to the word before; characters the vocabulary lacks ([UNK], whose
    # word is its text)
    "the cafe\u0301 is naive 😀 zebras like cre\u0300me coffee",
    # an empty text: no tokens, no entities
    "",
    # more than 64 tokens: cut at the model's positions
    " ".join(["the crane is flying over the river and a dog sat on the mat in tokyo,"] * 6),
    # special tokens written in the text: ordinary tokens to the pipeline (only the [CLS] and
    # [SEP] the tokenizer adds are left out)
    "japan [MASK] and [SEP] tokyo",
]


def tiny_tagger() -> BertForTokenClassification:
    """The seeded model, its weights spread so that predictions vary across tokens."""
    config = BertConfig(vocab_size=220, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=POSITIONS, type_vocab_size=2,
                        hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        initializer_range=0.2, num_labels=len(LABELS),
                        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    torch.manual_seed(2023)  # a seed whose tokens take all five labels
    model = BertForTokenClassification(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "classifier.weight":
                p.normal_(0.0, 0.5)
            elif name.endswith(".bias") or "LayerNorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def plain(entity: dict) -> dict:
    """An entity of the pipeline with numpy numbers made JSON's."""
    out = {}
    for key, value in entity.items():
        out[key] = value.item() if hasattr(value, "item") else value
    return out


def dumped(value, depth: int = 0) -> str:
    """`value` as JSON, a line for each text's tokens and for each entity (small diffs, few lines)."""
    if isinstance(value, dict) and depth < 3:
        pad = " " * (depth + 1)
        inner = f",\n{pad}".join(f"{json.dumps(k)}: {dumped(v, depth + 1)}" for k, v in value.items())
        return f"{{\n{pad}{inner}\n{' ' * depth}}}"
    if isinstance(value, list) and value and isinstance(value[0], (list, dict)):
        pad = " " * (depth + 1)
        return f"[\n{pad}" + f",\n{pad}".join(dumped(v, depth + 1) for v in value) + f"\n{' ' * depth}]"
    return json.dumps(value, ensure_ascii=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "__test__" / "fixtures" / "tag-tokens")
    args = ap.parse_args()
    folder = args.out / "model"
    if folder.exists():
        shutil.rmtree(folder)
    tiny_tagger().save_pretrained(folder, safe_serialization=True)
    for name in ("tokenizer.json", "vocab.txt"):
        shutil.copyfile(TOKENIZER / name, folder / name)
    tokenizer_config = json.loads((TOKENIZER / "tokenizer_config.json").read_text(encoding="utf-8"))
    tokenizer_config["model_max_length"] = POSITIONS
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8")

    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.is_fast and tokenizer.model_max_length == POSITIONS
    results: dict[str, list[list[dict]]] = {}
    kept: dict[str, list[list[dict]]] = {}
    for strategy in STRATEGIES:
        tagger = pipeline("token-classification", model=str(folder), tokenizer=str(folder),
                          aggregation_strategy=strategy, device="cpu")
        results[strategy] = [[plain(e) for e in tagger(text)] for text in TEXTS]
        if strategy in ("none", "simple"):
            kept[strategy] = [[plain(e) for e in tagger(text, ignore_labels=[])] for text in TEXTS]
    renamed = BertForTokenClassification.from_pretrained(folder, id2label=dict(enumerate(RELABELLED)),
                                                         label2id={l: i for i, l in enumerate(RELABELLED)})
    relabelled = {"labels": RELABELLED, "results": {}}
    for strategy in STRATEGIES:
        tagger = pipeline("token-classification", model=renamed.eval(), tokenizer=tokenizer,
                          aggregation_strategy=strategy, device="cpu")
        relabelled["results"][strategy] = [[plain(e) for e in tagger(text)] for text in TEXTS]
    tokens = [tokenizer.convert_ids_to_tokens(tokenizer(text, truncation=True)["input_ids"]) for text in TEXTS]
    assert len(tokens[6]) == POSITIONS, "the long text must be cut"
    expected = {"texts": TEXTS, "labels": LABELS, "tokens": tokens, "results": results, "keepingO": kept,
                "relabelled": relabelled}
    (args.out / "expected.json").write_text(dumped(expected) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in folder.iterdir())
    labels = {l: sum(e["entity"] == l for r in results["none"] for e in r) for l in LABELS[1:]}
    print(f"wrote {args.out} (model {size / 1024:.0f} KiB); tokens tagged (none): {labels}; entities: "
          + ", ".join(f"{s} {sum(map(len, results[s]))}" for s in STRATEGIES))


if __name__ == "__main__":
    main()
