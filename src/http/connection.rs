//! What one connection may hold on to. A client that sends requests and never reads the
//! answers must not make the server keep their bytes: the HTTP layer pipelines at most a
//! few requests and fills its write buffer only up to a limit, but it copies each body chunk
//! whole into that buffer and waits for a stalled peer forever. So large bodies are handed
//! over in slices ([`sliced`]) and a write that makes no progress ends the connection
//! ([`StallGuard`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody, SizedStream};
use actix_web::web::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// The largest piece of a body handed to the HTTP layer at once: what a stalled connection
/// holds beyond its write buffer.
pub const SLICE_BYTES: usize = 16 * 1024;

/// `bytes` as a response body that the HTTP layer takes [`SLICE_BYTES`] at a time, without
/// copying (slices share the buffer). Small bodies go as they are.
pub fn sliced(bytes: Bytes) -> BoxBody {
    if bytes.len() <= SLICE_BYTES {
        return bytes.boxed();
    }
    let length = bytes.len() as u64;
    let slices = (0..bytes.len()).step_by(SLICE_BYTES).map(move |start| {
        let end = (start + SLICE_BYTES).min(bytes.len());
        Ok::<_, std::convert::Infallible>(bytes.slice(start..end))
    });
    SizedStream::new(length, futures_util::stream::iter(slices)).boxed()
}

/// A connection whose writes fail with `TimedOut` once the peer has taken no byte for
/// `limit`: a client that stops reading is disconnected rather than waited for.
pub struct StallGuard<T> {
    io: T,
    limit: Duration,
    /// Running while a write is blocked; cleared by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> StallGuard<T> {
    pub fn new(io: T, limit: Duration) -> Self {
        Self {
            io,
            limit,
            stalled: None,
        }
    }

    /// Counts a blocked write against the limit; the error once it is spent.
    fn blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client took no response bytes for {} s",
                    limit.as_secs()
                ),
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Pending => self.blocked(cx).map(Err),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Pending => self.blocked(cx).map(Err),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_body_is_sliced_without_losing_or_reordering_bytes() {
        let original: Vec<u8> = (0..(SLICE_BYTES * 3 + 17)).map(|i| i as u8).collect();
        let body = sliced(Bytes::from(original.clone()));
        assert_eq!(
            body.size(),
            actix_web::body::BodySize::Sized(original.len() as u64)
        );
        let mut body = std::pin::pin!(body);
        let mut collected = Vec::new();
        let mut largest = 0;
        while let Some(chunk) =
            futures_util::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await
        {
            let chunk = chunk.unwrap();
            largest = largest.max(chunk.len());
            collected.extend_from_slice(&chunk);
        }
        assert_eq!(collected, original);
        assert_eq!(largest, SLICE_BYTES);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_times_the_write_out_and_progress_resets_it() {
        // A pipe with a small buffer that nobody drains: writes block once it is full.
        let (near, mut far) = tokio::io::duplex(1024);
        let mut guarded = StallGuard::new(near, Duration::from_secs(10));
        guarded.write_all(&[0; 1024]).await.unwrap();

        // Draining some bytes just before the limit is progress: the limit starts over.
        let write = tokio::spawn(async move {
            let result = guarded.write_all(&[0; 2048]).await;
            (result, tokio::time::Instant::now())
        });
        let started = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(9)).await;
        let mut some = [0; 512];
        tokio::io::AsyncReadExt::read_exact(&mut far, &mut some)
            .await
            .unwrap();
        let (result, ended) = write.await.unwrap();
        let error = result.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let waited = ended - started;
        assert!(
            waited >= Duration::from_secs(19),
            "the limit restarted after progress: {waited:?}"
        );
    }
}
