//! Server-sent events as a test reads them off the wire.
use serde_json::Value;

/// Splits server-sent events out of the bytes as they arrive: (id, event name, JSON data).
#[derive(Default)]
pub struct SseFrames {
    /// Bytes, not text: a chunk may end inside a character (HTTP/2 slices long frames).
    buf: Vec<u8>,
}

impl SseFrames {
    /// Bytes of a frame not yet complete.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, bytes: &[u8]) -> Vec<(i64, String, Value)> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let raw: Vec<u8> = self.buf.drain(..end + 2).collect();
            let frame = String::from_utf8(raw).expect("a whole frame is UTF-8");
            let (mut id, mut name, mut data) = (None, String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<i64>().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if let Some(id) = id {
                out.push((id, name, serde_json::from_str(&data).expect("json data")));
            }
        }
        out
    }
}

/// Reads a stream until what it sent contains `want`, within 30 s; panics saying what it got.
#[allow(dead_code)] // Not every test crate that includes this file uses it.
pub async fn read_until(r: &mut reqwest::Response, want: &str) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains(want) {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{want:?} never came; got {:?}",
                    String::from_utf8_lossy(&seen)
                )
            })
            .expect("chunk")
            .expect("the stream stayed open");
        seen.extend_from_slice(&chunk);
    }
}
