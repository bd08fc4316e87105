//! The core's integration tests, in one binary (one link instead of one per file).

#[path = "../support/common.rs"]
mod common;
#[path = "../support/synthetic.rs"]
mod synthetic;

mod adam_update;
mod checkpoint;
mod data_parallel;
mod determinism;
mod fused_ops;
mod golden;
mod gradient_check;
mod hf_golden;
mod inference;
mod long_runs;
mod mlm_padding;
mod model_shapes;
mod robustness;
mod task_heads;
mod training;
