//! The HTTP/2 subscribers: a minimal client (prior knowledge, one GET per stream, DATA frames
//! sorted by stream) with one task per TCP connection. hyper's client wakes and polls a task per
//! stream for every frame, which costs about as much CPU as the server spends sending it; on
//! the 2 cores the two share, that would be taken from the server and measured as its latency.
//!
//! It grants the largest flow-control windows at the start, so it never sends WINDOW_UPDATE;
//! it acknowledges SETTINGS and PING as the protocol requires.
use std::{net::SocketAddr, sync::atomic::Ordering, time::SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    connect, events_path, last_seq, lock, read_until_known, Args, Follower, Shared, UNKNOWN,
};
/// The client connection preface (RFC 9113, section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
const SETTINGS_ENABLE_PUSH: u16 = 0x2;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const DEFAULT_WINDOW: u32 = 65_535;
const MAX_WINDOW: u32 = (1 << 31) - 1;
const FRAME_HEADER: usize = 9;
/// `:status: 200` as HPACK encodes it: index 8 of the static table. A response's first field is
/// its status, and every HPACK encoder indexes this one.
const STATUS_200: u8 = 0x88;

/// Appends one frame.
fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// An HPACK integer with a `bits`-bit prefix (RFC 7541, 5.1).
fn hpack_int(out: &mut Vec<u8>, bits: u8, mut value: usize) {
    let max = (1usize << bits) - 1;
    if value < max {
        out.push(value as u8);
        return;
    }
    out.push(max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A header field as a literal without indexing and with a literal name, no Huffman coding
/// (RFC 7541, 6.2.2): the same bytes for every stream, nothing for the server to remember.
fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x00);
    hpack_int(out, 7, name.len());
    out.extend_from_slice(name.as_bytes());
    hpack_int(out, 7, value.len());
    out.extend_from_slice(value.as_bytes());
}

fn request_headers(a: &Args, after: i64) -> Vec<u8> {
    let mut block = Vec::new();
    hpack_literal(&mut block, ":method", "GET");
    hpack_literal(&mut block, ":scheme", "http");
    hpack_literal(&mut block, ":authority", &a.server.to_string());
    hpack_literal(&mut block, ":path", &events_path(a, after));
    hpack_literal(&mut block, "cookie", &a.cookie);
    hpack_literal(&mut block, "accept", "text/event-stream");
    block
}

/// What a HEADERS or DATA payload carries once padding (and a HEADERS priority) is removed.
fn content(payload: &[u8], flags: u8, kind: u8) -> &[u8] {
    let (mut start, mut end) = (0, payload.len());
    if flags & PADDED != 0 {
        let pad = payload.first().copied().unwrap_or(0) as usize;
        start = 1;
        end = end.saturating_sub(pad);
    }
    if kind == HEADERS && flags & PRIORITY != 0 {
        start += 5;
    }
    payload.get(start..end).unwrap_or_default()
}

#[derive(PartialEq)]
enum Answer {
    Waiting,
    Streaming,
    Ended,
    Refused,
}

struct Stream {
    answer: Answer,
    follower: Follower,
}

/// Opens `count` subscribers on one TCP connection and follows them until each has the last
/// seq or has ended; counts each as connected or failed as soon as that is known, and puts what
/// each answered stream saw into `shared.results`.
pub async fn subscribe(
    shared: &Shared,
    (target, socket): (SocketAddr, usize),
    count: usize,
    after: i64,
) {
    let mut streams: Vec<Stream> = (0..count)
        .map(|_| Stream {
            answer: Answer::Waiting,
            follower: Follower::new(after),
        })
        .collect();
    if let Err(e) = run(shared, target, &mut streams, after).await {
        eprintln!("an HTTP/2 connection ended: {e}");
    }
    let mut results = lock(&shared.results);
    for s in streams {
        match s.answer {
            Answer::Streaming | Answer::Ended => results.push((target, socket, s.follower.seen)),
            Answer::Waiting => {
                shared.failed.fetch_add(1, Ordering::AcqRel);
            }
            Answer::Refused => {}
        }
    }
}

async fn run(
    shared: &Shared,
    target: SocketAddr,
    streams: &mut [Stream],
    after: i64,
) -> anyhow::Result<()> {
    let a = &shared.args;
    let mut tcp = connect(target, None).await?;
    let mut out = H2_PREFACE.to_vec();
    let mut settings = Vec::new();
    settings.extend_from_slice(&SETTINGS_ENABLE_PUSH.to_be_bytes());
    settings.extend_from_slice(&0u32.to_be_bytes());
    settings.extend_from_slice(&SETTINGS_INITIAL_WINDOW_SIZE.to_be_bytes());
    settings.extend_from_slice(&MAX_WINDOW.to_be_bytes());
    frame(&mut out, SETTINGS, 0, 0, &settings);
    frame(
        &mut out,
        WINDOW_UPDATE,
        0,
        0,
        &(MAX_WINDOW - DEFAULT_WINDOW).to_be_bytes(),
    );
    let headers = request_headers(a, after);
    for i in 0..streams.len() {
        frame(
            &mut out,
            HEADERS,
            END_STREAM | END_HEADERS,
            2 * i as u32 + 1,
            &headers,
        );
    }
    tcp.write_all(&out).await?;

    let known = last_seq(shared.last_seq.subscribe());
    tokio::pin!(known);
    let mut last = UNKNOWN;
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        let following = streams.iter().any(|s| {
            s.answer == Answer::Waiting || (s.answer == Answer::Streaming && !s.follower.has(last))
        });
        if !following {
            return Ok(());
        }
        let Some(read) = read_until_known(tcp.read_buf(&mut buf), &mut known, &mut last).await
        else {
            continue;
        };
        let read = read?;
        if read == 0 {
            anyhow::bail!("the server closed the connection");
        }
        shared.reads.fetch_add(1, Ordering::Relaxed);
        shared.read_bytes.fetch_add(read, Ordering::Relaxed);
        let now = SystemTime::now();
        let mut replies = Vec::new();
        let mut pos = 0;
        while let Some(header) = buf.get(pos..pos + FRAME_HEADER) {
            let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let (kind, flags) = (header[3], header[4]);
            let id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
            let Some(payload) = buf.get(pos + FRAME_HEADER..pos + FRAME_HEADER + len) else {
                break;
            };
            pos += FRAME_HEADER + len;
            // Client streams are odd: 1, 3, 5, ...
            let stream = (id % 2 == 1)
                .then(|| streams.get_mut((id / 2) as usize))
                .flatten();
            match (kind, stream) {
                (DATA, Some(s)) => {
                    s.follower.receive(content(payload, flags, kind), now);
                    if flags & END_STREAM != 0 {
                        s.answer = Answer::Ended;
                    }
                }
                (HEADERS, Some(s)) if s.answer == Answer::Waiting => {
                    if content(payload, flags, kind).first() == Some(&STATUS_200) {
                        shared.connected.fetch_add(1, Ordering::AcqRel);
                        s.answer = Answer::Streaming;
                    } else {
                        shared.failed.fetch_add(1, Ordering::AcqRel);
                        s.answer = Answer::Refused;
                    }
                    if flags & END_STREAM != 0 && s.answer == Answer::Streaming {
                        s.answer = Answer::Ended;
                    }
                }
                (RST_STREAM, Some(s)) => {
                    if s.answer == Answer::Waiting {
                        shared.failed.fetch_add(1, Ordering::AcqRel);
                        s.answer = Answer::Refused;
                    } else if s.answer == Answer::Streaming {
                        s.answer = Answer::Ended;
                    }
                }
                (SETTINGS, _) if flags & ACK == 0 => frame(&mut replies, SETTINGS, ACK, 0, &[]),
                (PING, _) if flags & ACK == 0 => frame(&mut replies, PING, ACK, 0, payload),
                (GOAWAY, _) => anyhow::bail!("the server sent GOAWAY"),
                _ => {}
            }
        }
        buf.drain(..pos);
        if !replies.is_empty() {
            tcp.write_all(&replies).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpack_integers_match_rfc_7541_examples() {
        // C.1.1 and C.1.2 (5-bit prefix), C.1.3 (8-bit prefix).
        let mut out = Vec::new();
        hpack_int(&mut out, 5, 10);
        hpack_int(&mut out, 5, 1337);
        hpack_int(&mut out, 8, 42);
        assert_eq!(out, vec![10, 31, 154, 10, 42]);
    }

    #[test]
    fn padding_and_priority_are_not_content() {
        // Pad length 2, priority (5 bytes), block, padding.
        let payload = [2, 0, 0, 0, 1, 16, STATUS_200, 0xff, 0, 0];
        assert_eq!(
            content(&payload, PADDED | PRIORITY, HEADERS),
            &[STATUS_200, 0xff]
        );
        assert_eq!(content(b"data", 0, DATA), b"data");
    }
}
