//! Packet sources: capture files (pcap, pcapng, stdin), several files merged in time order, and live interfaces.
//!
//! This is the first stage of the pipeline. It knows containers, not protocols: it hands each record on with its
//! link type, timestamp and 1-based frame number (Wireshark's numbering), and it reports damage instead of
//! failing. A file that cannot be read at all is a [`SourceError`] (the CLI turns it into exit code 2); damage
//! after the first good record is a [`SourceWarning`] and the records that could be read are still analysed.

mod ahead;
mod input;
pub mod live;
mod merge;
mod reader;

/// The capture files given on the command line, read as one source ([`open_with`]).
pub use merge::Merged as Files;
pub use reader::{MAX_BLOCK, MAX_CAPLEN};

use crate::ts::Ts;
use std::fmt;
use std::path::Path;

/// Where a packet came from: the index of its input file (in command-line order) and its 1-based frame number
/// within that file, counted the way Wireshark counts (every packet record, whatever its link type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketRef {
    pub file: u16,
    pub frame: u64,
}

/// A LINKTYPE_ value (<https://www.tcpdump.org/linktypes.html>), open: unknown values are kept and printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "NULL",
            1 => "EN10MB",
            101 => "RAW",
            108 => "LOOP",
            113 => "LINUX_SLL",
            228 => "IPV4",
            229 => "IPV6",
            276 => "LINUX_SLL2",
            _ => return None,
        })
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "linktype {}", self.0),
        }
    }
}

/// One captured packet, borrowed from the source's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub at: PacketRef,
    pub ts: Ts,
    pub link: LinkType,
    /// The captured bytes (at most the snapshot length).
    pub data: &'a [u8],
    /// The packet's length on the wire (`data.len()` or more when the capture cut it).
    pub orig_len: u32,
}

/// A file that cannot be read at all (missing, unreadable, not a capture). One line, naming the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub file: String,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl std::error::Error for SourceError {}

/// Damage found while reading a file that was otherwise readable ("stopped at byte N: …", "skipped record …").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceWarning {
    pub file: String,
    pub message: String,
}

impl fmt::Display for SourceWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// What the report says about each input file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileInfo {
    pub path: String,
    /// `"pcap"` or `"pcapng"`.
    pub format: String,
    /// The file was gzip-compressed (and decompressed while reading).
    pub gzip: bool,
    /// Every link type seen in the file's headers (pcap header, pcapng IDBs), in order of first appearance.
    pub link_types: Vec<String>,
    /// Snapshot length from the file header (the smallest over pcapng interfaces), 0 when unknown.
    pub snaplen: u32,
    /// Packet records read.
    pub packets: u64,
}

/// A stream of packets in timestamp order (within one file: file order).
pub trait PacketSource {
    /// The next packet, or `None` at the end of every input. Damage does not end the stream early unless the
    /// rest of a file cannot be found; it is recorded as a warning.
    fn next_packet(&mut self) -> Option<Packet<'_>>;

    /// Warnings recorded since the last call.
    fn take_warnings(&mut self) -> Vec<SourceWarning>;

    /// The inputs, as far as read so far.
    fn files(&self) -> Vec<FileInfo>;

    /// Bytes consumed and total bytes when known (for a progress bar).
    fn progress(&self) -> (u64, Option<u64>);
}

/// How the inputs are read.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    /// Read each input on a thread of its own, ahead of the packets handed out (the same packets; the reading
    /// and decompressing leave the caller's thread).
    pub read_ahead: bool,
}

/// Bytes of one read-ahead chunk, by number of inputs (a few chunks per input are in flight).
fn ahead_chunk(inputs: usize) -> usize {
    (1024 * 1024 / inputs.max(1)).clamp(64 * 1024, 512 * 1024)
}

/// Opens the inputs named on the command line (`-` is standard input) as one source, merged in time order.
///
/// Paths may be any `OsStr` (non-UTF-8 names work; messages show them lossily). Every input is opened and its
/// header checked before anything is read, so a bad input anywhere fails the whole call with one [`SourceError`]
/// naming it. Standard input may be named once.
pub fn open<P: AsRef<Path>>(inputs: &[P]) -> Result<Box<dyn PacketSource>, SourceError> {
    Ok(Box::new(open_with(inputs, OpenOptions::default())?))
}

/// [`open`], with options; the source's own type, so that the packet loop calls it directly and can inline it
/// (rather than through `dyn`, once per packet).
pub fn open_with<P: AsRef<Path>>(inputs: &[P], opts: OpenOptions) -> Result<Files, SourceError> {
    if inputs.is_empty() {
        return Err(SourceError {
            file: String::new(),
            message: "no input files".into(),
        });
    }
    if inputs.iter().filter(|p| p.as_ref().as_os_str() == "-").count() > 1 {
        return Err(SourceError {
            file: input::STDIN_NAME.into(),
            message: "standard input named twice".into(),
        });
    }
    // One buffer per file is held at once: smaller ones when many files are merged (memory stays near 8 MiB).
    let buf_size = if inputs.len() <= 8 {
        input::READ_CHUNK
    } else {
        input::READ_CHUNK_MANY
    };
    let mut readers = Vec::with_capacity(inputs.len());
    for (i, path) in inputs.iter().enumerate() {
        let path = path.as_ref();
        let Ok(index) = u16::try_from(i) else {
            return Err(SourceError {
                file: path.to_string_lossy().into_owned(),
                message: format!("too many input files (at most {})", u16::MAX),
            });
        };
        let mut opened = input::open_input(path)?;
        if opts.read_ahead {
            let chunk = ahead_chunk(inputs.len());
            opened.input = match ahead::Ahead::start(opened.input, chunk) {
                Ok(a) => input::Input::Ahead(Box::new(a)),
                Err(e) => {
                    return Err(SourceError {
                        file: opened.name,
                        message: format!("cannot start a reading thread: {e}"),
                    });
                }
            };
        }
        readers.push(reader::FileReader::new(opened, index, buf_size)?);
    }
    Ok(merge::Merged::new(readers))
}
