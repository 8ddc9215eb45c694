//! Write coalescing for accepted connections. One published event wakes every subscriber's
//! stream task; on an HTTP/2 connection each of them hands its event to the connection's writer
//! task, and tokio runs a task woken this way next (its LIFO slot), so the writer would write
//! after every single stream: one system call per subscriber and event. Here the writer's first
//! flush of a small amount yields once instead (it goes to the back of the run queue), so the
//! connection's other streams queue their events first and one write carries them all.
//!
//! The cost is one extra pass through the run queue before a small write: nothing when the
//! server is idle, and under load the write waits for tasks that were already runnable. Only
//! HTTP/2 connections (recognised by their preface) coalesce: an HTTP/1.1 connection carries
//! one response or one stream at a time, so it has nothing to gather and would only pay.
use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    task::{ready, Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};

/// At least this much buffered is written at once, without yielding first. h2 (0.4) flushes its
/// 16 KB write buffer once fewer than 1,033 bytes of it are free (a 1 KB payload and a frame
/// header), so a flush it makes because the buffer is full carries 15,352 bytes or more: below
/// that, with margin. At 16 KB nearly every such flush yielded, so a connection with more to
/// send went round (or to the back of the run queue) once per 15 KB written (BENCHMARKS, issue
/// 13, twentieth session).
const WRITE_NOW: usize = 12 * 1024;
/// The least h2 hands over when it flushes a full buffer (see `WRITE_NOW`).
#[cfg(test)]
const H2_FULL_FLUSH: usize = 16 * 1024 - 1024 - 9 + 1;
/// Beyond this much buffered, writes wait for the socket (back-pressure to the writer).
const HIGH_WATER: usize = 256 * 1024;

/// Accepts TCP connections and wraps each in [`Coalesced`].
pub struct CoalescingListener(pub TcpListener);

impl axum::serve::Listener for CoalescingListener {
    type Io = Coalesced<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (Coalesced::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// What every HTTP/2 connection sends first (RFC 9113, 3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// Nothing read yet (or only part of the HTTP/2 preface).
    Undecided,
    Direct,
    Coalescing,
}

/// A stream whose writes, once it is known to carry HTTP/2, are gathered in memory and sent on
/// flush, after one yield when the amount is small.
pub struct Coalesced<S> {
    inner: S,
    mode: Mode,
    /// Bytes read so far while undecided.
    seen: usize,
    out: Vec<u8>,
    /// How much of `out` the socket has taken.
    sent: usize,
    /// This flush has already yielded once.
    yielded: bool,
}

impl<S> Coalesced<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            mode: Mode::Undecided,
            seen: 0,
            out: Vec::new(),
            sent: 0,
            yielded: false,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn buffered(&self) -> usize {
        self.out.len() - self.sent
    }
}

impl<S: AsyncWrite + Unpin> Coalesced<S> {
    /// Writes what is buffered until it is all gone or the socket is full.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        // Released, not kept: most connections are idle event streams, tens of thousands of them.
        self.out = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffered() >= HIGH_WATER {
            ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if self.mode == Mode::Undecided {
            let new = &buf.filled()[before..];
            let this = &mut *self;
            let expected = &H2_PREFACE[this.seen.min(H2_PREFACE.len())..];
            let n = new.len().min(expected.len());
            this.mode = if new.is_empty() || new[..n] != expected[..n] {
                Mode::Direct
            } else if this.seen + n == H2_PREFACE.len() {
                Mode::Coalescing
            } else {
                this.seen += n;
                Mode::Undecided
            };
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Coalesced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.mode != Mode::Coalescing {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        }
        ready!(self.poll_room(cx))?;
        self.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.mode != Mode::Coalescing {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        }
        ready!(self.poll_room(cx))?;
        let mut n = 0;
        for b in bufs {
            self.out.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    /// Not when coalescing: everything is copied into one buffer anyway, and this is what makes
    /// h2 copy DATA payloads of up to 1 KB into its own write buffer too (with vectored writes
    /// it copies only those under 256 bytes and sends each longer one with a flush of its own).
    /// h2 asks once, after the preface has been read.
    fn is_write_vectored(&self) -> bool {
        self.mode != Mode::Coalescing && self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.mode != Mode::Coalescing {
            return Pin::new(&mut this.inner).poll_flush(cx);
        }
        if this.buffered() > 0 && this.buffered() < WRITE_NOW && !this.yielded {
            // Let the tasks that are already runnable (this connection's other streams) add
            // theirs first; a task that wakes itself goes to the back of tokio's run queue.
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        ready!(this.poll_drain(cx))?;
        this.yielded = false;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A coalescing stream: its peer has sent the HTTP/2 preface, in two pieces.
    async fn http2() -> (Coalesced<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        http2_over(1024).await
    }

    /// The same over a pipe that holds `room` bytes.
    async fn http2_over(
        room: usize,
    ) -> (Coalesced<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (ours, mut peer) = tokio::io::duplex(room);
        let mut w = Coalesced::new(ours);
        let mut got = vec![0u8; H2_PREFACE.len()];
        peer.write_all(&H2_PREFACE[..5]).await.expect("write");
        let n = w.read(&mut got).await.expect("read");
        assert_eq!(w.mode, Mode::Undecided);
        peer.write_all(&H2_PREFACE[5..]).await.expect("write");
        w.read_exact(&mut got[n..]).await.expect("read");
        assert_eq!(w.mode, Mode::Coalescing);
        assert!(!w.is_write_vectored());
        (w, peer)
    }

    #[tokio::test]
    async fn writes_arrive_whole_and_in_order_after_flush() {
        let (mut w, r) = http2().await;
        let mut r = r;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.map(|_| got)
        });
        let big = vec![7u8; 300_000]; // above the high-water mark: back-pressure on a small pipe
        w.write_all(b"small, ").await.expect("write");
        w.flush().await.expect("flush");
        w.write_all(&big).await.expect("write");
        w.write_all(b" end").await.expect("write");
        w.shutdown().await.expect("shutdown");
        let got = reader.await.expect("join").expect("read");
        let mut want = b"small, ".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b" end");
        assert_eq!(got, want);
    }

    /// One poll of `flush`, as h2 makes it: whether it yielded (Pending) or wrote.
    fn flush_once(w: &mut Coalesced<tokio::io::DuplexStream>) -> Poll<io::Result<()>> {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        Pin::new(w).poll_flush(&mut cx)
    }

    #[tokio::test]
    async fn a_small_flush_yields_once_and_a_full_h2_buffer_is_written_at_once() {
        let (mut w, mut peer) = http2_over(64 * 1024).await;
        w.write_all(&[1u8; 600]).await.expect("write");
        assert!(
            flush_once(&mut w).is_pending(),
            "a small flush yields first"
        );
        assert!(
            matches!(flush_once(&mut w), Poll::Ready(Ok(()))),
            "then writes"
        );
        let mut got = vec![0u8; 600];
        peer.read_exact(&mut got).await.expect("read");
        // What h2 hands over when its own buffer is full: more is coming, so no yield.
        w.write_all(&vec![2u8; H2_FULL_FLUSH]).await.expect("write");
        assert!(
            matches!(flush_once(&mut w), Poll::Ready(Ok(()))),
            "a full h2 buffer ({H2_FULL_FLUSH} bytes) yielded before its write"
        );
        let mut got = vec![0u8; H2_FULL_FLUSH];
        peer.read_exact(&mut got).await.expect("read");
        assert!(got.iter().all(|&b| b == 2));
    }

    #[tokio::test]
    async fn nothing_is_written_before_a_flush() {
        let (mut w, mut server) = http2().await;
        w.write_all(b"held").await.expect("write");
        let mut buf = [0u8; 4];
        let early = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            server.read_exact(&mut buf),
        )
        .await;
        assert!(early.is_err(), "bytes arrived before the flush");
        w.flush().await.expect("flush");
        server.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"held");
    }

    #[tokio::test]
    async fn http1_passes_straight_through() {
        let (ours, mut peer) = tokio::io::duplex(1024);
        let mut w = Coalesced::new(ours);
        peer.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
        let mut got = [0u8; 16];
        w.read_exact(&mut got).await.expect("read");
        assert_eq!(w.mode, Mode::Direct);
        w.write_all(b"sent").await.expect("write");
        let mut buf = [0u8; 4];
        // Arrives without a flush: nothing is held back.
        peer.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"sent");
    }
}
