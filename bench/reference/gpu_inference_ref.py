"""PyTorch's side of the GPU check's inference rows (run by `scripts/gpu-check.sh run`).

    python3 bench/reference/gpu_inference_ref.py prepare --dir /tmp/gpu-work/inference
    python3 bench/reference/gpu_inference_ref.py run --dir /tmp/gpu-work/inference --device cuda

`prepare`: DIR/minilm/ (all-MiniLM-L6-v2's sizes: 6 layers, hidden 384, 12 heads, FFN 1536)
and DIR/bert-base/ (bert-base-uncased's), each a transformers `BertModel` with seeded random
weights and ids.json (inference_ref.make_random_bert). bench/gpu-check.ts then times tsbert's
`encodeSequences` on them and writes DIR/tsbert.json ({"ROW B=b": {"perSec", "ms"}}) and
DIR/ROW/tsbert-b1.f32 (its last hidden states of the first row).

`run`: times transformers' `BertModel` of each folder (f32, eval mode, no autograd, TF32 off,
its default attention) on DEVICE: the last hidden states of the first B rows of ids.json,
copied to the host as tsbert returns them (B = 1: 3 untimed calls then 20 timed; B = 32: 3
then 10; the best counted), and prints one JSON object: for each row and B, PyTorch's and
tsbert's sequences a second and their ratio, the largest absolute difference between the two
sides' B = 1 states, and the ONNX Runtime execution providers on the machine (its CUDA one is
what a comparison with onnxruntime on the GPU needs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_ref import BERT_BASE, make_random_bert  # noqa: E402

MINILM = {**BERT_BASE, "hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536}
ROWS = {"minilm": MINILM, "bert-base": BERT_BASE}
BATCHES = {1: (3, 20), 32: (3, 10)}  # B: (untimed, timed) calls


def onnxruntime_providers() -> list[str] | str:
    try:
        import onnxruntime
    except ImportError as e:
        return f"not installed ({e})"
    return onnxruntime.get_available_providers()


def run(d: Path, device: str) -> dict:
    import numpy as np
    import torch
    from bench_step import timed
    from transformers import AutoModel

    torch.backends.cuda.matmul.allow_tf32 = False
    tsbert_path = d / "tsbert.json"
    tsbert = json.loads(tsbert_path.read_text()) if tsbert_path.exists() else {}
    report: dict = {"device": device, "torch": torch.__version__, "onnxruntimeProviders": onnxruntime_providers()}
    if device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(device)
    for row in ROWS:
        folder = d / row
        model = AutoModel.from_pretrained(folder).to(device).eval()
        ids = torch.tensor(json.loads((folder / "ids.json").read_text())["rows"])
        for b, (warmup, repeats) in BATCHES.items():
            x = ids[:b]

            def states(x=x):
                with torch.inference_mode():
                    inputs = {"input_ids": x.to(device), "attention_mask": torch.ones_like(x).to(device),
                              "token_type_ids": torch.zeros_like(x).to(device)}
                    return model(**inputs).last_hidden_state.cpu()

            ms = timed(states, warmup, repeats, device)
            torch_per_sec = b / (min(ms) / 1000)
            theirs = tsbert.get(f"{row} B={b}", {})
            entry = {"torchPerSec": torch_per_sec, "torchMs": ms, "tsbertPerSec": theirs.get("perSec"),
                     "tsbertError": theirs.get("error")}
            if theirs.get("perSec"):
                entry["ratio"] = theirs["perSec"] / torch_per_sec
            saved = folder / "tsbert-b1.f32"
            if b == 1 and saved.exists():
                mine = np.fromfile(saved, dtype="<f4")
                ref = states().numpy().reshape(-1)
                entry["maxAbsDiff"] = float(np.abs(mine - ref).max()) if mine.size == ref.size else \
                    f"tsbert wrote {mine.size} values, PyTorch has {ref.size}"
            report[f"{row} B={b}"] = entry
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["prepare", "run"])
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    if args.what == "prepare":
        for row, config in ROWS.items():
            make_random_bert(args.dir / row, config, args.dir / "no-minilm")
        print(f"gpu_inference_ref: models in {args.dir}", file=sys.stderr)
    else:
        print(json.dumps(run(args.dir, args.device), indent=1))


if __name__ == "__main__":
    main()
