//! Network plumbing under the edge: the accept loop with its header time limit and per-address
//! cap, admission turns with a bounded queue, and coalesced writes.
pub mod admission;
pub mod coalesce;
pub mod serve;
