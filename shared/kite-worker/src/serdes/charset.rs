//! Sources in another charset than UTF-8, read as UTF-8: the raw chunks go through the
//! charset's decoder as they are read (a character split between two chunks is completed
//! by the next one).

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use kite_core::plugin::serdes::charset::TextDecoder;
use kite_core::plugin::serdes::Charset;
use kite_core::plugin::storage::StorageError;
use kite_engine::ports::ByteStream;
use tokio::io::{AsyncRead, ReadBuf};

use crate::storage::io::open;
use crate::storage::Scope;

const CHUNK: usize = 64 * 1024;

/// A byte stream decoded to UTF-8.
struct Decoded {
    inner: ByteStream,
    decoder: TextDecoder,
    raw: Vec<u8>,
    text: Vec<u8>,
    at: usize,
    ended: bool,
}

impl AsyncRead for Decoded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.at < this.text.len() {
                let n = buf.remaining().min(this.text.len() - this.at);
                buf.put_slice(&this.text[this.at..this.at + n]);
                this.at += n;
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            this.text.clear();
            this.at = 0;
            let mut raw = ReadBuf::new(&mut this.raw);
            ready!(this.inner.as_mut().poll_read(cx, &mut raw))?;
            let read = raw.filled().len();
            this.ended = read == 0;
            this.decoder.push(&this.raw[..read], this.ended, &mut this.text);
        }
    }
}

/// Wraps `stream` so that it reads as UTF-8 (UTF-8 itself is passed through as is).
pub(crate) fn decoded(stream: ByteStream, charset: Charset) -> ByteStream {
    if charset.is_utf8() {
        return stream;
    }
    Box::pin(Decoded {
        inner: stream,
        decoder: charset.decoder(),
        raw: vec![0; CHUNK],
        text: Vec::with_capacity(CHUNK * 2),
        at: 0,
        ended: false,
    })
}

/// Opens `uri` for reading, as UTF-8 text of `charset`.
pub(crate) async fn open_text(
    scope: &Scope<'_>,
    uri: &str,
    charset: Charset,
) -> Result<ByteStream, StorageError> {
    Ok(decoded(
        open(scope.files.as_ref(), uri, scope.readable).await?,
        charset,
    ))
}
