"""sentence-transformers' side of `npm run bench:hf`'s embedding check (bench/hf.ts writes the
inputs and reports).

    bench/.venv/bin/python bench/reference/st_compare.py --dir bench/out/hf --model bench/.cache/all-MiniLM-L6-v2 --export bench/out/hf/export-minilm

Reads DIR/st-texts.json (short and long texts) and embeds them with
`SentenceTransformer(model).encode()` at its defaults (the folder's modules.json, pooling,
Normalize and max_seq_length), on the CPU in float32; then the same with the folder tsbert
exported (`--export`), which sentence-transformers must load with the same modules. Writes
DIR/st.json: both sets of vectors, the modules and max_seq_length each folder gave.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sentence_transformers import SentenceTransformer


def vectors(folder: str, texts: list[str]) -> dict:
    """The default embeddings of `texts` by the folder's model, with what it was made of."""
    model = SentenceTransformer(folder, device="cpu")
    out = model.encode(texts, batch_size=32, convert_to_numpy=True)
    return {
        "vectors": out.astype("float32").tolist(),
        "modules": [type(m).__name__ for m in model],
        "maxSeqLength": model.max_seq_length,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--export", required=True)
    args = parser.parse_args()
    texts = json.loads(Path(args.dir, "st-texts.json").read_text())
    result = {"source": vectors(args.model, texts), "export": vectors(args.export, texts)}
    Path(args.dir, "st.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
