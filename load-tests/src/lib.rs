//! Benchmarks and load generators for Switchboard. Every load here targets loopback only and
//! is bounded in count and time.
