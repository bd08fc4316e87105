//! Training gives the same bits whatever the timing of the compute threads: every parallel
//! reduction adds its parts in a fixed order, so a busy machine changes nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use candle_core::DType;
use tsbert_core::BertConfig;

use crate::common::{random_batch, trainer};

/// The bits of every parameter after three training steps of the textbook's model (batches
/// large enough that every kernel splits its rows over the threads) in a pool of `threads`.
fn weights_after_training(threads: usize) -> Vec<u32> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let config = BertConfig { dropout: 0.1, ..BertConfig::textbook(400) };
        let (model, mut trainer) = trainer(config.clone(), 3, 1e-3, DType::F32);
        for step in 0..3 {
            trainer.train_step(&model, &random_batch(&config, 24, 64, 10, step)).unwrap();
        }
        model
            .params()
            .iter()
            .flat_map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .map(f32::to_bits)
            .collect()
    })
}

/// Threads that keep every core busy until dropped, so that the pool's threads are
/// preempted at times no run can predict.
struct BusyCores(Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl BusyCores {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let spinners = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                    }
                })
            })
            .collect();
        Self(stop, spinners)
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        self.1.drain(..).for_each(|t| t.join().unwrap());
    }
}

#[test]
fn same_seed_and_data_give_the_same_bits_on_a_busy_machine_and_with_any_thread_count() {
    let reference = weights_after_training(4);
    let busy = BusyCores::start();
    for threads in [4, 4, 3, 2, 1] {
        let bits = weights_after_training(threads);
        let differing = bits.iter().zip(&reference).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 0, "{threads} threads on a busy machine: {differing} of {} weights differ", bits.len());
    }
    drop(busy);
}
