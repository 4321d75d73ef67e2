//! Read-ahead on a thread of its own: the `read` calls (the kernel copying the file out of the page cache, a
//! sixth of a run's time) and gzip decompression happen there, into chunks the reading side takes over whole
//! instead of copying them ([`super::input::RecBuf`] adopts each chunk as its buffer and hands the previous one
//! back). A few chunks are in flight at once, so memory stays a few MiB whatever the file's size.
//!
//! The stream is the same bytes in the same order; a read error arrives where it happened, after the bytes read
//! before it, and ends the stream as it would have ended a plain read.

use super::input::Input;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Bytes kept free in front of each chunk's data: the unread end of the previous chunk (a record cut by the
/// chunk boundary) is moved there, so the record is whole without copying the chunk.
/// Room for any usual record (a 64 KiB segment with its headers); a longer one is copied instead.
pub(crate) const HEAD_ROOM: usize = 64 * 1024 + 256;

/// Chunks filled or being filled at once, besides the one being read.
const IN_FLIGHT: usize = 3;

/// A chunk: `buf[HEAD_ROOM..HEAD_ROOM + len]` is the next part of the stream; `len` 0 is its end.
pub(crate) struct Chunk {
    pub buf: Vec<u8>,
    pub len: usize,
}

/// The reading side of a read-ahead thread.
pub(crate) struct Ahead {
    full: Receiver<io::Result<Chunk>>,
    empty: SyncSender<Vec<u8>>,
    /// Bytes the thread took from the file or pipe (compressed bytes for gzip), for the progress bar.
    raw: Arc<AtomicU64>,
    /// The stream ended (or failed, or the thread is gone): every later call says so.
    ended: bool,
    /// Bytes of a chunk not yet handed out by `read` (the rare plain reads: the format sniffing, a skip).
    spare: Option<(Chunk, usize)>,
}

impl Ahead {
    /// Starts reading `input` on a thread, in chunks of `chunk` bytes.
    pub(crate) fn start(mut input: Input, chunk: usize) -> io::Result<Ahead> {
        let (full_tx, full) = sync_channel::<io::Result<Chunk>>(IN_FLIGHT);
        let (empty, empty_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        for _ in 0..IN_FLIGHT {
            // Cannot fail: the channel has room and its receiver is alive.
            let _ = empty.try_send(Vec::new());
        }
        let raw = Arc::new(AtomicU64::new(input.raw_consumed()));
        let count = Arc::clone(&raw);
        std::thread::Builder::new()
            .name("whoclosed-read".into())
            .spawn(move || {
                // Ends when the stream does, or when the reading side is dropped (its channels close).
                while let Ok(mut buf) = empty_rx.recv() {
                    if buf.len() != HEAD_ROOM + chunk || buf.capacity() > 2 * (HEAD_ROOM + chunk) {
                        buf = vec![0; HEAD_ROOM + chunk];
                    }
                    let mut len = 0;
                    let mut failed = None;
                    while let Some(space) = buf.get_mut(HEAD_ROOM + len..).filter(|s| !s.is_empty()) {
                        match input.read(space) {
                            Ok(0) => break,
                            Ok(n) => len += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    count.store(input.raw_consumed(), Ordering::Relaxed);
                    let end = len == 0 || failed.is_some();
                    if (len > 0 || failed.is_none()) && full_tx.send(Ok(Chunk { buf, len })).is_err() {
                        return;
                    }
                    if let Some(e) = failed {
                        let _ = full_tx.send(Err(e));
                    }
                    if end {
                        return;
                    }
                }
            })?;
        Ok(Ahead {
            full,
            empty,
            raw,
            ended: false,
            spare: None,
        })
    }

    /// The next chunk, `None` at the end of the stream. A chunk handed out by `read` in part comes first.
    pub(crate) fn next(&mut self) -> io::Result<Option<(Chunk, usize)>> {
        if let Some(s) = self.spare.take() {
            return Ok(Some(s));
        }
        if self.ended {
            return Ok(None);
        }
        match self.full.recv() {
            Ok(Ok(c)) if c.len > 0 => Ok(Some((c, HEAD_ROOM))),
            Ok(Ok(c)) => {
                self.ended = true;
                self.give_back(c.buf);
                Ok(None)
            }
            Ok(Err(e)) => {
                self.ended = true;
                Err(e)
            }
            Err(_) => {
                self.ended = true;
                Ok(None)
            }
        }
    }

    /// A buffer for the thread to fill again.
    pub(crate) fn give_back(&mut self, buf: Vec<u8>) {
        // A full queue (a buffer given back twice over) or a finished thread: the buffer is simply dropped.
        let _ = self.empty.try_send(buf);
    }

    pub(crate) fn raw_consumed(&self) -> u64 {
        self.raw.load(Ordering::Relaxed)
    }
}

impl Read for Ahead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let Some((c, at)) = self.next()? else {
            return Ok(0);
        };
        let data = c.buf.get(at..HEAD_ROOM + c.len).unwrap_or(&[]);
        let n = data.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        if at + n < HEAD_ROOM + c.len {
            self.spare = Some((c, at + n));
        } else {
            self.give_back(c.buf);
        }
        Ok(n)
    }
}
