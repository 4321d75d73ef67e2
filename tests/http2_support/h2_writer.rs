//! Drives h2's own encoder (`h2::Codec`, feature `unstable`) synchronously into a byte vector: the reference
//! implementation writes the frames, ours reads them.

use bytes::Bytes;
use h2::frame::Frame;
use std::io::Cursor;
use std::task::{Context, Poll, Waker};

pub struct H2Writer {
    codec: h2::Codec<Cursor<Vec<u8>>, Bytes>,
}

impl Default for H2Writer {
    fn default() -> Self {
        H2Writer {
            codec: h2::Codec::new(Cursor::new(Vec::new())),
        }
    }
}

impl H2Writer {
    pub fn codec(&mut self) -> &mut h2::Codec<Cursor<Vec<u8>>, Bytes> {
        &mut self.codec
    }

    pub fn send(&mut self, frame: impl Into<Frame<Bytes>>) {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            match self.codec.poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => break,
                Poll::Ready(Err(e)) => panic!("h2 codec: {e}"),
                Poll::Pending => {
                    let _ = self.codec.flush(&mut cx);
                }
            }
        }
        self.codec.buffer(frame.into()).expect("h2 accepts the frame");
        self.flush();
    }

    pub fn flush(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1000 {
            match self.codec.flush(&mut cx) {
                Poll::Ready(Ok(())) => {
                    // A header block longer than a frame leaves CONTINUATIONs queued until the next poll_ready.
                    match self.codec.poll_ready(&mut cx) {
                        Poll::Ready(Ok(())) => return,
                        Poll::Ready(Err(e)) => panic!("h2 codec: {e}"),
                        Poll::Pending => continue,
                    }
                }
                Poll::Ready(Err(e)) => panic!("h2 codec: {e}"),
                Poll::Pending => continue,
            }
        }
        panic!("h2 codec did not flush");
    }

    /// The bytes written so far (and forgets them).
    pub fn take(&mut self) -> Vec<u8> {
        self.flush();
        let c = self.codec.get_mut();
        c.set_position(0);
        std::mem::take(c.get_mut())
    }
}
