//! The TCP engine: connection table, per-direction endpoint state, sequence analysis and reassembly.
//!
//! It turns decoded segments into two things the later stages consume: ordered byte streams per direction
//! (handed to a [`StreamSink`], the HTTP/2 analyzer in practice) and a per-connection record of TCP events and
//! facts (who sent SYN, FIN, RST; retransmission series; keepalives; zero windows; idle gaps).

pub use crate::decode::SeqNum;

use crate::source::PacketRef;
use crate::ts::Ts;

/// Direction of a segment relative to the connection's roles: the client is the SYN sender (or the inferred
/// client when the handshake was not captured).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    /// Client to server.
    ToServer,
    /// Server to client.
    ToClient,
}

impl Dir {
    pub fn index(self) -> usize {
        match self {
            Dir::ToServer => 0,
            Dir::ToClient => 1,
        }
    }
    pub fn reverse(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }
    /// The party that sends in this direction.
    pub fn sender(self) -> &'static str {
        match self {
            Dir::ToServer => "client",
            Dir::ToClient => "server",
        }
    }
    pub fn receiver(self) -> &'static str {
        self.reverse().sender()
    }
    pub const BOTH: [Dir; 2] = [Dir::ToServer, Dir::ToClient];
}

/// Where and when a piece of stream data (or a gap) was seen: the packet that carried its last byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegMeta {
    pub at: PacketRef,
    pub ts: Ts,
}

/// Receives one connection's reassembled byte streams, in order, per direction.
///
/// Calls for the two directions interleave in capture order. Bytes are delivered exactly once; bytes the
/// capture does not have (lost segments, snaplen cuts, overflowing buffers) are announced with `on_gap`
/// instead, so the consumer can resynchronise.
pub trait StreamSink {
    /// The next in-order bytes of direction `dir`.
    fn on_data(&mut self, dir: Dir, data: &[u8], meta: SegMeta);
    /// `missing` bytes of direction `dir` are not in the capture; the next `on_data` follows them.
    fn on_gap(&mut self, dir: Dir, missing: u64, meta: SegMeta);
    /// Direction `dir` ended (FIN or RST seen and everything before it delivered or announced as a gap).
    fn on_end(&mut self, dir: Dir, meta: SegMeta);
}

pub mod conn;
pub mod reassembly;
pub mod record;
pub mod table;

pub use conn::TcpConfig;
pub use record::*;
pub use table::{TcpStats, Tracker};

#[cfg(test)]
mod tests;
