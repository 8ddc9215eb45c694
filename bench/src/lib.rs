//! What the load generators share: reading a process's memory and CPU time from `/proc`,
//! percentiles of a sorted sample, a day of heartbeat history written into a database, and
//! their command lines' count of at least one.
pub mod history;
pub mod process;
pub mod stats;

/// A command-line count of at least one (clap's parser for it).
pub fn positive() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}
