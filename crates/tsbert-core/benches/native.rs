//! `npm run bench:native`: one training step and one encode of the textbook configuration
//! (vocab 20256, B = 512, L = 64, P = 10, hidden 128, 2 layers) on the CPU.
//!
//! Environment: `TSBERT_BENCH_STEPS` (timed steps, default 5), `TSBERT_BENCH_BATCH` (B).

use std::time::Instant;

#[path = "../tests/support/synthetic.rs"]
mod synthetic;

use synthetic::synthetic_batch;
use tsbert_core::{BertConfig, Trainer, TrainerOptions};

#[global_allocator]
static GLOBAL: tsbert_core::allocator::Allocator = tsbert_core::allocator::Allocator;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Median of `runs` timings of `f`, in milliseconds.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    tsbert_core::allocator::keep_freed_memory();
    let (b, l, p) = (env_usize("TSBERT_BENCH_BATCH", 512), 64, 10);
    let steps = env_usize("TSBERT_BENCH_STEPS", 5);
    let config = BertConfig::textbook(20256);
    let mut trainer = Trainer::new(config.clone(), TrainerOptions::default()).expect("model");
    let batch = synthetic_batch(config.vocab_size, b, l, p, 1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "tsbert native benchmark: CPU ({threads} threads), vocab {}, B = {b}, L = {l}, P = {p}, hidden {}, {} layers",
        config.vocab_size, config.hidden, config.layers
    );
    // three warm-up steps: the first steps grow the allocator's pools (see `allocator`)
    for _ in 0..3 {
        trainer.train_step(&batch).expect("warm-up step");
    }
    let train = median_ms(steps, || {
        trainer.train_step(&batch).expect("step");
    });
    let encode = median_ms(steps, || {
        trainer.encode(&batch.sequences).expect("encode");
    });
    println!("| what | ms (median of {steps}) | sentence pairs/sec |");
    println!("| --- | ---: | ---: |");
    println!("| train step | {train:.1} | {:.1} |", b as f64 / train * 1e3);
    println!("| encode | {encode:.1} | {:.1} |", b as f64 / encode * 1e3);
}
