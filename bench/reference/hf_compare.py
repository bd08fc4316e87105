"""Hugging Face's side of `npm run bench:hf` (bench/hf.ts writes the inputs and reports).

    bench/.venv/bin/python bench/reference/hf_compare.py --dir bench/out/hf --model bench/.cache/all-MiniLM-L6-v2 --threads 2

Reads DIR/sentences.json (the texts) and DIR/tsbert.safetensors (tsbert's token states of the
first `states` texts, concatenated, and its mean-pooled embeddings of every text). With
transformers (the model and its fast tokenizer, float32 on the CPU) and sentence-transformers'
recipe (mean over the attention mask): token ids, token states and pooled embeddings, compared
with tsbert's. Then embedding throughput in sentences/sec at batch 32 and 1, the texts sorted by
length as sentence-transformers sorts them, for PyTorch and for onnxruntime (the model exported
to ONNX once, into the model's folder, from eager attention: the SDPA path traces a graph that
ignores the mask of padded batches). The onnxruntime states of a padded batch are checked
against PyTorch's (`onnxMaxAbsStateDiff`). Writes DIR/hf.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_ref import export_onnx  # noqa: E402
from inputs import read_safetensors  # noqa: E402


def mean_pool(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling: the mean of the states where the mask is 1."""
    m = mask[..., None].astype(states.dtype)
    return (states * m).sum(1) / np.clip(m.sum(1), 1e-9, None)


def batches(texts: list[str], tokenizer, size: int):
    """The texts sorted by length, `size` at a time, tokenized and padded (numpy)."""
    order = sorted(range(len(texts)), key=lambda i: len(tokenizer(texts[i])["input_ids"]))
    for start in range(0, len(order), size):
        rows = [texts[i] for i in order[start:start + size]]
        yield tokenizer(rows, padding=True, truncation=True, max_length=512, return_tensors="np")


def throughput(run, texts: list[str], tokenizer, size: int, repeats: int = 3) -> float:
    """Sentences/sec of embedding `texts` in sorted batches of `size` with `run` (best of `repeats`)."""
    run(next(batches(texts, tokenizer, size)))  # warm up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for b in batches(texts, tokenizer, size):
            run(b)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    texts: list[str] = json.loads((args.dir / "sentences.json").read_text(encoding="utf-8"))
    ours = read_safetensors(args.dir / "tsbert.safetensors")
    meta = json.loads((args.dir / "tsbert.json").read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model).eval()

    ids = [tokenizer(t, truncation=True, max_length=512)["input_ids"] for t in texts]
    same_ids = ids == meta["ids"]
    worst_state, pooled = 0.0, []
    offset = 0
    with torch.no_grad():
        for i, t in enumerate(texts):
            e = tokenizer(t, truncation=True, max_length=512, return_tensors="pt")
            states = model(**e).last_hidden_state[0].numpy()
            if i < meta["states"]:
                mine = ours["states"][offset:offset + states.shape[0]].numpy()
                offset += states.shape[0]
                worst_state = max(worst_state, float(np.abs(mine - states).max()))
            pooled.append(mean_pool(states[None], np.ones((1, states.shape[0]), dtype=np.int64))[0])
    theirs = np.stack(pooled)
    mine = ours["embeddings"].numpy()
    cosine = (mine * theirs).sum(1) / (np.linalg.norm(mine, axis=1) * np.linalg.norm(theirs, axis=1))

    def torch_run(b) -> np.ndarray:
        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v) for k, v in b.items()}).last_hidden_state.numpy()
        return mean_pool(out, b["attention_mask"])

    import onnxruntime as ort
    onnx_path = args.model / "model.eager.onnx"
    if not onnx_path.exists():
        eager = AutoModel.from_pretrained(args.model, attn_implementation="eager")
        export_onnx(eager, tokenizer(["a sample sentence"], return_tensors="pt"), onnx_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def ort_run(b) -> np.ndarray:
        feed = {k: v.astype(np.int64) for k, v in b.items()}
        return mean_pool(session.run(None, feed)[0], b["attention_mask"])

    padded = tokenizer(texts[:8], padding=True, truncation=True, max_length=512, return_tensors="np")
    with torch.no_grad():
        want = model(**{k: torch.from_numpy(v) for k, v in padded.items()}).last_hidden_state.numpy()
    got = session.run(None, {k: v.astype(np.int64) for k, v in padded.items()})[0]
    valid = padded["attention_mask"].astype(bool)
    onnx_diff = float(np.abs(got[valid] - want[valid]).max())

    result = {
        "sameTokenIds": same_ids,
        "onnxMaxAbsStateDiff": onnx_diff,
        "maxAbsStateDiff": worst_state,
        "minCosine": float(cosine.min()),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "threads": args.threads,
        "sentencesPerSec": {
            "torch": {"32": throughput(torch_run, texts, tokenizer, 32), "1": throughput(torch_run, texts[:200], tokenizer, 1)},
            "onnxruntime": {"32": throughput(ort_run, texts, tokenizer, 32), "1": throughput(ort_run, texts[:200], tokenizer, 1)},
        },
    }
    (args.dir / "hf.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
