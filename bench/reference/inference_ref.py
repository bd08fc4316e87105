"""onnxruntime's side of `npm run bench:inference` (bench/inference.ts): one job in this (fresh) process.

    bench/.venv/bin/python bench/reference/inference_ref.py prepare --dir bench/out/inference --minilm bench/.cache/all-MiniLM-L6-v2
    bench/.venv/bin/python bench/reference/inference_ref.py run --dir bench/out/inference --row minilm --batch-size 32 --threads 2
    bench/.venv/bin/python bench/reference/inference_ref.py run --dir bench/out/inference --row minilm --dtype q8 --batch-size 1

`prepare` (once; cached, each file written under a temporary name and renamed):
- DIR/minilm/model-fused.onnx: all-MiniLM-L6-v2 (transformers' `BertModel`, eager attention)
  exported to ONNX (inputs input_ids, attention_mask, token_type_ids; batch and tokens axes
  dynamic; output last_hidden_state) and optimised with onnxruntime's BERT fusions
  (`onnxruntime.transformers.optimizer.optimize_model(model_type="bert", num_heads, hidden_size)`).
- DIR/bert-base/: a BERT-base-sized model with random weights (bert-base-uncased's config.json:
  12 layers, hidden 768, 12 heads, FFN 3072, vocabulary 30522, 512 positions, GELU, eps 1e-12),
  a seeded `transformers.BertModel` saved with `save_pretrained` (config.json,
  model.safetensors) with bert-base-uncased's vocab.txt (all-MiniLM-L6-v2's, the same file), the
  same exported and fused (model-fused.onnx), and ids.json: 32 rows of 128 seeded random
  ordinary wordpiece ids (999..30521), what both sides encode.
- fusions.json beside each fused model: the fused operators onnxruntime's optimizer reports.
- with `--dtypes` including q8: DIR/ROW/model-q8.onnx, the fused model dynamically quantised
  (`onnxruntime.quantization.quantize_dynamic(model_input=<model-fused.onnx>, weight_type=QuantType.QInt8)`:
  int8 weights, activations quantised at run time). onnxruntime 1.32's plain call fails on the
  fused model (its shape inference cannot type the outputs of the com.microsoft operators), so
  when it does the same call is made again with `extra_options={"DefaultTensorType": FLOAT}`,
  what its error message advises; only if that fails too is the unfused export quantised
  instead. quantized.json beside it says which (`source`, `extra_options`, the errors before) and
  counts the quantised graph's operators.

`run` (what is timed; PyTorch is kept out of the process, so its peak RSS is onnxruntime's,
the tokenizer's and numpy's): the fused model (`--dtype q8`: model-q8.onnx) in an
`onnxruntime.InferenceSession` (`intra_op_num_threads` = THREADS, `inter_op_num_threads` = 1, CPU):
- `--row minilm`: embed DIR/sentences.json's texts (all at batch 32, the first 200 at batch 1):
  each pass tokenizes them with the fast tokenizer (`AutoTokenizer`), sorts them by token
  length, and a batch at a time tokenizes and pads, runs the model, mean-pools over the
  attention mask and L2-normalises in numpy (sentence-transformers' recipe); a warm-up pass over
  the first 32 texts, then `--repeats` timed passes (default 3), the best one counted.
- `--row bert-base`: the last hidden states of the first B rows of ids.json (segments 0, every
  position valid); `--warmup` untimed calls (default 1 at B ≥ 8, else 3) then `--repeats` timed
  ones (default 3 at B ≥ 8, else 20), the best one counted.
Prints one JSON line: {"perSec": texts or sequences a second of the best, "seconds": each timed
pass or call, "peakRssMiB": this process's peak resident memory (ru_maxrss), "threads",
"fusions", "quantized" (q8: quantized.json), "versions"}. `--save FILE` writes the last timed
result as little-endian float32 (the embeddings in the texts' order, or the B×128×768 states).
A `run` whose cached files are missing makes them first in a child process (its memory not
counted).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROWS = ("minilm", "bert-base")
BERT_BASE = {  # bert-base-uncased's config.json
    "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
    "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
}
SEQ_LEN, ROWS_OF_IDS, FIRST_WORDPIECE = 128, 32, 999  # bert-base-uncased: 999 is "!", after [unused993]


DTYPES = ("f32", "q8")


def fused_path(d: Path, row: str) -> Path:
    return d / row / "model-fused.onnx"


def model_path(d: Path, row: str, dtype: str) -> Path:
    """The ONNX model a `run` of `dtype` times."""
    return fused_path(d, row) if dtype == "f32" else d / row / "model-q8.onnx"


def replace_atomically(write, path: Path) -> None:
    """Calls write(tmp) and renames tmp to `path`, so that a half-written file is never taken for the cache."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


# --- prepare (PyTorch, transformers, the exporter and the optimizer) -------------------------------

def export_onnx(model, sample: dict, raw: Path) -> None:
    """Exports `model` (transformers' BertModel) to ONNX at `raw` with dynamic batch and tokens, unfused."""
    import torch

    class Encoder(torch.nn.Module):
        """The model with named inputs, as the exporter traces it; the last hidden state out."""

        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: D102
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.no_grad():
        torch.onnx.export(Encoder(model.eval()), tuple(sample[n] for n in names), str(raw), input_names=names,
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]})


def export_and_fuse(model, sample: dict, out: Path) -> dict:
    """Exports `model` to ONNX, fuses it with onnxruntime's BERT fusions, writes `out`."""
    from onnxruntime.transformers import optimizer

    raw = out.with_name("model.onnx")
    export_onnx(model, sample, raw)
    c = model.config
    fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=c.num_attention_heads,
                                     hidden_size=c.hidden_size)
    stats = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    replace_atomically(lambda tmp: fused.save_model_to_file(str(tmp)), out)
    raw.unlink()
    (out.parent / "fusions.json").write_text(json.dumps(stats) + "\n")
    return stats


def torch_model(d: Path, row: str, minilm: Path) -> tuple:
    """transformers' BertModel of `row` (its folder made first) and a sample of its inputs, for the exporter."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    if row == "minilm":
        tokenizer = AutoTokenizer.from_pretrained(minilm)
        sample = tokenizer(["a sample sentence", "and a second, longer sample sentence"], padding=True,
                           return_tensors="pt")
        return AutoModel.from_pretrained(minilm, attn_implementation="eager"), dict(sample)
    folder = d / "bert-base"
    ids = torch.tensor(json.loads((folder / "ids.json").read_text())["rows"][:2])
    sample = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    return AutoModel.from_pretrained(folder, attn_implementation="eager"), sample


def prepare_minilm(d: Path, minilm: Path) -> None:
    out = fused_path(d, "minilm")
    if out.exists():
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = export_and_fuse(*torch_model(d, "minilm", minilm), out)
    print(f"inference_ref: exported and fused {minilm.name} into {out} ({stats})", file=sys.stderr)


def make_random_bert(folder: Path, config: dict, minilm: Path) -> None:
    """A transformers `BertModel` of `config` with seeded random weights in `folder`
    (`save_pretrained`), bert-base-uncased's vocab.txt beside it and ids.json: ROWS_OF_IDS rows
    of SEQ_LEN seeded random ordinary wordpiece ids. Each file is made only when missing."""
    import numpy as np
    import torch
    from transformers import BertConfig, BertModel

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "model.safetensors").exists():
        torch.manual_seed(0)
        model = BertModel(BertConfig(**config))
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        for f in tmp.iterdir():
            os.replace(f, folder / f.name)
        tmp.rmdir()
    if not (folder / "vocab.txt").exists():
        vocab = minilm / "vocab.txt"  # all-MiniLM-L6-v2 has bert-base-uncased's vocabulary
        if vocab.exists():
            replace_atomically(lambda tmp: shutil.copyfile(vocab, tmp), folder / "vocab.txt")
        else:  # the special tokens where bert-base-uncased has them, placeholders elsewhere
            special = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}
            words = [special.get(i, f"[unused{i}]" if i < FIRST_WORDPIECE else f"w{i}") for i in range(30522)]
            replace_atomically(lambda tmp: tmp.write_text("\n".join(words) + "\n"), folder / "vocab.txt")
    if not (folder / "ids.json").exists():
        rows = np.random.default_rng(0).integers(FIRST_WORDPIECE, config["vocab_size"], (ROWS_OF_IDS, SEQ_LEN))
        replace_atomically(lambda tmp: tmp.write_text(json.dumps({"seqLen": SEQ_LEN, "rows": rows.tolist()}) + "\n"),
                           folder / "ids.json")


def prepare_bert_base(d: Path, minilm: Path) -> None:
    folder = d / "bert-base"
    make_random_bert(folder, BERT_BASE, minilm)
    out = fused_path(d, "bert-base")
    if not out.exists():
        stats = export_and_fuse(*torch_model(d, "bert-base", minilm), out)
        print(f"inference_ref: made the BERT-base-sized model in {folder} and fused it ({stats})", file=sys.stderr)


def quantize(source: Path, out: Path, extra_options: dict) -> None:
    """onnxruntime's dynamic quantisation of `source` (int8 weights, QInt8) into `out`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    replace_atomically(lambda tmp: quantize_dynamic(model_input=source, model_output=tmp, weight_type=QuantType.QInt8,
                                                    extra_options=dict(extra_options)), out)  # it adds its own


def prepare_q8(d: Path, row: str, minilm: Path) -> None:
    """DIR/ROW/model-q8.onnx: the fused model dynamically quantised, else (said in quantized.json) the unfused one."""
    import logging as py_logging

    import onnx
    out = model_path(d, row, "q8")
    if out.exists():
        return
    py_logging.getLogger().setLevel(py_logging.ERROR)  # the quantizer's advice to pre-process first
    attempts = [{}, {"DefaultTensorType": onnx.TensorProto.FLOAT}]
    errors: list[str] = []
    made: dict | None = None
    for extra in attempts:
        try:
            quantize(fused_path(d, row), out, extra)
            made = {"source": "fused", "extra_options": {k: "FLOAT" for k in extra}}
            break
        except Exception as e:  # noqa: BLE001 — said in quantized.json and on stderr
            errors.append(f"{type(e).__name__}: {str(e).split('. ')[0][:300]}")
    if made is None:
        raw = out.with_name("model-unfused.onnx")
        export_onnx(*torch_model(d, row, minilm), raw)
        quantize(raw, out, {})
        raw.unlink()
        made = {"source": "unfused", "extra_options": {}}
    Path(str(out) + ".tmp").unlink(missing_ok=True)
    graph = onnx.load(str(out), load_external_data=False).graph
    ops: dict[str, int] = {}
    for node in graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    made |= {"errors": errors, "ops": dict(sorted(ops.items()))}
    (out.parent / "quantized.json").write_text(json.dumps(made) + "\n")
    how = f"the {made['source']} model"
    if made["extra_options"]:
        how += f" with extra_options {made['extra_options']}"
    print(f"inference_ref: quantised {how} into {out}" + (f" (before: {'; '.join(errors)})" if errors else ""),
          file=sys.stderr)


def prepare(d: Path, minilm: Path, rows: list[str], dtypes: list[str]) -> None:
    import warnings
    warnings.filterwarnings("ignore")  # the exporter's notes on tracing (the mask's shape is the inputs')
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    from transformers.utils import logging
    logging.disable_progress_bar()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if "minilm" in rows:
        prepare_minilm(d, minilm)
    if "bert-base" in rows:
        prepare_bert_base(d, minilm)
    if "q8" in dtypes:
        for row in rows:
            prepare_q8(d, row, minilm)


# --- run (onnxruntime, the tokenizer and numpy; no PyTorch) ----------------------------------------

def call_seconds(fn, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls of fn after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def run(args) -> None:
    # the job needs no PyTorch, but transformers imports it when it is installed (+ ~490 MiB of RSS
    # that onnxruntime does not use): hidden from this process, so the peak RSS is onnxruntime's
    sys.modules["torch"] = None  # type: ignore[assignment]
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import numpy as np
    import onnxruntime

    d: Path = args.dir
    path = model_path(d, args.row, args.dtype)
    if not path.exists():  # made in a child process, whose memory is not this one's
        subprocess.run([sys.executable, __file__, "prepare", "--dir", str(d), "--minilm", str(args.minilm),
                        "--rows", args.row, "--dtypes", args.dtype], check=True)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    b = args.batch_size
    versions = {"onnxruntime": onnxruntime.__version__, "numpy": np.__version__}
    last: list = [None]

    if args.row == "minilm":
        import transformers
        from transformers import AutoTokenizer
        versions["transformers"] = transformers.__version__
        tokenizer = AutoTokenizer.from_pretrained(args.minilm)
        texts: list[str] = json.loads((d / "sentences.json").read_text(encoding="utf-8"))
        if b == 1:
            texts = texts[:200]
        hidden = json.loads((args.minilm / "config.json").read_text())["hidden_size"]

        def embed(these: list[str]) -> np.ndarray:
            """sentence-transformers' encode: sorted by length, batches of b, mean pooling, L2 normalisation."""
            lengths = [len(ids) for ids in tokenizer(these, truncation=True, max_length=512)["input_ids"]]
            order = sorted(range(len(these)), key=lengths.__getitem__)
            out = np.empty((len(these), hidden), dtype=np.float32)
            for start in range(0, len(order), b):
                rows = order[start:start + b]
                enc = tokenizer([these[i] for i in rows], padding=True, truncation=True, max_length=512,
                                return_tensors="np")
                states = session.run(None, {n: enc[n].astype(np.int64, copy=False) for n in inputs})[0]
                mask = enc["attention_mask"][..., None].astype(np.float32)
                pooled = (states * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
                out[rows] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            return out

        warmup, repeats = 0, args.repeats or 3
        embed(texts[:32])

        def job() -> None:
            last[0] = embed(texts)
        count = len(texts)
    else:
        ids = np.array(json.loads((d / "bert-base" / "ids.json").read_text())["rows"][:b], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        feeds = {n: feeds[n] for n in inputs}
        warmup = args.warmup if args.warmup is not None else (1 if b >= 8 else 3)
        repeats = args.repeats or (3 if b >= 8 else 20)

        def job() -> None:
            last[0] = session.run(None, feeds)[0]
        count = b

    seconds = call_seconds(job, warmup, repeats)
    if args.save:
        np.ascontiguousarray(last[0], dtype="<f4").tofile(args.save)
    fusions_file = path.parent / "fusions.json"
    quantized_file = path.parent / "quantized.json"
    print(json.dumps({
        "perSec": count / min(seconds), "seconds": seconds,
        "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": args.threads, "count": count,
        "fusions": json.loads(fusions_file.read_text()) if fusions_file.exists() else None,
        "quantized": json.loads(quantized_file.read_text()) if args.dtype == "q8" and quantized_file.exists() else None,
        "versions": versions,
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["prepare", "run"])
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--minilm", type=Path, default=Path(__file__).resolve().parent.parent / ".cache/all-MiniLM-L6-v2")
    ap.add_argument("--rows", default=",".join(ROWS), help="prepare: comma-separated rows")
    ap.add_argument("--dtypes", default=",".join(DTYPES), help="prepare: comma-separated dtypes (q8: quantise too)")
    ap.add_argument("--row", choices=ROWS)
    ap.add_argument("--dtype", choices=DTYPES, default="f32", help="run: f32 (the fused model) or q8 (model-q8.onnx)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--save", type=Path)
    args = ap.parse_args()
    if args.what == "prepare":
        rows = args.rows.split(",")
        unknown = set(rows) - set(ROWS)
        if unknown:
            ap.error(f"--rows: unknown {sorted(unknown)}")
        dtypes = args.dtypes.split(",")
        if set(dtypes) - set(DTYPES):
            ap.error(f"--dtypes: unknown {sorted(set(dtypes) - set(DTYPES))}")
        prepare(args.dir, args.minilm, rows, dtypes)
    else:
        if args.row is None:
            ap.error("run needs --row")
        run(args)


if __name__ == "__main__":
    main()
