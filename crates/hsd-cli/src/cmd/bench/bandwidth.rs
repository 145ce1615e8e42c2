//! The machine's memory read bandwidth, measured in the process whose decode it explains:
//! batch-1 decode streams every weight once a token, so its speed follows this figure from
//! host to host (17 GB/s on one machine of this project's kind, 8 on another).

use std::time::Instant;

use rayon::prelude::*;

/// Bytes read per probe: far beyond any last-level cache.
const PROBE_BYTES: usize = 1 << 30;

/// Untimed reads before the timed ones.
const TRIES: usize = 3;

/// GB/s reading a 1 GiB buffer with every rayon thread, the best of [`TRIES`]. Integer sums,
/// which the compiler vectorizes, so that adding never binds before memory does.
pub(super) fn read_bandwidth_gb_s() -> f64 {
    let words = vec![1u64; PROBE_BYTES / size_of::<u64>()];
    let mut best = f64::INFINITY;
    for _ in 0..TRIES {
        let start = Instant::now();
        let sum = words
            .par_chunks(1 << 16)
            .map(|chunk| chunk.iter().fold(0u64, |a, &b| a.wrapping_add(b)))
            .reduce(|| 0, u64::wrapping_add);
        std::hint::black_box(sum);
        best = best.min(start.elapsed().as_secs_f64());
    }
    drop(words);
    // The probe's gigabyte is not the model's: reset the peak resident set (`VmHWM`) that
    // `peak_rss_mb` reports (Linux; elsewhere the write fails and the peak keeps it).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    PROBE_BYTES as f64 / best / 1e9
}
