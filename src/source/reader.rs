//! One capture file, read record by record: classic pcap (both byte orders, micro/nanosecond, the "modified"
//! Kuznetzov format) and pcapng (several sections of either byte order, per-interface link type, `if_tsresol`,
//! `if_tsoffset`, EPB/SPB/obsolete PB).
//!
//! `pcap-parser` parses the file header, the section headers and the interface descriptions. The per-packet
//! records are framed here, by hand, for three reasons: damage must be reported with its byte offset and the
//! lengths involved (the crate's readers only say "error"), its EPB parser allocates an option vector per
//! packet, and in 0.17 it rejects every base-2 `if_tsresol`, reads `if_tsoffset` little-endian in big-endian
//! sections and ignores the snapshot length for SPBs.
//!
//! Limits (what "absurd" means): a record keeps at most [`MAX_CAPLEN`] captured bytes (256 KiB, libpcap's and
//! Wireshark's maximum snapshot length). A classic-pcap record whose captured length is larger is read and cut to
//! that size when the file's snapshot length announced it (and it is under [`MAX_BLOCK`]); otherwise the length
//! is garbage and, since classic pcap has no other framing, reading stops there with a warning. A pcapng block is
//! framed by its own length, so a damaged block is skipped when its leading and trailing lengths agree, and
//! reading stops only when they do not, or when the length is impossible (under 12, not a multiple of 4, over
//! [`MAX_BLOCK`]).

use super::input::{Input, Opened, RecBuf, describe_unknown};
use super::{FileInfo, LinkType, Packet, PacketRef, SourceError, SourceWarning};
use crate::ts::{Dur, Ts};

/// The most captured bytes kept per packet (256 KiB).
pub const MAX_CAPLEN: usize = 262_144;
/// The largest pcapng block (or over-long classic record announced by the snapshot length) we skip over instead of
/// calling the framing broken (16 MiB, Wireshark's limit for pcapng blocks).
pub const MAX_BLOCK: u64 = 16 * 1024 * 1024;
/// Warnings kept per file; the rest are counted in one last line.
const MAX_WARNINGS: usize = 20;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const SJE: u32 = 9;
const CB: u32 = 0x0000_0BAD;
const DCB: u32 = 0x4000_0BAD;

#[derive(Clone, Copy)]
struct Endian {
    big: bool,
}

impl Endian {
    #[inline]
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let a = match b.get(at..at + 4) {
            Some(&[a, b, c, d]) => [a, b, c, d],
            _ => return 0,
        };
        if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }
    #[inline]
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let a = match b.get(at..at + 2) {
            Some(&[a, b]) => [a, b],
            _ => return 0,
        };
        if self.big {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
}

struct PcapFmt {
    e: Endian,
    nanos: bool,
    /// Record header length: 16, or 24 for the modified format.
    hdr: usize,
    link: LinkType,
    snaplen: u32,
}

#[derive(Clone, Copy)]
struct Iface {
    link: LinkType,
    snaplen: u32,
    /// Timestamp units per second.
    per_second: u64,
    offset_secs: i64,
}

struct NgFmt {
    e: Endian,
    ifaces: Vec<Iface>,
    last_ts: Ts,
    sections: u32,
}

enum Format {
    Pcap(PcapFmt),
    Ng(NgFmt),
}

/// The record currently handed out: where its bytes sit in the buffer's unconsumed data.
#[derive(Clone, Copy)]
struct Current {
    ts: Ts,
    /// Link type (high 32 bits) and original length (low 32 bits) in one word: written and read as one, so the
    /// per-packet copy into `Packet` does not stall on store forwarding (two 4-byte stores, one 8-byte load).
    link_orig: u64,
    data_at: usize,
    data_len: usize,
    frame: u64,
}

pub(crate) struct FileReader {
    pub(crate) index: u16,
    name: String,
    input: Input,
    buf: RecBuf,
    size: Option<u64>,
    fmt: Format,
    info: FileInfo,
    frame: u64,
    cur: Option<Current>,
    /// Bytes of the current record still to drop before the next one is read.
    pending: u64,
    done: bool,
    warnings: Vec<SourceWarning>,
    warnings_total: usize,
    warned_over_snaplen: bool,
    warned_cut: bool,
}

enum Step {
    /// A packet record is in `cur`.
    Packet,
    Skip,
    End,
}

fn le_u32_at(b: &[u8], at: usize) -> u32 {
    Endian { big: false }.u32(b, at)
}

impl FileReader {
    /// Recognises the format from the first bytes and reads the file header.
    /// `buf_size`: the read-ahead buffer (see [`super::input::READ_CHUNK`]).
    pub(crate) fn new(opened: Opened, index: u16, buf_size: usize) -> Result<FileReader, SourceError> {
        let Opened {
            name,
            mut input,
            gzip,
            size,
        } = opened;
        let mut buf = RecBuf::new(buf_size);
        let fail = |m: String| SourceError {
            file: name.clone(),
            message: m,
        };
        let got = buf.fill(&mut input, 64).map_err(|e| {
            if gzip {
                fail(format!("gzip data is damaged: {e}"))
            } else {
                fail(format!("cannot read: {e}"))
            }
        })?;
        let head = buf.data();
        let gz = if gzip { "gzip-compressed, but " } else { "" };
        if got == 0 {
            return Err(fail(format!("{gz}empty (no capture data)")));
        }
        if got < 4 {
            return Err(fail(format!(
                "{gz}too short to be a capture: {got} bytes (a pcap file header alone is 24 bytes)"
            )));
        }
        let magic = le_u32_at(head, 0);
        let mut info = FileInfo {
            path: name.clone(),
            gzip,
            ..FileInfo::default()
        };
        let fmt = match magic {
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0xa1b2_cd34 | 0x34cd_b2a1 => {
                if got < 24 {
                    return Err(fail(format!(
                        "{gz}too short for a pcap file header: {got} bytes, the header alone needs 24"
                    )));
                }
                let (e, nanos, hdr, snaplen, link) = match magic {
                    // pcap-parser does not know the big-endian modified format.
                    0x34cd_b2a1 => {
                        let e = Endian { big: true };
                        (e, false, 24, e.u32(head, 16), e.u32(head, 20))
                    }
                    _ => match pcap_parser::parse_pcap_header(head) {
                        Ok((_, h)) => (
                            Endian { big: h.is_bigendian() },
                            h.is_nanosecond_precision(),
                            if h.is_modified_format() { 24 } else { 16 },
                            h.snaplen,
                            h.network.0 as u32,
                        ),
                        Err(_) => return Err(fail(format!("{gz}the pcap file header is damaged"))),
                    },
                };
                // The upper bits of the link type field carry FCS length and flags (pcap spec: LinkType and
                // additional information); the type itself is the low 16 bits.
                let link = LinkType(link & 0xffff);
                info.format = "pcap".into();
                info.link_types.push(link.to_string());
                info.snaplen = snaplen;
                buf.consume(&mut input, 24)
                    .map_err(|e| fail(format!("cannot read: {e}")))?;
                Format::Pcap(PcapFmt {
                    e,
                    nanos,
                    hdr,
                    link,
                    snaplen,
                })
            }
            SHB => {
                if got < 28 {
                    return Err(fail(format!(
                        "{gz}too short for a pcapng section header: {got} bytes, the header alone needs 28"
                    )));
                }
                let big = match head.get(8..12) {
                    Some([0x4d, 0x3c, 0x2b, 0x1a]) => false,
                    Some([0x1a, 0x2b, 0x3c, 0x4d]) => true,
                    _ => {
                        return Err(fail(format!("{gz}pcapng section header with a bad byte-order magic")));
                    }
                };
                info.format = "pcapng".into();
                Format::Ng(NgFmt {
                    e: Endian { big },
                    ifaces: Vec::new(),
                    last_ts: Ts::ZERO,
                    sections: 0,
                })
            }
            _ => return Err(fail(format!("{gz}{}", describe_unknown(head)))),
        };
        Ok(FileReader {
            index,
            name,
            input,
            buf,
            size,
            fmt,
            info,
            frame: 0,
            cur: None,
            pending: 0,
            done: false,
            warnings: Vec::new(),
            warnings_total: 0,
            warned_over_snaplen: false,
            warned_cut: false,
        })
    }

    pub(crate) fn info(&self) -> &FileInfo {
        &self.info
    }

    /// (bytes read from the file, file size when known)
    pub(crate) fn progress(&self) -> (u64, Option<u64>) {
        (self.input.raw_consumed(), self.size)
    }

    pub(crate) fn take_warnings(&mut self, out: &mut Vec<SourceWarning>) {
        out.append(&mut self.warnings);
    }

    /// Timestamp of the record currently held, if any.
    #[inline]
    pub(crate) fn current_ts(&self) -> Option<Ts> {
        self.cur.as_ref().map(|c| c.ts)
    }

    /// The record currently held.
    #[inline]
    pub(crate) fn packet(&self) -> Option<Packet<'_>> {
        // Field by field through a reference: copying the whole record (just written field by field) costs a
        // store-forwarding stall per packet.
        let c = self.cur.as_ref()?;
        let data = self.buf.data().get(c.data_at..c.data_at + c.data_len)?;
        Some(Packet {
            at: PacketRef {
                file: self.index,
                frame: c.frame,
            },
            ts: c.ts,
            link: LinkType((c.link_orig >> 32) as u32),
            data,
            orig_len: c.link_orig as u32,
        })
    }

    fn warn(&mut self, message: String) {
        self.warnings_total += 1;
        if self.warnings_total <= MAX_WARNINGS {
            self.warnings.push(SourceWarning {
                file: self.name.clone(),
                message,
            });
        } else if self.warnings_total == MAX_WARNINGS + 1 {
            self.warnings.push(SourceWarning {
                file: self.name.clone(),
                message: format!("more than {MAX_WARNINGS} warnings; the rest are not shown"),
            });
        }
    }

    fn stop(&mut self, message: String) -> Step {
        self.warn(message);
        Step::End
    }

    /// Moves to the next packet record (or to the end).
    pub(crate) fn advance(&mut self) {
        self.cur = None;
        if self.done {
            return;
        }
        if self.pending > 0 {
            let n = self.pending;
            self.pending = 0;
            if let Err(e) = self.buf.consume(&mut self.input, n) {
                let at = self.buf.offset();
                self.warn(format!("stopped at byte {at}: read error: {e}"));
                self.done = true;
                return;
            }
        }
        loop {
            let step = match self.fmt {
                Format::Pcap(_) => self.next_pcap(),
                Format::Ng(_) => self.next_ng(),
            };
            match step {
                Step::Packet => {
                    self.info.packets += 1;
                    return;
                }
                Step::Skip => {
                    if self.pending > 0 {
                        let n = self.pending;
                        self.pending = 0;
                        if let Err(e) = self.buf.consume(&mut self.input, n) {
                            let at = self.buf.offset();
                            self.warn(format!("stopped at byte {at}: read error: {e}"));
                            self.done = true;
                            return;
                        }
                    }
                }
                Step::End => {
                    self.done = true;
                    return;
                }
            }
        }
    }

    /// Fills the buffer to `need` bytes; on a read error, records it and returns `None`.
    #[inline]
    fn fill(&mut self, need: usize) -> Option<usize> {
        match self.buf.fill(&mut self.input, need) {
            Ok(n) => Some(n),
            Err(e) => {
                let at = self.buf.offset();
                let what = if self.info.gzip {
                    "gzip data is damaged"
                } else {
                    "read error"
                };
                self.warn(format!("stopped at byte {at}: {what}: {e}"));
                None
            }
        }
    }

    fn next_pcap(&mut self) -> Step {
        let Format::Pcap(p) = &self.fmt else {
            return Step::End;
        };
        let (e, nanos, hdr, link, snaplen) = (p.e, p.nanos, p.hdr, p.link, p.snaplen);
        let at = self.buf.offset();
        let Some(avail) = self.fill(hdr) else {
            return Step::End;
        };
        if avail == 0 {
            return Step::End;
        }
        if avail < hdr {
            return self.stop(format!(
                "stopped at byte {at}: the last record is cut (its header needs {hdr} bytes, file ends after {avail})"
            ));
        }
        let d = self.buf.data();
        let sec = e.u32(d, 0);
        let frac = e.u32(d, 4);
        let caplen = e.u32(d, 8);
        let orig = e.u32(d, 12);
        let caplen_us = caplen as usize;
        let mut keep = caplen_us;
        if caplen_us > MAX_CAPLEN {
            if caplen <= snaplen && u64::from(caplen) <= MAX_BLOCK {
                keep = MAX_CAPLEN;
                if !self.warned_cut {
                    self.warned_cut = true;
                    self.warn(format!(
                        "record at byte {at} has {caplen} captured bytes; only the first {MAX_CAPLEN} are kept"
                    ));
                }
            } else {
                let snap = if snaplen == 0 {
                    "the file gives no snapshot length".to_string()
                } else {
                    format!("snapshot length {snaplen}")
                };
                return self.stop(format!(
                    "stopped at byte {at}: record length {caplen} exceeds the limit of {MAX_CAPLEN} bytes ({snap}); \
                     the rest of the file is not read"
                ));
            }
        } else if snaplen != 0 && caplen > snaplen && !self.warned_over_snaplen {
            self.warned_over_snaplen = true;
            self.warn(format!(
                "record at byte {at} has {caplen} captured bytes, more than the snapshot length {snaplen} (kept)"
            ));
        }
        let need = hdr + keep;
        let Some(avail) = self.fill(need) else {
            return Step::End;
        };
        if avail < need {
            let total = hdr + caplen_us;
            return self.stop(format!(
                "stopped at byte {at}: the last record is cut (needs {total} bytes, file ends after {avail})"
            ));
        }
        self.frame += 1;
        self.pending = (hdr as u64).saturating_add(u64::from(caplen));
        let nanos_part = if nanos {
            u64::from(frac)
        } else {
            u64::from(frac).saturating_mul(1000)
        };
        self.cur = Some(Current {
            ts: Ts::from_secs_nanos(u64::from(sec), nanos_part),
            link_orig: (u64::from(link.0) << 32) | u64::from(orig.max(caplen)),
            data_at: hdr,
            data_len: keep,
            frame: self.frame,
        });
        Step::Packet
    }

    fn next_ng(&mut self) -> Step {
        let Format::Ng(ng) = &self.fmt else {
            return Step::End;
        };
        let mut e = ng.e;
        let at = self.buf.offset();
        let Some(avail) = self.fill(12) else {
            return Step::End;
        };
        if avail == 0 {
            return Step::End;
        }
        if avail < 12 {
            return self.stop(format!(
                "stopped at byte {at}: the last block is cut (its header needs 12 bytes, file ends after {avail})"
            ));
        }
        let d = self.buf.data();
        let btype_le = le_u32_at(d, 0);
        if btype_le == SHB {
            match d.get(8..12) {
                Some([0x4d, 0x3c, 0x2b, 0x1a]) => e = Endian { big: false },
                Some([0x1a, 0x2b, 0x3c, 0x4d]) => e = Endian { big: true },
                _ => {
                    return self.stop(format!(
                        "stopped at byte {at}: section header block with a bad byte-order magic"
                    ));
                }
            }
        }
        let btype = e.u32(d, 0);
        let blen = e.u32(d, 4);
        if blen < 12 || blen % 4 != 0 || u64::from(blen) > MAX_BLOCK {
            return self.stop(format!(
                "stopped at byte {at}: block of type 0x{btype:08x} has an impossible length {blen}; the rest of \
                 the file cannot be framed"
            ));
        }
        let blen_us = blen as usize;
        // Packet blocks keep at most MAX_CAPLEN bytes; other blocks we read are small (headers, options).
        let want = blen_us.min(MAX_CAPLEN + 64);
        let Some(avail) = self.fill(want) else {
            return Step::End;
        };
        if avail < want {
            return self.stop(format!(
                "stopped at byte {at}: the last block is cut (needs {blen} bytes, file ends after {avail})"
            ));
        }
        self.pending = u64::from(blen);
        let d = self.buf.data();
        if want == blen_us {
            let trailer = e.u32(d, blen_us - 4);
            if trailer != blen {
                return self.stop(format!(
                    "stopped at byte {at}: block of type 0x{btype:08x} is damaged (leading length {blen}, trailing \
                     length {trailer}); the rest of the file cannot be framed"
                ));
            }
        }
        match btype {
            SHB => self.ng_section(e, at),
            IDB => self.ng_interface(e, at),
            EPB | PB | SPB => self.ng_packet(e, btype, blen_us, at),
            CB | DCB | SJE => {
                // Wireshark shows custom blocks and journal entries as frames: count them so that our frame
                // numbers match its frame numbers.
                self.frame += 1;
                Step::Skip
            }
            _ => Step::Skip,
        }
    }

    fn ng_section(&mut self, e: Endian, at: u64) -> Step {
        let d = self.buf.data();
        let major = e.u16(d, 12);
        let minor = e.u16(d, 14);
        if let Format::Ng(ng) = &mut self.fmt {
            ng.e = e;
            ng.ifaces.clear();
            ng.sections += 1;
        }
        if major != 1 {
            self.warn(format!(
                "section header at byte {at} has version {major}.{minor} (expected 1.0); read as 1.0"
            ));
        }
        Step::Skip
    }

    fn ng_interface(&mut self, e: Endian, at: u64) -> Step {
        let d = self.buf.data();
        let blen = e.u32(d, 4) as usize;
        let link = LinkType(u32::from(e.u16(d, 8)));
        let snaplen = e.u32(d, 12);
        let has_options = blen > 20;
        // Options through pcap-parser (code, raw value); the values are decoded here, in the section's byte order.
        let parsed = if e.big {
            pcap_parser::pcapng::parse_interfacedescriptionblock_be(d)
        } else {
            pcap_parser::pcapng::parse_interfacedescriptionblock_le(d)
        };
        let mut per_second = 1_000_000u64;
        let mut offset_secs = 0i64;
        let mut bad_resol = None;
        let options_ok = match &parsed {
            Ok((_, idb)) => {
                for o in &idb.options {
                    let v = o.value();
                    match o.code.0 {
                        9 => {
                            if let Some(&r) = v.first() {
                                match tsresol(r) {
                                    Some(p) => per_second = p,
                                    None => bad_resol = Some(r),
                                }
                            }
                        }
                        14 => {
                            if let Some(&[a, b, c, dd, e2, f, g, h]) = v.get(..8) {
                                let raw = [a, b, c, dd, e2, f, g, h];
                                offset_secs = if e.big {
                                    i64::from_be_bytes(raw)
                                } else {
                                    i64::from_le_bytes(raw)
                                };
                            }
                        }
                        _ => {}
                    }
                }
                true
            }
            Err(_) => false,
        };
        drop(parsed);
        if blen < 20 {
            // Still takes an interface number, so that later interfaces keep theirs.
            self.warn(format!(
                "interface description at byte {at} is too short ({blen} bytes)"
            ));
        } else if !options_ok && has_options {
            self.warn(format!(
                "interface description at byte {at} has damaged options; link type and snapshot length kept"
            ));
        }
        if let Some(r) = bad_resol {
            self.warn(format!(
                "interface description at byte {at} has an unusable if_tsresol 0x{r:02x}; microseconds assumed"
            ));
        }
        let name = link.to_string();
        if !self.info.link_types.contains(&name) {
            self.info.link_types.push(name);
        }
        if snaplen != 0 && (self.info.snaplen == 0 || snaplen < self.info.snaplen) {
            self.info.snaplen = snaplen;
        }
        if let Format::Ng(ng) = &mut self.fmt {
            // A file with thousands of interfaces is hostile; the table stays bounded (ids above it are unknown).
            if ng.ifaces.len() < 65_536 {
                ng.ifaces.push(Iface {
                    link,
                    snaplen,
                    per_second,
                    offset_secs,
                });
            }
        }
        Step::Skip
    }

    fn ng_packet(&mut self, e: Endian, btype: u32, blen: usize, at: u64) -> Step {
        let Format::Ng(ng) = &self.fmt else {
            return Step::End;
        };
        let first_snaplen = ng.ifaces.first().map_or(0, |i| i.snaplen);
        let last_ts = ng.last_ts;
        let d = self.buf.data();
        let kind = match btype {
            EPB => "enhanced packet block",
            SPB => "simple packet block",
            _ => "packet block",
        };
        self.frame += 1;
        let frame = self.frame;
        let min_len = if btype == SPB { 16 } else { 32 };
        if blen < min_len {
            self.warn(format!(
                "skipped a damaged {kind} at byte {at} (frame {frame}): block length {blen} is too short"
            ));
            return Step::Skip;
        }
        // (interface, timestamp ticks or None for SPB, caplen, orig_len, data offset)
        let (iface_id, ticks, caplen, orig, data_at) = if btype == SPB {
            let orig = e.u32(d, 8);
            let mut cap = (orig as usize).min(blen - 16);
            if first_snaplen != 0 {
                cap = cap.min(first_snaplen as usize);
            }
            (0, None, cap, orig, 12usize)
        } else {
            let iface = if btype == EPB {
                e.u32(d, 8) as usize
            } else {
                usize::from(e.u16(d, 8))
            };
            let ticks = (u64::from(e.u32(d, 12)) << 32) | u64::from(e.u32(d, 16));
            (iface, Some(ticks), e.u32(d, 20) as usize, e.u32(d, 24), 28usize)
        };
        let iface = match &self.fmt {
            Format::Ng(ng) => ng.ifaces.get(iface_id).copied(),
            Format::Pcap(_) => None,
        };
        let Some(iface) = iface else {
            self.warn(format!(
                "skipped the {kind} at byte {at} (frame {frame}): interface {iface_id} is not described in its section"
            ));
            return Step::Skip;
        };
        // data_at + caplen + trailer must fit in the block.
        if data_at.saturating_add(caplen).saturating_add(4) > blen {
            self.warn(format!(
                "skipped a damaged {kind} at byte {at} (frame {frame}): captured length {caplen} does not fit in \
                 block length {blen}"
            ));
            return Step::Skip;
        }
        let keep = caplen.min(MAX_CAPLEN);
        if keep < caplen {
            if !self.warned_cut {
                self.warned_cut = true;
                self.warn(format!(
                    "{kind} at byte {at} has {caplen} captured bytes; only the first {MAX_CAPLEN} are kept"
                ));
            }
        } else if iface.snaplen != 0 && caplen > iface.snaplen as usize && !self.warned_over_snaplen {
            self.warned_over_snaplen = true;
            self.warn(format!(
                "{kind} at byte {at} has {caplen} captured bytes, more than the snapshot length {} (kept)",
                iface.snaplen
            ));
        }
        let ts = match ticks {
            Some(t) => Ts::from_ticks(t, iface.per_second).plus(Dur::from_secs(iface.offset_secs)),
            None => last_ts,
        };
        if let Format::Ng(ng) = &mut self.fmt {
            ng.last_ts = ts;
        }
        self.cur = Some(Current {
            ts,
            link_orig: (u64::from(iface.link.0) << 32) | u64::from(orig.max(u32::try_from(caplen).unwrap_or(u32::MAX))),
            data_at,
            data_len: keep,
            frame,
        });
        Step::Packet
    }
}

/// `if_tsresol` to units per second: bit 7 clear is a negative power of 10, set a negative power of 2.
fn tsresol(r: u8) -> Option<u64> {
    let exp = u32::from(r & 0x7f);
    if r & 0x80 == 0 {
        10u64.checked_pow(exp)
    } else {
        2u64.checked_pow(exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_both_bases() {
        assert_eq!(tsresol(6), Some(1_000_000));
        assert_eq!(tsresol(9), Some(1_000_000_000));
        assert_eq!(tsresol(0x80 | 10), Some(1024));
        assert_eq!(tsresol(0x80 | 63), Some(1 << 63));
        assert_eq!(tsresol(0x80 | 64), None);
        assert_eq!(tsresol(20), None);
    }
}
