//! What the load generators share: reading a process's memory and CPU time from `/proc`, and
//! percentiles of a sorted sample.
pub mod process;
pub mod stats;
