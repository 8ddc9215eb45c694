//! Network plumbing under the edge: the accept loop with its header time limit and per-address
//! cap, admission turns with a bounded queue, coalesced writes, and HTTP/2 event streams run in
//! their connection's task.
pub mod admission;
pub mod coalesce;
pub mod serve;
pub mod streams;
