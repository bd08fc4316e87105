"""What the TypeScript bench scripts write for the reference (bench/support.ts): the config,
tsbert's weights and the batches. Reads safetensors with torch alone (no `safetensors`
package), so that the GPU machine, which has PyTorch and nothing else, can run
bench_step.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tsbert_ref import Batch, BertModel, Config, check_names  # noqa: E402

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}


def read_safetensors(path: Path | str) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file (F32, F64, I32, I64), by name."""
    data = Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        start, end = t["data_offsets"]
        flat = torch.frombuffer(bytearray(body[start:end]), dtype=_DTYPES[t["dtype"]]) if end > start else \
            torch.zeros(0, dtype=_DTYPES[t["dtype"]])
        out[name] = flat.reshape(t["shape"])
    return out


def load_batches(path: Path | str) -> list[Batch]:
    """The batches of a safetensors file written by `writeBatches` (bench/support.ts): tokens,
    segments [N,B,L], valid_lens, nsp_labels [N,B], pred_positions, mlm_weights, mlm_labels
    [N,B,P] (int32 / float32) → N `Batch`es (int64 / float32)."""
    t = read_safetensors(path)
    n = t["tokens"].shape[0]
    i64 = lambda key, i: t[key][i].to(torch.int64).contiguous()  # noqa: E731
    return [Batch(tokens=i64("tokens", i), segments=i64("segments", i), valid_lens=i64("valid_lens", i),
                  pred_positions=i64("pred_positions", i), mlm_weights=t["mlm_weights"][i].contiguous(),
                  mlm_labels=i64("mlm_labels", i), nsp_labels=i64("nsp_labels", i)) for i in range(n)]


def config_from_json(c: dict) -> Config:
    """A `Config` from tsbert's camelCase `BertConfig`."""
    return Config(vocab_size=c["vocabSize"], hidden=c["hidden"], ffn_hidden=c["ffnHidden"], heads=c["heads"],
                  layers=c["layers"], dropout=c["dropout"], max_positions=c["maxPositions"])


def load_model(cfg: Config, weights: Path | str) -> BertModel:
    """The reference model holding the weights of a tsbert safetensors file (strict, by name)."""
    model = BertModel(cfg)
    check_names(model)
    model.load_state_dict(read_safetensors(weights), strict=True)
    return model
