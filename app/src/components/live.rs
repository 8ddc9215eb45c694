//! The connection's live event stream in the browser: one EventSource per page (named events),
//! replaying from the start on load so a reload shows everything so far. The browser reconnects
//! by itself after a network loss, sending Last-Event-ID, so nothing is missed or repeated.
use leptos::prelude::*;

use crate::model::ConnectionEvent;

/// Every event received so far, in sequence order, without duplicates.
#[derive(Clone, Copy)]
pub struct Live {
    pub events: RwSignal<Vec<ConnectionEvent>>,
}

impl Live {
    pub fn new() -> Self {
        Self {
            events: RwSignal::new(Vec::new()),
        }
    }

    /// Adds an event unless it was already seen (a replay after reconnecting).
    pub fn push(&self, e: ConnectionEvent) {
        self.events.update(|list| {
            if list.last().is_none_or(|last| e.seq > last.seq) {
                list.push(e);
            } else if !list.iter().any(|x| x.seq == e.seq) {
                list.push(e);
                list.sort_by_key(|x| x.seq);
            }
        });
    }
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

/// Starts streaming this connection's events into `live` (browser only; a no-op during SSR so
/// both render the same first frame).
pub fn connect(id: i64, live: Live) {
    #[cfg(feature = "hydrate")]
    {
        use futures_util::StreamExt;
        use gloo_net::eventsource::futures::EventSource;

        let url = format!("/api/connections/{id}/events?after=0");
        let Ok(mut source) = EventSource::new(&url) else {
            return;
        };
        let mut streams = Vec::new();
        for name in ["connection", "scan", "check", "onboarding"] {
            if let Ok(s) = source.subscribe(name) {
                streams.push(s);
            }
        }
        let mut merged = futures_util::stream::select_all(streams);
        // Closed when the page goes away.
        let handle = StoredValue::new_local(Some(source));
        on_cleanup(move || {
            if let Some(Some(s)) = handle.try_update_value(|s| s.take()) {
                s.close();
            }
        });
        leptos::task::spawn_local(async move {
            while let Some(item) = merged.next().await {
                if let Ok((_, msg)) = item {
                    if let Some(text) = msg.data().as_string() {
                        if let Ok(e) = serde_json::from_str::<ConnectionEvent>(&text) {
                            live.push(e);
                        }
                    }
                }
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (id, live);
    }
}
