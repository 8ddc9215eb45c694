//! The live event streams in the browser: a connection's (named events, replayed from the
//! start on load so a reload shows everything so far), and every connection's changes for the
//! health dashboard (a hint to read it again). One EventSource per stream.
//!
//! After a network loss the page reconnects on its own schedule rather than the browser's fixed
//! retry: it closes the broken source and opens a new one after a growing, jittered delay, asking
//! for the events after the last one it holds (`?after=`), so nothing is missed or repeated. This
//! uses `web_sys::EventSource` directly because gloo-net's wrapper does not report the error
//! while the browser is retrying, which is exactly the moment the backoff has to take over.
//! That was gloo-net's only use here: the browser's other HTTP is server functions, sent by
//! server_fn's own client, so gloo-net is not a dependency of the app.
use std::time::Duration;

use leptos::prelude::*;

use crate::model::{insert_event, last_seq, ConnectionEvent};

/// The state of the page's link to the server, shown to the user while it is not plain "live".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Open,
    /// Lost; the next attempt (1-based) starts after `delay_ms`.
    Reconnecting {
        attempt: u32,
        delay_ms: u32,
    },
    /// The page went away.
    Ended,
}

/// Every event received so far, in sequence order, without duplicates, and the link's state.
#[derive(Clone, Copy)]
pub struct Live {
    pub events: RwSignal<Vec<ConnectionEvent>>,
    pub link: RwSignal<Link>,
}

impl Live {
    pub fn new() -> Self {
        Self {
            events: RwSignal::new(Vec::new()),
            link: RwSignal::new(Link::Connecting),
        }
    }

    /// Adds an event unless it was already seen (a replay after reconnecting).
    pub fn push(&self, e: ConnectionEvent) {
        self.events.update(|log| insert_event(log, e));
    }

    /// The newest sequence number held: where a reconnect resumes.
    pub fn last_seq(&self) -> i64 {
        self.events.with_untracked(|log| last_seq(log))
    }
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

/// Tells the user while the live link is down, and when the next attempt comes; nothing while
/// it is up.
#[component]
pub fn LinkNotice(link: RwSignal<Link>) -> impl IntoView {
    move || match link.get() {
        Link::Reconnecting { attempt, delay_ms } => Some(view! {
            <p class="banner warn" role="status" data-testid="stream-status">
                {format!(
                    "The live connection to the server was lost. Reconnecting in {:.1} s (attempt {attempt}); \
                     nothing that happens meanwhile is lost.",
                    f64::from(delay_ms) / 1000.0
                )}
            </p>
        }),
        _ => None,
    }
}

/// First reconnect delay.
const FIRST_DELAY_MS: f64 = 500.0;
/// The delay stops growing here, so a page left open through an outage is back within seconds
/// of the server.
const MAX_DELAY_MS: f64 = 15_000.0;
/// Up to this share of the delay is taken off at random, so many pages do not all reconnect at
/// the same instant after a server restart.
const JITTER: f64 = 0.2;

/// The delay before reconnect attempt `attempt` (1-based): 0.5 s doubling up to 15 s, less a
/// random share of up to 20 % (`random` in [0, 1)).
pub fn reconnect_delay(attempt: u32, random: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(16) as i32;
    let base = (FIRST_DELAY_MS * 2f64.powi(exp)).min(MAX_DELAY_MS);
    let factor = 1.0 - JITTER * random.clamp(0.0, 1.0);
    Duration::from_millis((base * factor).round() as u64)
}

/// Starts streaming this connection's events into `live` (browser only; a no-op during SSR so
/// both render the same first frame). The stream closes when the calling component goes away.
pub fn connect(id: i64, live: Live) {
    #[cfg(feature = "hydrate")]
    browser::follow(browser::Source {
        // Asked again at each reconnect: it resumes after the newest event held.
        url: Box::new(move || format!("/api/connections/{id}/events?after={}", live.last_seq())),
        names: &browser::CONNECTION_EVENTS,
        on_data: std::rc::Rc::new(move |text: String| {
            if let Ok(e) = serde_json::from_str::<ConnectionEvent>(&text) {
                live.push(e);
            }
        }),
        on_open: None,
        link: live.link,
    });
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (id, live);
    }
}

/// Calls `on_change` whenever any connection has a new event (the health dashboard's stream),
/// and each time the stream (re)opens, since a change may have come while it was down. Browser
/// only, like `connect`; `link` tells its state.
pub fn follow_changes(link: RwSignal<Link>, on_change: impl Fn() + 'static) {
    #[cfg(feature = "hydrate")]
    {
        let on_change = std::rc::Rc::new(on_change);
        let opened = on_change.clone();
        browser::follow(browser::Source {
            url: Box::new(|| "/api/health-dashboard/events".to_string()),
            names: &["changed"],
            on_data: std::rc::Rc::new(move |_| on_change()),
            on_open: Some(std::rc::Rc::new(move || opened())),
            link,
        });
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (link, on_change);
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::{cell::RefCell, rc::Rc};

    use wasm_bindgen::{prelude::Closure, JsCast};
    use web_sys::{EventSource, MessageEvent};

    use super::{reconnect_delay, Link};
    use leptos::prelude::{on_cleanup, set_timeout, RwSignal, Set, StoredValue, WithValue};

    /// The named events of a connection's stream.
    pub const CONNECTION_EVENTS: [&str; 5] =
        ["connection", "scan", "check", "onboarding", "migration"];

    type Listener = Closure<dyn FnMut(web_sys::Event)>;

    /// What a stream connects to and what it does with what arrives.
    pub struct Source {
        /// Where to connect, asked again at each (re)connect.
        pub url: Box<dyn Fn() -> String>,
        /// The event names listened to.
        pub names: &'static [&'static str],
        /// Each event's data.
        pub on_data: Rc<dyn Fn(String)>,
        /// Each time the stream opens.
        pub on_open: Option<Rc<dyn Fn()>>,
        pub link: RwSignal<Link>,
    }

    pub struct Stream {
        spec: Source,
        source: Option<EventSource>,
        /// The current source's listeners: they must live as long as it does.
        listeners: Vec<Listener>,
        attempt: u32,
        stopped: bool,
    }

    pub type Shared = Rc<RefCell<Stream>>;

    /// Opens the stream now; it closes when the calling component goes away.
    pub fn follow(spec: Source) {
        let s = Rc::new(RefCell::new(Stream {
            spec,
            source: None,
            listeners: Vec::new(),
            attempt: 0,
            stopped: false,
        }));
        open(&s);
        let handle = StoredValue::new_local(s);
        on_cleanup(move || {
            handle.try_with_value(stop);
        });
    }

    fn stop(s: &Shared) {
        let mut st = s.borrow_mut();
        st.stopped = true;
        if let Some(es) = st.source.take() {
            es.close();
        }
        st.spec.link.set(Link::Ended);
    }

    fn open(s: &Shared) {
        let mut st = s.borrow_mut();
        if st.stopped {
            return;
        }
        // Listeners of the previous source go now (never from inside one of them).
        st.listeners.clear();
        let url = (st.spec.url)();
        let Ok(es) = EventSource::new(&url) else {
            drop(st);
            lost(s);
            return;
        };
        let on_data = st.spec.on_data.clone();
        let on_message: Listener = Closure::new(move |ev: web_sys::Event| {
            if let Some(text) = ev
                .dyn_ref::<MessageEvent>()
                .and_then(|m| m.data().as_string())
            {
                on_data(text);
            }
        });
        for name in st.spec.names {
            let _ = es.add_event_listener_with_callback(name, on_message.as_ref().unchecked_ref());
        }
        let weak = Rc::downgrade(s);
        let on_open: Listener = Closure::new(move |_| {
            if let Some(s) = weak.upgrade() {
                let opened = {
                    let mut st = s.borrow_mut();
                    st.attempt = 0;
                    st.spec.link.set(Link::Open);
                    st.spec.on_open.clone()
                };
                // Outside the borrow: the callback may start work that reads the stream.
                if let Some(opened) = opened {
                    opened();
                }
            }
        });
        let _ = es.add_event_listener_with_callback("open", on_open.as_ref().unchecked_ref());
        let weak = Rc::downgrade(s);
        let on_error: Listener = Closure::new(move |_| {
            if let Some(s) = weak.upgrade() {
                lost(&s);
            }
        });
        let _ = es.add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref());
        st.source = Some(es);
        st.listeners = vec![on_message, on_open, on_error];
    }

    /// The link broke (network loss, server restart, or the server's 204 "nothing more"): close
    /// the source so the browser stops its own retries, then reopen after the backoff delay.
    fn lost(s: &Shared) {
        let delay = {
            let mut st = s.borrow_mut();
            if let Some(es) = st.source.take() {
                es.close();
            }
            if st.stopped {
                st.spec.link.set(Link::Ended);
                return;
            }
            st.attempt += 1;
            let delay = reconnect_delay(st.attempt, js_sys::Math::random());
            st.spec.link.set(Link::Reconnecting {
                attempt: st.attempt,
                delay_ms: delay.as_millis() as u32,
            });
            delay
        };
        let s = s.clone();
        set_timeout(move || open(&s), delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_from_half_a_second_up_to_fifteen() {
        let ms: Vec<u128> = (1..=8)
            .map(|a| reconnect_delay(a, 0.0).as_millis())
            .collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
        assert_eq!(reconnect_delay(u32::MAX, 0.0).as_millis(), 15000);
    }

    #[test]
    fn jitter_takes_off_at_most_a_fifth() {
        for a in 1..10 {
            let full = reconnect_delay(a, 0.0);
            let least = reconnect_delay(a, 0.999_999);
            assert!(least <= full);
            assert!(least.as_secs_f64() >= full.as_secs_f64() * 0.8 - 0.001);
        }
        // Out-of-range randomness cannot make the delay negative or longer.
        assert_eq!(reconnect_delay(1, 7.0), reconnect_delay(1, 1.0));
        assert_eq!(reconnect_delay(1, -1.0), reconnect_delay(1, 0.0));
    }

    #[test]
    fn a_replayed_event_is_kept_once_and_in_order() {
        use crate::model::EventBody;
        let owner = Owner::new();
        owner.with(|| {
            let live = Live::new();
            let e = |seq| ConnectionEvent {
                connection_id: 1,
                seq,
                at: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
                body: EventBody::Onboarding {
                    step: "syncing".into(),
                    message: format!("m{seq}"),
                    failed: false,
                },
            };
            for seq in [1, 2, 3, 2, 5, 4, 5] {
                live.push(e(seq));
            }
            let seqs: Vec<i64> = live
                .events
                .with_untracked(|l| l.iter().map(|e| e.seq).collect());
            assert_eq!(seqs, [1, 2, 3, 4, 5]);
            assert_eq!(live.last_seq(), 5);
        });
    }
}
