//! Two pools of worker threads share the CPU in a training step: rayon's (the matrix products
//! and tsbert's fused ops) and candle's own barrier pool (candle's elementwise ops, the
//! gradients' sums), each as large as the machine. After each piece of work candle's workers
//! spin 25,000 rounds before they sleep, so every product that follows an elementwise op ran
//! beside a spinning thread: 7% of a MiniLM fine-tuning step's CPU time on 2 cores, and its
//! examples/sec 15% lower. Parked at once instead, a worker costs one wake-up the next time.

/// candle's variable for the rounds its idle barrier-pool workers spin before they park.
const SPIN_LIMIT: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// The rounds tsbert lets candle's idle workers spin: a few, not 25,000.
const QUIET_SPIN_LIMIT: &str = "100";

/// Makes candle's idle workers park almost at once (unless `CANDLE_BARRIER_POOL_SPIN_LIMIT` is
/// set: then it is left as given). Call before the first candle op on the CPU (candle reads the
/// variable once, when its pool starts), and before other threads read the environment.
pub fn park_idle_candle_workers() {
    if std::env::var_os(SPIN_LIMIT).is_none() {
        std::env::set_var(SPIN_LIMIT, QUIET_SPIN_LIMIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_a_short_spin_unless_one_is_given() {
        std::env::remove_var(SPIN_LIMIT);
        park_idle_candle_workers();
        assert_eq!(std::env::var(SPIN_LIMIT).unwrap(), QUIET_SPIN_LIMIT);
        std::env::set_var(SPIN_LIMIT, "7");
        park_idle_candle_workers();
        assert_eq!(std::env::var(SPIN_LIMIT).unwrap(), "7");
        std::env::remove_var(SPIN_LIMIT);
    }
}
