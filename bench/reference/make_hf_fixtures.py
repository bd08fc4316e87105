"""Hugging Face fixtures, made by Hugging Face itself (transformers, tokenizers), for the core's
tests (crates/tsbert-core/tests/integration/hf_golden.rs) and the TypeScript tokenizer tests.

    bench/.venv/bin/python bench/reference/make_hf_fixtures.py [--out DIR]
    bench/.venv/bin/python bench/reference/make_hf_fixtures.py --check-export DIR

Writes to DIR (default crates/tsbert-core/tests/fixtures/hf/):
- model/: a seeded random `BertForPreTraining` (hidden 32, 2 layers, 4 heads, GELU, tied
  decoder, dropout 0) saved by `save_pretrained` (config.json, model.safetensors) with a
  WordPiece tokenizer trained by `tokenizers` on the sentences below (tokenizer.json,
  tokenizer_config.json, special_tokens_map.json, vocab.txt);
- bare/: the same encoder alone, as a `BertModel` (no heads, no `bert.` prefix), the way
  sentence-transformers saves one, with the tokenizer;
- model-untied/: another seeded random `BertForPreTraining` of those sizes with an untied
  decoder (`tie_word_embeddings: false`), whose two MLM biases (`cls.predictions.bias`, unused
  by transformers' forward pass then, and `cls.predictions.decoder.bias`) differ, so that a
  loader reading the wrong one, or an export writing only one, shows;
- expected.json: the tokenizer's ids, type ids, tokens and offsets for sentences with accents,
  punctuation, unknown characters, CJK and an input longer than the model (cut to 32), and the
  batch (input ids, segments, attention mask, MLM labels, NSP labels);
- expected.safetensors: on that batch, `hidden` (last hidden states), `mlm_logits` (every
  position), `nsp_logits`, `loss`, and `grad.<name>` of every parameter (Hugging Face names) for
  MLM + NSP loss; expected-untied.safetensors: `hidden`, `mlm_logits` and `nsp_logits` of
  model-untied/ on the same batch.

Every bias and layer-norm parameter of both models is moved off its initial value (zeros, ones)
by random noise before saving, so that a tensor missing or misnamed on either side shows.

With --check-export DIR: loads the Hugging Face folder tsbert exported to DIR with
`BertForPreTraining.from_pretrained` and `AutoTokenizer.from_pretrained`, runs the inputs of
DIR/tsbert-outputs.json through them and compares the logits with tsbert's (exit 1 if the
relative error exceeds 1e-5, or if transformers reports a missing, unexpected or mismatched
tensor).

Deterministic once the tokenizer is trained: run again with the same packages it writes the
same files (--retrain trains the tokenizer anew).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import BertWordPieceTokenizer
from tokenizers.processors import TemplateProcessing
from transformers import AutoTokenizer, BertConfig, BertForPreTraining, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[2]
MAX_LEN = 32

TRAINING_TEXT = [
    "the crane is flying over the river",
    "a crane driver came to work early",
    "he just left the old house by the river",
    "the big dog sat on the mat and slept",
    "café owners serve coffee with crème brûlée",
    "naïve questions deserve careful answers",
    "tokyo and kyoto are cities in japan",
    "東京は大きい都市です",
    "numbers like 1234 and 56.78 appear, too!",
    "punctuation: commas, periods. question marks? yes!",
] * 20

SENTENCES = [
    ["The crane is flying over the river."],
    ["A crane driver came.", "He just left."],
    ["Café déjà vu, naïve crème brûlée!"],
    ["東京は大きい"],
    ["unknown ☃ symbols ⚙ and emoji 🤖 here"],
    ["    spaces   and\ttabs\nnewlines   "],
    [" ".join(["the crane is flying over the river"] * 8)],
    ["", "an empty first sentence"],
]


def tokenizer_and_vocab(out: Path, retrain: bool) -> PreTrainedTokenizerFast:
    """The WordPiece tokenizer: trained on TRAINING_TEXT the first time (or with --retrain; the
    trainer breaks ties between equally frequent pairs differently from run to run), then
    rebuilt from the vocab.txt that training wrote, so that the fixtures stay the same."""
    vocab_file = out / "vocab.txt"
    if vocab_file.exists() and not retrain:
        wordpiece = BertWordPieceTokenizer(str(vocab_file), lowercase=True, strip_accents=None)
    else:
        wordpiece = BertWordPieceTokenizer(lowercase=True, strip_accents=None)
        wordpiece.train_from_iterator(TRAINING_TEXT, vocab_size=220, min_frequency=1, show_progress=False)
    cls, sep = wordpiece.token_to_id("[CLS]"), wordpiece.token_to_id("[SEP]")
    wordpiece.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                  special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = PreTrainedTokenizerFast(tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=MAX_LEN)
    fast.save_pretrained(out)
    vocab = sorted(wordpiece.get_vocab().items(), key=lambda kv: kv[1])
    (out / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")
    return fast


def random_pretraining_model(config: BertConfig, seed: int) -> BertForPreTraining:
    """A seeded `BertForPreTraining` in eval mode whose biases and layer norms are non-trivial
    (initialised to zeros and ones, they would hide a mapping mistake)."""
    torch.manual_seed(seed)
    model = BertForPreTraining(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("LayerNorm.weight", "LayerNorm.bias")) or name.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "crates" / "tsbert-core" / "tests" / "fixtures" / "hf")
    ap.add_argument("--check-export", type=Path)
    ap.add_argument("--retrain", action="store_true", help="train the tokenizer anew (changes every fixture)")
    args = ap.parse_args()
    if args.check_export:
        sys.exit(check_export(args.check_export))

    out = args.out
    (out / "model").mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer_and_vocab(out / "model", args.retrain)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=MAX_LEN, type_vocab_size=2, hidden_act="gelu",
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, tie_word_embeddings=True)
    model = random_pretraining_model(config, seed=0)
    model.save_pretrained(out / "model", safe_serialization=True)
    model.bert.save_pretrained(out / "bare", safe_serialization=True)
    tokenizer.save_pretrained(out / "bare")

    tokenized = []
    for pair in SENTENCES:
        e = tokenizer(*pair, truncation=True, max_length=MAX_LEN, return_offsets_mapping=True, return_token_type_ids=True)
        tokenized.append({"text": pair, "ids": e["input_ids"], "typeIds": e["token_type_ids"],
                          "tokens": tokenizer.convert_ids_to_tokens(e["input_ids"]),
                          "offsets": [list(o) for o in e["offset_mapping"]]})

    pairs = [SENTENCES[0], SENTENCES[1], SENTENCES[2], ["the river is big", "the dog sat on the mat"]]
    encoded = [tokenizer(*p, truncation=True, max_length=MAX_LEN, return_token_type_ids=True) for p in pairs]
    width = max(len(e["input_ids"]) for e in encoded)
    ids = torch.full((len(pairs), width), tokenizer.pad_token_id)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, e in enumerate(encoded):  # padded on the right, as tsbert pads
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        types[row, :n] = torch.tensor(e["token_type_ids"])
        mask[row, :n] = 1
    labels = torch.full_like(ids, -100)
    generator = torch.Generator().manual_seed(1)
    for row in range(ids.shape[0]):
        valid = int(mask[row].sum())
        positions = torch.randperm(valid - 2, generator=generator)[:2] + 1
        labels[row, positions] = ids[row, positions]
        ids[row, positions[0]] = tokenizer.mask_token_id
    nsp = torch.tensor([0, 0, 1, 0])

    model.train()  # dropout is 0: train mode only so that gradients flow as in pretraining
    output = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels, next_sentence_label=nsp,
                   output_hidden_states=True)
    output.loss.backward()
    tensors = {
        "hidden": output.hidden_states[-1].detach().contiguous(),
        "mlm_logits": output.prediction_logits.detach().contiguous(),
        "nsp_logits": output.seq_relationship_logits.detach().contiguous(),
        "loss": output.loss.detach().reshape(1),
    }
    for name, p in model.named_parameters():
        tensors[f"grad.{name}"] = p.grad.detach().contiguous()
    save_file(tensors, str(out / "expected.safetensors"))

    config.tie_word_embeddings = False
    untied = random_pretraining_model(config, seed=1)
    head = untied.cls.predictions
    assert head.decoder.bias is not head.bias and not torch.equal(head.decoder.bias, head.bias)
    untied.save_pretrained(out / "model-untied", safe_serialization=True)
    tokenizer.save_pretrained(out / "model-untied")
    with torch.no_grad():
        u = untied(input_ids=ids, token_type_ids=types, attention_mask=mask, output_hidden_states=True)
    save_file({"hidden": u.hidden_states[-1].contiguous(), "mlm_logits": u.prediction_logits.contiguous(),
               "nsp_logits": u.seq_relationship_logits.contiguous()}, str(out / "expected-untied.safetensors"))
    expected = {"maxLength": MAX_LEN, "tokenized": tokenized,
                "batch": {"inputIds": ids.tolist(), "tokenTypeIds": types.tolist(), "attentionMask": mask.tolist(),
                          "labels": labels.tolist(), "nextSentenceLabels": nsp.tolist()}}
    (out / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}: vocabulary {tokenizer.vocab_size}, loss {output.loss.item():.6f}")


def check_export(folder: Path) -> int:
    """Loads tsbert's Hugging Face export with transformers and compares the logits."""
    ours = json.loads((folder / "tsbert-outputs.json").read_text(encoding="utf-8"))
    model, info = BertForPreTraining.from_pretrained(folder, output_loading_info=True)
    model.eval()
    unloaded = {k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(ours["text"], ours.get("pair"))["input_ids"]
    same_ids = ids == ours["ids"]
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]))
    worst = 0.0
    for key, theirs in [("mlmLogits", out.prediction_logits[0]), ("nspLogits", out.seq_relationship_logits[0])]:
        mine = torch.tensor(ours[key]).reshape(theirs.shape)
        worst = max(worst, float((mine - theirs).abs().max() / theirs.abs().max()))
    ok = same_ids and worst <= 1e-5 and not unloaded
    print(json.dumps({"sameTokenIds": same_ids, "worstRelativeError": worst, "loadReport": unloaded, "pass": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    main()
