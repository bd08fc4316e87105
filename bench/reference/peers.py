"""The peers of `npm run bench:peers`: one job of one peer in this (fresh) process.

    bench/.venv/bin/python bench/reference/peers.py --peer hf --job train --dir bench/out/peers/b512 --threads 2

Peers, on the textbook configuration that DIR/config.json gives (vocab, hidden, FFN, heads,
layers, dropout, max positions; Adam lr) and the batch of DIR/batches.safetensors:

- `hf`: Hugging Face transformers' `BertForPreTraining` (SDPA attention, ReLU like the
  textbook, no embedding LayerNorm difference: transformers' own architecture), its MLM head on
  the gathered prediction positions only, the decoder untied from the embeddings (the textbook
  model's computation), weighted MLM + mean NSP cross-entropy, `torch.optim.Adam`.
- `d2l`: the textbook's own code (the `d2l` package, 1.0.3): `d2l.BERTModel`, the loss of
  `d2l._get_batch_loss_bert`, `torch.optim.Adam`, the step of `d2l.train_bert`.
- `ort`: onnxruntime (encode only) on transformers' `BertModel` exported to ONNX with a dynamic
  batch and optimised with onnxruntime's BERT fusions (attention, bias + GELU, skip +
  LayerNorm), `intra_op_num_threads` = THREADS.

Jobs: `train` (one training step: forward, loss, backward, Adam; train mode) and `encode` (the
encoder's last hidden states, no autograd). `warmup` untimed runs then `repeats` timed ones;
writes DIR/<peer>-<job>.json: {"ms": [...], "pairs_per_sec": of the median, "peak_rss_mib":
this process's peak resident memory, "threads", "versions"}.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_ref import call_seconds  # noqa: E402
from inputs import load_batches  # noqa: E402


def hf_config(c: dict, transformers):
    """transformers' BertConfig of the textbook sizes (ReLU, untied decoder, SDPA)."""
    return transformers.BertConfig(
        vocab_size=c["vocabSize"], hidden_size=c["hidden"], num_hidden_layers=c["layers"],
        num_attention_heads=c["heads"], intermediate_size=c["ffnHidden"], hidden_act="relu",
        hidden_dropout_prob=c["dropout"], attention_probs_dropout_prob=c["dropout"],
        max_position_embeddings=c["maxPositions"], type_vocab_size=2, tie_word_embeddings=False,
        attn_implementation="sdpa")


def weighted_mlm_nsp(mlm_logits, nsp_logits, batch) -> torch.Tensor:
    """Weighted MLM cross-entropy (as the textbook: Σ w·CE / (Σ w + 1e-8)) + mean NSP cross-entropy."""
    ce = nn.functional.cross_entropy(mlm_logits.reshape(-1, mlm_logits.shape[-1]), batch.mlm_labels.reshape(-1),
                                     reduction="none")
    w = batch.mlm_weights.reshape(-1)
    return (ce * w).sum() / (w.sum() + 1e-8) + nn.functional.cross_entropy(nsp_logits, batch.nsp_labels)


def hf_jobs(c: dict, lr: float, batch):
    import transformers
    model = transformers.BertForPreTraining(hf_config(c, transformers))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    attention = (torch.arange(batch.tokens.shape[1])[None, :] < batch.valid_lens[:, None]).long()

    def train() -> None:
        model.train()
        out = model.bert(input_ids=batch.tokens, token_type_ids=batch.segments, attention_mask=attention)
        hidden, pooled = out.last_hidden_state, out.pooler_output
        picked = hidden.gather(1, batch.pred_positions[:, :, None].expand(-1, -1, hidden.shape[-1]))
        loss = weighted_mlm_nsp(model.cls.predictions(picked), model.cls.seq_relationship(pooled), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def encode() -> None:
        model.eval()
        with torch.no_grad():
            model.bert(input_ids=batch.tokens, token_type_ids=batch.segments, attention_mask=attention)

    return {"train": train, "encode": encode}, {"transformers": transformers.__version__}


def d2l_jobs(c: dict, lr: float, batch):
    import d2l
    from d2l import torch as d2l_torch
    net = d2l_torch.BERTModel(c["vocabSize"], num_hiddens=c["hidden"], ffn_num_hiddens=c["ffnHidden"],
                              num_heads=c["heads"], num_blks=c["layers"], dropout=c["dropout"],
                              max_len=c["maxPositions"])
    loss = nn.CrossEntropyLoss()
    # d2l.train_bert's first call runs a forward pass to materialise the lazy layers
    net(batch.tokens[:1], batch.segments[:1], batch.valid_lens[:1].float(), batch.pred_positions[:1])
    trainer = torch.optim.Adam(net.parameters(), lr=lr)

    def train() -> None:
        net.train()
        trainer.zero_grad()
        _, _, l = d2l_torch._get_batch_loss_bert(
            net, loss, c["vocabSize"], batch.tokens, batch.segments, batch.valid_lens.float(),
            batch.pred_positions, batch.mlm_weights, batch.mlm_labels, batch.nsp_labels)
        l.backward()
        trainer.step()

    def encode() -> None:
        net.eval()
        with torch.no_grad():
            net.encoder(batch.tokens, batch.segments, batch.valid_lens.float())

    return {"train": train, "encode": encode}, {"d2l": d2l.__version__}


def ort_jobs(c: dict, batch, threads: int, work: Path):
    import onnxruntime
    import transformers
    from onnxruntime.transformers import optimizer

    model = transformers.BertModel(hf_config(c, transformers), add_pooling_layer=False).eval()
    raw, fused = work / "bert.onnx", work / "bert-fused.onnx"
    attention = (torch.arange(batch.tokens.shape[1])[None, :] < batch.valid_lens[:, None]).long()

    class Named(nn.Module):  # transformers 5 takes keyword inputs
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, token_type_ids, attention_mask):
            return self.bert(input_ids=input_ids, token_type_ids=token_type_ids,
                             attention_mask=attention_mask).last_hidden_state

    dynamic = {"input_ids": {0: "b", 1: "l"}, "token_type_ids": {0: "b", 1: "l"}, "attention_mask": {0: "b", 1: "l"}}
    torch.onnx.export(Named(model), (batch.tokens, batch.segments, attention), str(raw), dynamo=False,
                      input_names=list(dynamic), output_names=["hidden"], dynamic_axes=dynamic, opset_version=17)
    optimizer.optimize_model(str(raw), model_type="bert", num_heads=c["heads"], hidden_size=c["hidden"]) \
        .save_model_to_file(str(fused))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(fused), options, providers=["CPUExecutionProvider"])
    feeds = {"input_ids": batch.tokens.numpy(), "token_type_ids": batch.segments.numpy(),
             "attention_mask": attention.numpy()}
    return {"encode": lambda: session.run(None, feeds)}, {"onnxruntime": onnxruntime.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", choices=["hf", "d2l", "ort"], required=True)
    ap.add_argument("--job", choices=["train", "encode"], required=True)
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--threads", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    meta = json.loads((args.dir / "config.json").read_text())
    (batch,) = load_batches(args.dir / "batches.safetensors")
    c = meta["config"]
    if args.peer == "hf":
        jobs, versions = hf_jobs(c, meta["lr"], batch)
    elif args.peer == "d2l":
        jobs, versions = d2l_jobs(c, meta["lr"], batch)
    else:
        jobs, versions = ort_jobs(c, batch, args.threads, args.dir)
    ms = [s * 1000 for s in call_seconds(jobs[args.job], meta["warmup"], meta["repeats"])]
    median = sorted(ms)[len(ms) // 2]
    result = {"ms": ms, "pairs_per_sec": batch.tokens.shape[0] * 1000 / median,
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "threads": args.threads, "versions": {"torch": torch.__version__, **versions}}
    (args.dir / f"{args.peer}-{args.job}.json").write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
