//! Sync benchmarks (issue 4): written next.
fn main() {}
