//! The BERT model of Dive into Deep Learning's pretraining chapter, top to bottom: the input
//! embeddings, multi-head self-attention, the post-LN encoder block, the MLM and NSP heads,
//! and [`BertModel`], which strings them together. The variants of Hugging Face's BERT are
//! options of [`BertConfig`]: GELU, a layer norm after the embeddings, the layer-norm epsilon,
//! the number of segment types, an MLM decoder tied to the token embeddings, absent heads.
//!
//! Shapes: `B` rows of `L` tokens, `H` hidden, `heads` attention heads of width `d = H / heads`,
//! `N` masked positions to predict, `V` vocabulary size.
//!
//! Parameter names follow the textbook's PyTorch module paths
//! (`encoder.blks.0.attention.W_q.weight`, …), so a checkpoint maps one to one.

use candle_core::Tensor;

use crate::config::{Activation, BertConfig, TaskHead, TaskKind};
use crate::error::{InputError, Result};
use crate::model::layers::{folded_product, LayerNorm, Linear, Mode};
use crate::model::packing::Packing;
use crate::ops::attention::{attention, KeyMask};
use crate::ops::decoder_loss::{decoder_loss, Targets};
use crate::params::{Init, ParamStore};

/// The name of the token embedding table (`[V, H]`).
pub(super) const TOKEN_TABLE: &str = "encoder.token_embedding.weight";

/// The input representation: `token[id] + segment[s] + position[i]`, then (BERT, not the
/// textbook) a layer norm and dropout. The position table is a trained parameter (the textbook
/// freezes it by accident; this one learns).
#[derive(Debug, Clone)]
pub(super) struct Embeddings {
    pub(super) token: Tensor,
    pub(super) segment: Tensor,
    pub(super) position: Tensor,
    pub(super) norm: Option<LayerNorm>,
    dropout: f64,
}

impl Embeddings {
    /// `encoder.token_embedding.weight` `[V, H]`, `encoder.segment_embedding.weight`
    /// `[types, H]`, `encoder.pos_embedding` `[maxPositions, H]`, all N(0, 1); with
    /// `embedding_norm`, `encoder.embedding_norm`.
    fn new(params: &mut ParamStore, config: &BertConfig) -> Result<Self> {
        let h = config.hidden;
        Ok(Self {
            token: params.create(TOKEN_TABLE, &[config.vocab_size, h], Init::StandardNormal)?,
            segment: params.create(
                "encoder.segment_embedding.weight",
                &[config.type_vocab_size, h],
                Init::StandardNormal,
            )?,
            position: params.create("encoder.pos_embedding", &[config.max_positions, h], Init::StandardNormal)?,
            norm: if config.embedding_norm {
                Some(LayerNorm::new(params, "encoder.embedding_norm", h, config.layer_norm_eps)?)
            } else {
                None
            },
            dropout: config.dropout,
        })
    }

    /// `tokens`, `segments`: `[B, L]` u32 → `[B, L, H]`.
    fn forward(&self, tokens: &Tensor, segments: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let (b, l) = tokens.dims2()?;
        let h = self.token.dim(1)?;
        let tok = self.token.index_select(&tokens.flatten_all()?, 0)?;
        let seg = self.segment.index_select(&segments.flatten_all()?, 0)?;
        let x = (tok + seg)?.reshape((b, l, h))?.broadcast_add(&self.position.narrow(0, 0, l)?)?;
        self.normalized(x, mode)
    }

    /// The valid tokens of `tokens`, `segments` `[B, L]` u32 alone → `[N, H]`.
    fn forward_packed(&self, tokens: &Tensor, segments: &Tensor, packing: &Packing, mode: &mut Mode) -> Result<Tensor> {
        let tok = self.token.index_select(&packing.pack(tokens)?, 0)?;
        let seg = self.segment.index_select(&packing.pack(segments)?, 0)?;
        let pos = self.position.index_select(packing.positions(), 0)?;
        self.normalized(((tok + seg)? + pos)?, mode)
    }

    /// The layer norm and dropout after the sum, when the model has them.
    fn normalized(&self, x: Tensor, mode: &mut Mode) -> Result<Tensor> {
        match &self.norm {
            Some(norm) => mode.dropout(&norm.forward(&x)?, self.dropout),
            None => Ok(x),
        }
    }
}

/// Multi-head scaled dot-product self-attention with a key-padding mask: Q/K/V/O projections
/// (with bias) around `heads` parallel heads.
#[derive(Debug, Clone)]
pub(super) struct MultiHeadAttention {
    pub(super) w_q: Linear,
    pub(super) w_k: Linear,
    pub(super) w_v: Linear,
    pub(super) w_o: Linear,
    pub(super) heads: usize,
    dropout: f64,
}

impl MultiHeadAttention {
    /// `{prefix}.W_q`, `W_k`, `W_v`, `W_o`, each `H → H`.
    fn new(params: &mut ParamStore, prefix: &str, config: &BertConfig) -> Result<Self> {
        let h = config.hidden;
        let mut linear = |name: &str| Linear::new(params, &format!("{prefix}.{name}"), h, h);
        Ok(Self {
            w_q: linear("W_q")?,
            w_k: linear("W_k")?,
            w_v: linear("W_v")?,
            w_o: linear("W_o")?,
            heads: config.heads,
            dropout: config.attention_dropout(),
        })
    }

    /// Self-attention over `x` `[B, L, H]` (or its valid tokens `[N, H]` with their
    /// `packing`), each row to its valid `keys`.
    fn forward(&self, x: &Tensor, keys: &KeyMask, packing: Option<&Packing>, mode: &mut Mode) -> Result<Tensor> {
        let projected = |linear: &Linear| -> Result<Tensor> {
            let y = linear.forward(x)?;
            match packing {
                Some(p) => p.unpack(&y),
                None => Ok(y),
            }
        };
        let (q, k, v) = (projected(&self.w_q)?, projected(&self.w_k)?, projected(&self.w_v)?);
        let (b, l, _) = q.dims3()?;
        let dropout = mode.dropout_factors((b, self.heads, l, l), self.dropout, x)?;
        let context = attention(&q, &k, &v, keys, self.heads, dropout.as_ref())?;
        match packing {
            Some(p) => self.w_o.forward(&p.pack(&context)?),
            None => self.w_o.forward(&context),
        }
    }
}

/// One post-LN transformer block: self-attention → Add & Norm → feed-forward
/// (`dense2(act(dense1(x)))`) → Add & Norm, where Add & Norm is `LayerNorm(dropout(y) + x)`.
#[derive(Debug, Clone)]
pub(super) struct EncoderBlock {
    pub(super) attention: MultiHeadAttention,
    pub(super) norm1: LayerNorm,
    pub(super) dense1: Linear,
    pub(super) dense2: Linear,
    pub(super) norm2: LayerNorm,
    pub(super) activation: Activation,
    dropout: f64,
}

impl EncoderBlock {
    /// Block `index`'s parameters under `encoder.blks.{index}`.
    fn new(params: &mut ParamStore, index: usize, config: &BertConfig) -> Result<Self> {
        let p = format!("encoder.blks.{index}");
        let (h, f, eps) = (config.hidden, config.ffn_hidden, config.layer_norm_eps);
        Ok(Self {
            attention: MultiHeadAttention::new(params, &format!("{p}.attention"), config)?,
            norm1: LayerNorm::new(params, &format!("{p}.addnorm1.ln"), h, eps)?,
            dense1: Linear::new(params, &format!("{p}.ffn.dense1"), h, f)?,
            dense2: Linear::new(params, &format!("{p}.ffn.dense2"), f, h)?,
            norm2: LayerNorm::new(params, &format!("{p}.addnorm2.ln"), h, eps)?,
            activation: config.activation,
            dropout: config.dropout,
        })
    }

    /// The names of block `index`'s dense weights as the inference pass multiplies by them:
    /// the queries', keys' and values' (one product), the attention output's, the feed-forward's
    /// first and second.
    pub(super) fn dense_weight_names(index: usize) -> [Vec<String>; 4] {
        let p = format!("encoder.blks.{index}");
        let names = |layers: &[&str]| layers.iter().map(|l| format!("{p}.{l}.weight")).collect();
        [
            names(&["attention.W_q", "attention.W_k", "attention.W_v"]),
            names(&["attention.W_o"]),
            names(&["ffn.dense1"]),
            names(&["ffn.dense2"]),
        ]
    }

    /// `[B, L, H]` → `[B, L, H]` (or valid tokens `[N, H]` → `[N, H]` with their `packing`).
    fn forward(&self, x: &Tensor, keys: &KeyMask, packing: Option<&Packing>, mode: &mut Mode) -> Result<Tensor> {
        let attended = self.attention.forward(x, keys, packing, mode)?;
        let dropout = mode.dropout_factors(attended.shape(), self.dropout, &attended)?;
        let y = self.norm1.forward_residual(&attended, x, dropout.as_ref())?;
        let inner = self.dense1.forward_activated(&y, self.activation)?; // [B, L, F] (or [N, F])
        let ffn = self.dense2.forward(&inner)?;
        let dropout = mode.dropout_factors(ffn.shape(), self.dropout, &ffn)?;
        self.norm2.forward_residual(&ffn, &y, dropout.as_ref())
    }
}

/// The MLM head's output layer: a weight of its own (the textbook's), or the token embedding
/// table (tied, BERT's), with a bias of its own either way.
#[derive(Debug, Clone)]
enum Decoder {
    Separate(Linear),
    Tied { embeddings: Tensor, bias: Tensor },
}

/// The masked-language-model head: `Linear(H, H) → act → LayerNorm → decoder(H → V)` on the
/// encoder outputs at the predicted positions (`mlm.mlp.0`, `mlm.mlp.2`, `mlm.mlp.3`; a tied
/// decoder has only `mlm.mlp.3.bias`).
#[derive(Debug, Clone)]
struct MlmHead {
    dense: Linear,
    norm: LayerNorm,
    decoder: Decoder,
    activation: Activation,
}

impl MlmHead {
    fn new(params: &mut ParamStore, config: &BertConfig, token_embeddings: &Tensor) -> Result<Self> {
        let (h, v) = (config.hidden, config.vocab_size);
        let dense = Linear::new(params, "mlm.mlp.0", h, h)?;
        let norm = LayerNorm::new(params, "mlm.mlp.2", h, config.layer_norm_eps)?;
        let decoder = if config.tie_word_embeddings {
            let bias = params.create("mlm.mlp.3.bias", &[v], Init::Constant(0.0))?;
            params.exclude_from_decay("mlm.mlp.3.bias");
            Decoder::Tied { embeddings: token_embeddings.clone(), bias }
        } else {
            Decoder::Separate(Linear::new(params, "mlm.mlp.3", h, v)?)
        };
        Ok(Self { dense, norm, decoder, activation: config.activation })
    }

    /// The rows of `encoded` `[B, L, H]` at `flat_positions` (`[N]` u32 indices into the
    /// `B·L` rows, `row · L + position`) through the dense layer, activation and layer norm:
    /// `[N, H]`.
    fn transform(&self, encoded: &Tensor, flat_positions: &Tensor) -> Result<Tensor> {
        let h = encoded.dim(2)?;
        let rows = encoded.reshape(((), h))?.index_select(flat_positions, 0)?; // [N, H]
        self.norm.forward(&self.dense.forward_activated(&rows, self.activation)?)
    }

    /// The decoder's weight `[V, H]` and bias `[V]`.
    fn decoder(&self) -> (&Tensor, &Tensor) {
        match &self.decoder {
            Decoder::Separate(output) => output.weight_and_bias(),
            Decoder::Tied { embeddings, bias } => (embeddings, bias),
        }
    }

    /// Logits `[N, V]` at `flat_positions` of `encoded`.
    fn forward(&self, encoded: &Tensor, flat_positions: &Tensor) -> Result<Tensor> {
        let (weight, bias) = self.decoder();
        folded_product(&self.transform(encoded, flat_positions)?, weight, bias)
    }

    /// The weighted MLM loss at `flat_positions` of `encoded`, the logits never held whole
    /// (see [`decoder_loss`]).
    fn loss(&self, encoded: &Tensor, flat_positions: &Tensor, targets: Targets) -> Result<Tensor> {
        let (weight, bias) = self.decoder();
        decoder_loss(&self.transform(encoded, flat_positions)?, weight, bias, targets)
    }
}

/// The pooler: `Linear(H, H) → Tanh` on the first token's output (`hidden.0`), what the NSP
/// head reads.
#[derive(Debug, Clone)]
struct Pooler {
    dense: Linear,
}

impl Pooler {
    fn new(params: &mut ParamStore, config: &BertConfig) -> Result<Self> {
        Ok(Self { dense: Linear::new(params, "hidden.0", config.hidden, config.hidden)? })
    }

    /// `encoded` `[B, L, H]` → `[B, H]`.
    fn forward(&self, encoded: &Tensor) -> Result<Tensor> {
        let cls = encoded.narrow(1, 0, 1)?.squeeze(1)?; // [B, H]
        Ok(self.dense.forward(&cls)?.tanh()?)
    }
}

/// The next-sentence-prediction head: `Linear(H, 2)` (`nsp.output`) on the pooler's output.
#[derive(Debug, Clone)]
struct NspHead {
    output: Linear,
}

impl NspHead {
    fn new(params: &mut ParamStore, config: &BertConfig) -> Result<Self> {
        Ok(Self { output: Linear::new(params, "nsp.output", config.hidden, 2)? })
    }
}

/// A task head: dropout and `Linear(H, num_labels)` (`classifier`), on the pooler's output
/// (a sequence's kinds) or on every token's state (token classification).
#[derive(Debug, Clone)]
struct TaskOutput {
    kind: TaskKind,
    classifier: Linear,
    dropout: f64,
}

impl TaskOutput {
    fn new(params: &mut ParamStore, config: &BertConfig, task: &TaskHead) -> Result<Self> {
        let classifier = Linear::new(params, "classifier", config.hidden, task.num_labels)?;
        Ok(Self { kind: task.kind, classifier, dropout: config.classifier_dropout() })
    }
}

/// A BERT encoder with MLM and NSP heads. Parameters are created in a fixed order, so a seed
/// fully determines the initial weights.
#[derive(Debug, Clone)]
pub struct BertModel {
    pub(super) embeddings: Embeddings,
    pub(super) blocks: Vec<EncoderBlock>,
    mlm: Option<MlmHead>,
    pooler: Option<Pooler>,
    nsp: Option<NspHead>,
    task: Option<TaskOutput>,
}

/// The error of an operation that needs a head the model does not have.
fn missing_head(which: &str) -> crate::error::Error {
    InputError::range("model", format!("has no {which} head (the checkpoint it was loaded from has none)")).into()
}

impl BertModel {
    /// Creates every parameter of `config` in `params`.
    pub fn new(params: &mut ParamStore, config: &BertConfig) -> Result<Self> {
        let embeddings = Embeddings::new(params, config)?;
        let blocks = (0..config.layers).map(|i| EncoderBlock::new(params, i, config)).collect::<Result<Vec<_>>>()?;
        let mlm = config.mlm_head.then(|| MlmHead::new(params, config, &embeddings.token)).transpose()?;
        let pooler = config.has_pooler().then(|| Pooler::new(params, config)).transpose()?;
        let nsp = config.nsp_head.then(|| NspHead::new(params, config)).transpose()?;
        let task = config.task.as_ref().map(|t| TaskOutput::new(params, config, t)).transpose()?;
        Ok(Self { embeddings, blocks, mlm, pooler, nsp, task })
    }

    /// The name and shape of every parameter a model of `config` has, in creation order,
    /// allocating none of them.
    pub fn param_shapes(config: &BertConfig) -> Result<Vec<(String, Vec<usize>)>> {
        let mut store = ParamStore::shapes_only();
        Self::new(&mut store, config)?;
        Ok(store.recorded_shapes())
    }

    /// The keys each of the rows with `valid_lens` of `seq_len` attends to (a score mask in
    /// the dtype and on the device of `like` for the composed attention).
    pub fn key_mask(valid_lens: &[usize], seq_len: usize, like: &Tensor) -> Result<KeyMask> {
        Ok(KeyMask::new(valid_lens, seq_len, like)?)
    }

    /// The contextual representation of every token: `[B, L]` ids and segments → `[B, L, H]`.
    /// Training passes over padded rows run only the valid tokens through every layer but the
    /// attention ([`Packing`]); their padding comes out as zeros (eval passes compute it).
    pub fn encode(&self, tokens: &Tensor, segments: &Tensor, keys: &KeyMask, mode: &mut Mode) -> Result<Tensor> {
        let packing = match mode {
            Mode::Train(_) => Packing::of(keys.valid_lens(), tokens.dim(1)?, tokens.device())?,
            Mode::Eval => None,
        };
        let mut x = match &packing {
            Some(p) => self.embeddings.forward_packed(tokens, segments, p, mode)?,
            None => self.embeddings.forward(tokens, segments, mode)?,
        };
        for block in &self.blocks {
            x = block.forward(&x, keys, packing.as_ref(), mode)?;
        }
        match &packing {
            Some(p) => p.unpack(&x),
            None => Ok(x),
        }
    }

    /// MLM logits `[N, V]` at `flat_positions` (`row · L + position`, u32) of `encoded`.
    pub fn mlm_logits(&self, encoded: &Tensor, flat_positions: &Tensor) -> Result<Tensor> {
        self.mlm.as_ref().ok_or_else(|| missing_head("MLM"))?.forward(encoded, flat_positions)
    }

    /// The weighted MLM loss `Σ w·CE / total` at `flat_positions` of `encoded`, computed
    /// without holding the `[N, V]` logits (training: its gradients come with it).
    pub fn mlm_loss(&self, encoded: &Tensor, flat_positions: &Tensor, targets: Targets) -> Result<Tensor> {
        self.mlm.as_ref().ok_or_else(|| missing_head("MLM"))?.loss(encoded, flat_positions, targets)
    }

    /// The pooler's output `[B, H]` (`tanh(dense(first token))`) of `encoded`.
    pub fn pooled(&self, encoded: &Tensor) -> Result<Tensor> {
        self.pooler.as_ref().ok_or_else(|| missing_head("pooler"))?.forward(encoded)
    }

    /// The task head's outputs of `encoded` `[B, L, H]`: `[B, num_labels]` for a sequence's
    /// kinds (from the pooler), `[B, L, num_labels]` for token classification; dropout before
    /// the classifier in training `mode`.
    pub fn task_logits(&self, encoded: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let task = self.task.as_ref().ok_or_else(|| missing_head("task"))?;
        let input = if task.kind.reads_pooler() { self.pooled(encoded)? } else { encoded.clone() };
        task.classifier.forward(&mode.dropout(&input, task.dropout)?)
    }

    /// NSP logits `[B, 2]` from the `<cls>` position of `encoded`.
    pub fn nsp_logits(&self, encoded: &Tensor) -> Result<Tensor> {
        let nsp = self.nsp.as_ref().ok_or_else(|| missing_head("NSP"))?;
        nsp.output.forward(&self.pooled(encoded)?)
    }
}
