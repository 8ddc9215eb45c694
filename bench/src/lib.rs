//! What the load generators share: reading a process's memory and CPU time from `/proc`,
//! percentiles of a sorted sample, and a day of heartbeat history written into a database.
pub mod history;
pub mod process;
pub mod stats;
