//! What the benchmarks share.

/// Whether the part called `name` runs: all do, unless `BENCH_ONLY` names some (`a,b`).
pub fn wanted(name: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|part| part.trim() == name))
}
