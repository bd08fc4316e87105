"""Independent PyTorch reference of tsbert's BERT (the d2l "pretraining BERT" model).

A development tool, not a runtime dependency: it makes the golden fixtures the Rust/TS tests
check (make_golden.py) and backs parity / learning-curve / speed comparisons. Parameter
names and shapes are those of the native core, so a state_dict and a tsbert safetensors
checkpoint map one to one. Works in float32 (default) and float64 (`model.double()`).

Two deliberate differences from the textbook code, as in the native core: the position
table is a trained parameter, and padded MLM predictions (weight 0) carry no weight.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MASK_VALUE = -1e9  # score given to keys past a sequence's valid length (exp → exactly 0)
LN_EPS = 1e-5


@dataclass(frozen=True)
class Config:
    """Model sizes, every one given (the bench scripts pass tsbert's config, see parity.config_from_json)."""

    vocab_size: int
    hidden: int
    ffn_hidden: int
    heads: int
    layers: int
    dropout: float
    max_positions: int

    def to_json(self) -> dict:
        """The config with tsbert's camelCase names (its `BertConfig`)."""
        d = asdict(self)
        return {"vocabSize": d["vocab_size"], "hidden": d["hidden"], "ffnHidden": d["ffn_hidden"],
                "heads": d["heads"], "layers": d["layers"], "dropout": d["dropout"],
                "maxPositions": d["max_positions"]}


def param_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Every parameter name → shape, written out from the spec (not read off the modules)."""
    V, H, Fh = cfg.vocab_size, cfg.hidden, cfg.ffn_hidden
    shapes = {"encoder.token_embedding.weight": (V, H), "encoder.segment_embedding.weight": (2, H),
              "encoder.pos_embedding": (cfg.max_positions, H)}
    for i in range(cfg.layers):
        p = f"encoder.blks.{i}"
        for w in ("W_q", "W_k", "W_v", "W_o"):
            shapes[f"{p}.attention.{w}.weight"], shapes[f"{p}.attention.{w}.bias"] = (H, H), (H,)
        shapes.update({f"{p}.addnorm1.ln.weight": (H,), f"{p}.addnorm1.ln.bias": (H,),
                       f"{p}.ffn.dense1.weight": (Fh, H), f"{p}.ffn.dense1.bias": (Fh,),
                       f"{p}.ffn.dense2.weight": (H, Fh), f"{p}.ffn.dense2.bias": (H,),
                       f"{p}.addnorm2.ln.weight": (H,), f"{p}.addnorm2.ln.bias": (H,)})
    shapes.update({"mlm.mlp.0.weight": (H, H), "mlm.mlp.0.bias": (H,),
                   "mlm.mlp.2.weight": (H,), "mlm.mlp.2.bias": (H,),
                   "mlm.mlp.3.weight": (V, H), "mlm.mlp.3.bias": (V,),
                   "hidden.0.weight": (H, H), "hidden.0.bias": (H,),
                   "nsp.output.weight": (2, H), "nsp.output.bias": (2,)})
    return shapes


class MultiHeadAttention(nn.Module):
    """Self-attention with `heads` heads; keys at positions >= valid_len get zero weight."""

    def __init__(self, cfg: Config):
        super().__init__()
        H = cfg.hidden
        self.heads = cfg.heads
        self.W_q, self.W_k, self.W_v, self.W_o = (nn.Linear(H, H) for _ in range(4))
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, key_valid: Tensor) -> Tensor:
        """x [B,L,H], key_valid [B,L] bool → [B,L,H]."""
        B, L, H = x.shape
        d = H // self.heads
        # [B,L,H] → [B,heads,L,d]: head h takes features h*d:(h+1)*d
        q, k, v = (w(x).reshape(B, L, self.heads, d).transpose(1, 2) for w in (self.W_q, self.W_k, self.W_v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)  # [B,heads,L,L]
        scores = scores.masked_fill(~key_valid[:, None, None, :], MASK_VALUE)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        context = (weights @ v).transpose(1, 2).reshape(B, L, H)  # concat heads
        return self.W_o(context)


class AddNorm(nn.Module):
    """LayerNorm(dropout(y) + x)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.dropout = nn.Dropout(cfg.dropout)
        self.ln = nn.LayerNorm(cfg.hidden, eps=LN_EPS)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x, y [B,L,H] → [B,L,H]."""
        return self.ln(self.dropout(y) + x)


class PositionWiseFFN(nn.Module):
    """dense2(relu(dense1(x)))."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.dense1 = nn.Linear(cfg.hidden, cfg.ffn_hidden)
        self.dense2 = nn.Linear(cfg.ffn_hidden, cfg.hidden)

    def forward(self, x: Tensor) -> Tensor:
        """[B,L,H] → [B,L,F] → [B,L,H]."""
        return self.dense2(torch.relu(self.dense1(x)))


class EncoderBlock(nn.Module):
    """Post-norm transformer encoder block."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.attention = MultiHeadAttention(cfg)
        self.addnorm1 = AddNorm(cfg)
        self.ffn = PositionWiseFFN(cfg)
        self.addnorm2 = AddNorm(cfg)

    def forward(self, x: Tensor, key_valid: Tensor) -> Tensor:
        """[B,L,H] → [B,L,H]."""
        y = self.addnorm1(x, self.attention(x, key_valid))
        return self.addnorm2(y, self.ffn(y))


class BertEncoder(nn.Module):
    """Token + segment + (trained) position embeddings, then `layers` encoder blocks."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.segment_embedding = nn.Embedding(2, cfg.hidden)
        self.pos_embedding = nn.Parameter(torch.randn(cfg.max_positions, cfg.hidden))
        self.blks = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.layers))

    def forward(self, tokens: Tensor, segments: Tensor, valid_lens: Tensor) -> Tensor:
        """tokens, segments [B,L] int, valid_lens [B] → encoded [B,L,H]."""
        L = tokens.shape[1]
        x = self.token_embedding(tokens) + self.segment_embedding(segments) + self.pos_embedding[:L]
        key_valid = torch.arange(L, device=tokens.device)[None, :] < valid_lens[:, None]  # [B,L]
        for blk in self.blks:
            x = blk(x, key_valid)
        return x


class MaskLM(nn.Module):
    """MLM head: Linear, ReLU, LayerNorm, Linear to the vocabulary (as `mlm.mlp.{0,2,3}`)."""

    def __init__(self, cfg: Config):
        super().__init__()
        H = cfg.hidden
        self.mlp = nn.Sequential(nn.Linear(H, H), nn.ReLU(), nn.LayerNorm(H, eps=LN_EPS), nn.Linear(H, cfg.vocab_size))

    def forward(self, encoded: Tensor, pred_positions: Tensor) -> Tensor:
        """encoded [B,L,H], pred_positions [B,P] → logits [B,P,V]."""
        rows = torch.arange(encoded.shape[0], device=encoded.device)[:, None]
        return self.mlp(encoded[rows, pred_positions])  # gathered: [B,P,H]


class NextSentencePred(nn.Module):
    """NSP output layer (`nsp.output`), applied to the pooled `<cls>` representation."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.output = nn.Linear(cfg.hidden, 2)

    def forward(self, pooled: Tensor) -> Tensor:
        """[B,H] → [B,2]."""
        return self.output(pooled)


class BertModel(nn.Module):
    """Encoder + MLM head + pooler (`hidden.0`, Tanh) + NSP head. PyTorch default init."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.encoder = BertEncoder(cfg)
        self.hidden = nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.Tanh())
        self.mlm = MaskLM(cfg)
        self.nsp = NextSentencePred(cfg)

    def forward(self, tokens: Tensor, segments: Tensor, valid_lens: Tensor,
                pred_positions: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor]:
        """→ (encoded [B,L,H], mlm_logits [B,P,V] or None, nsp_logits [B,2])."""
        encoded = self.encoder(tokens, segments, valid_lens)
        mlm_logits = self.mlm(encoded, pred_positions) if pred_positions is not None else None
        nsp_logits = self.nsp(self.hidden(encoded[:, 0, :]))
        return encoded, mlm_logits, nsp_logits


@dataclass
class Batch:
    """A pretraining batch as tensors: tokens/segments [B,L], valid_lens [B],
    pred_positions/mlm_weights/mlm_labels [B,P], nsp_labels [B] (1 = isNext)."""

    tokens: Tensor
    segments: Tensor
    valid_lens: Tensor
    pred_positions: Tensor
    mlm_weights: Tensor
    mlm_labels: Tensor
    nsp_labels: Tensor

    @staticmethod
    def from_json(b: dict) -> "Batch":
        """From the flat row-major arrays of a `Batch`-shaped (src/data/batch.ts) dict (batchSize, seqLen, numPreds, ...)."""
        B, L, P = b["batchSize"], b["seqLen"], b["numPreds"]
        i64 = lambda key, *shape: torch.tensor(b[key], dtype=torch.int64).reshape(*shape)
        return Batch(i64("tokens", B, L), i64("segments", B, L), i64("validLens", B), i64("predPositions", B, P),
                     torch.tensor(b["mlmWeights"], dtype=torch.float32).reshape(B, P), i64("mlmLabels", B, P),
                     i64("nspLabels", B))


def losses(model: BertModel, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Forward pass and losses → (mlm_loss, nsp_loss, encoded, mlm_logits, nsp_logits).

    MLM: sum(w * CE) / (sum(w) + 1e-8) over all B*P predictions; NSP: mean CE over the batch.
    """
    encoded, mlm_logits, nsp_logits = model(batch.tokens, batch.segments, batch.valid_lens, batch.pred_positions)
    V = mlm_logits.shape[-1]
    ce = F.cross_entropy(mlm_logits.reshape(-1, V), batch.mlm_labels.reshape(-1), reduction="none")
    w = batch.mlm_weights.reshape(-1).to(ce.dtype)
    mlm_loss = (ce * w).sum() / (w.sum() + 1e-8)
    nsp_loss = F.cross_entropy(nsp_logits, batch.nsp_labels)
    return mlm_loss, nsp_loss, encoded, mlm_logits, nsp_logits


def make_optimizer(model: BertModel, lr: float = 0.01) -> torch.optim.Adam:
    """torch.optim.Adam with betas (0.9, 0.999), eps 1e-8, no weight decay."""
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)


def train_step(model: BertModel, opt: torch.optim.Optimizer, batch: Batch) -> tuple[float, float]:
    """One step on MLM + NSP (model in train mode); returns the (mlm, nsp) losses before the update."""
    model.train()
    opt.zero_grad(set_to_none=True)
    mlm_loss, nsp_loss, *_ = losses(model, batch)
    (mlm_loss + nsp_loss).backward()
    opt.step()
    return mlm_loss.item(), nsp_loss.item()


def check_names(model: BertModel) -> None:
    """Asserts the state_dict holds exactly the spec's names and shapes."""
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = param_shapes(model.cfg)
    assert got == want, f"state_dict differs from the spec: {set(got) ^ set(want)} / shapes"
