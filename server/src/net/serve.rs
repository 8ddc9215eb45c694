//! The accept loop, in place of `axum::serve` (which has no header time limit): each accepted
//! connection is served by hyper's HTTP/1.1-or-HTTP/2 (prior knowledge) builder with a time
//! limit on reading a request's header, at most `max_connections_per_ip` at once from one
//! address, and TCP_NODELAY. On shutdown it stops accepting, asks every connection to finish
//! (`graceful_shutdown`) and returns when all have.
use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, MutexGuard},
};

use axum::{body::Body, extract::ConnectInfo, http::Request, Router};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::sync::watch;
use tower::ServiceExt;

use super::{
    coalesce::CoalescingListener,
    streams::{ConnectionStreams, Marking},
};
use crate::config::EdgeLimits;

/// Serves `router` on `listener` until `shutdown` resolves and every connection has ended.
pub async fn serve(
    mut listener: CoalescingListener,
    router: Router,
    limits: &EdgeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let per_ip = PerIp::new(limits.max_connections_per_ip);
    let header_read = limits.header_read;
    // `stop` tells the connections to finish; `done` is held by each until it has.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
            _ = &mut shutdown => break,
        };
        let Some(slot) = per_ip.take(peer.ip()) else {
            tracing::debug!(%peer, "too many connections from this address: closed");
            continue;
        };
        // Writes are coalesced per connection (see `coalesce`), so Nagle's algorithm has
        // nothing left to gather and would only hold live events back.
        if let Err(e) = io.get_ref().set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service = router
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req.map(Body::new)
            });
        let (mut stop, done) = (stop_rx.clone(), done_rx.clone());
        tokio::spawn(async move {
            let (_slot, _done) = (slot, done);
            // This connection's HTTP/2 event streams run in this task (see `streams`).
            let streams = ConnectionStreams::default();
            let mut builder = Builder::new(streams.clone());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read);
            builder.http2().timer(TokioTimer::new());
            let service = Marking {
                inner: TowerToHyperService::new(service),
                streams: streams.clone(),
            };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            tokio::pin!(conn);
            let result = streams
                .drive(async {
                    tokio::select! {
                        r = conn.as_mut() => r,
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            conn.await
                        }
                    }
                })
                .await;
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(());
    drop((stop_rx, done_rx));
    done_tx.closed().await;
}

/// Open connections per client address.
#[derive(Clone)]
struct PerIp {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max: usize,
}

/// One open connection's place; given back when dropped.
struct Slot {
    ip: IpAddr,
    per_ip: PerIp,
}

impl PerIp {
    fn new(max: usize) -> Self {
        Self {
            open: Arc::default(),
            max: max.max(1),
        }
    }

    fn open(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // One insert or update per critical section: a poisoned map is still whole.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self, ip: IpAddr) -> Option<Slot> {
        let ip = ip.to_canonical();
        let mut open = self.open();
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            ip,
            per_ip: self.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.per_ip.open();
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_places_back_as_its_connections_close() {
        let per_ip = PerIp::new(2);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = per_ip.take(a).expect("first");
        let _second = per_ip.take(a).expect("second");
        assert!(per_ip.take(a).is_none(), "third from the same address");
        assert!(
            per_ip.take(b).is_some(),
            "another address has its own places"
        );
        drop(first);
        let _third = per_ip.take(a).expect("a place was given back");
        // IPv4-mapped IPv6 is the same client.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert!(per_ip.take(mapped).is_none());
    }
}
