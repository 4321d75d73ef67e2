//! Per-stream state the analyzer needs: who sent the request, how each side ended, gRPC facts (deadline,
//! status, message counts). Bounded: at most [`MAX_TRACKED_STREAMS`] streams are tracked at once; a closed
//! stream is forgotten.

use super::grpc::MessageCounter;
use crate::tcp::Dir;
use crate::ts::Ts;
use std::collections::HashMap;

/// Streams tracked at the same time; beyond it new streams are counted but not followed.
pub const MAX_TRACKED_STREAMS: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Stream {
    /// Direction of the request HEADERS (`None`: the stream started before the capture).
    pub req_dir: Option<Dir>,
    /// END_STREAM seen, per direction index.
    pub ended: [bool; 2],
    pub status: Option<u16>,
    pub grpc: bool,
    pub grpc_status: Option<u32>,
    pub grpc_message: Option<String>,
    /// When the call's grpc-timeout runs out.
    pub deadline: Option<Ts>,
    pub messages: [MessageCounter; 2],
}

impl Stream {
    /// The direction responses travel in, when known.
    pub fn resp_dir(&self) -> Option<Dir> {
        self.req_dir.map(Dir::reverse)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Streams {
    map: HashMap<u32, Stream>,
    /// Highest stream id seen open per parity (index 1: odd, client-initiated).
    pub highest: [u32; 2],
    /// Set once the cap was hit.
    pub overflowed: bool,
}

impl Streams {
    pub fn get_mut(&mut self, id: u32) -> Option<&mut Stream> {
        self.map.get_mut(&id)
    }

    pub fn get(&self, id: u32) -> Option<&Stream> {
        self.map.get(&id)
    }

    /// The stream, created if there is room. `None` when the table is full.
    pub fn entry(&mut self, id: u32) -> Option<&mut Stream> {
        if !self.map.contains_key(&id) && self.map.len() >= MAX_TRACKED_STREAMS {
            self.overflowed = true;
            return None;
        }
        let p = usize::try_from(id & 1).unwrap_or(0);
        if let Some(h) = self.highest.get_mut(p) {
            *h = (*h).max(id);
        }
        Some(self.map.entry(id).or_default())
    }

    /// Whether `id` is above every stream of its parity seen so far (a new stream).
    pub fn is_new(&self, id: u32) -> bool {
        let p = usize::try_from(id & 1).unwrap_or(0);
        self.highest.get(p).is_none_or(|h| id > *h) && !self.map.contains_key(&id)
    }

    pub fn remove(&mut self, id: u32) -> Option<Stream> {
        self.map.remove(&id)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Every tracked stream (to mark message counters lost after a gap).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Stream> {
        self.map.values_mut()
    }
}
