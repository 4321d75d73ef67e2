//! The raw command line, as clap parses it. Nothing here is validated beyond syntax; `config.rs` turns it into
//! the configuration the program runs with.

use clap::{Parser, ValueEnum};
use std::ffi::OsString;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Table,
    Json,
    Ndjson,
    Markdown,
    Html,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimeArg {
    Utc,
    Local,
    Relative,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

/// Explains, for every TCP connection in a capture, who closed it and why.
///
/// Reads pcap/pcapng files (or `-` for standard input), reassembles TCP, decodes HTTP/2 and gRPC, and prints
/// one row per connection: who closed it (client, server, a middlebox, nobody yet), the cause, and the capture
/// frames that prove it.
#[derive(Debug, Parser)]
#[command(name = "whoclosed", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Args {
    /// Capture files (pcap or pcapng, gzip-compressed too); `-` reads standard input. Several files are merged in
    /// timestamp order.
    #[arg(value_name = "FILE")]
    pub files: Vec<OsString>,

    /// Read this capture file (same as a FILE argument; may be repeated).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Vec<OsString>,

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: FormatArg,

    /// Print each connection's timeline of events.
    #[arg(long)]
    pub timeline: bool,

    /// List every HTTP/2 frame instead of the connection report.
    #[arg(long)]
    pub frames: bool,

    /// How to show times in human formats (JSON always uses RFC 3339 UTC).
    #[arg(long, value_enum, default_value = "utc")]
    pub time: TimeArg,

    /// Only connections with this port on either side (may be repeated).
    #[arg(long, value_name = "PORT")]
    pub port: Vec<u16>,

    /// Only connections with this address on either side (may be repeated).
    #[arg(long, value_name = "ADDR")]
    pub host: Vec<String>,

    /// Only the connection with this id (may be repeated).
    #[arg(long = "conn", value_name = "ID")]
    pub conn: Vec<u64>,

    /// Only connections that did not end normally.
    #[arg(long)]
    pub problems: bool,

    /// Colour: on a terminal by default, never with NO_COLOR set or when writing to a pipe.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorArg,

    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Most connections tracked at once; past it the least recently active is reported early.
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    pub max_connections: usize,

    /// Seconds a closed connection is kept for late packets before its verdict is made.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub linger: f64,

    /// Silence (seconds) shown as an idle gap in timelines.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub idle_gap: f64,

    /// Memory for finished connections' report text (MiB): past it the text goes to a temporary file, in
    /// connection order as far as this much memory can sort it.
    #[arg(long, value_name = "MIB", default_value_t = crate::report::store::MEMORY_BUDGET >> 20)]
    pub report_memory: usize,

    /// Threads for reading a capture: 1 does everything on one; 2 analyses the packets on one and writes the
    /// report on the other; 3 also reads the file ahead on a third (the default with two cores or more). The
    /// output is the same.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Report and forget connections idle this long (seconds). Default: never for files, 7200 live.
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<f64>,

    /// Capture live from this interface (`any` for all). Words after the options form a capture filter, as
    /// with tcpdump.
    #[arg(short = 'i', long = "interface", value_name = "IFACE", help_heading = "Live capture")]
    pub interface: Option<String>,

    /// Capture filter (BPF syntax), instead of trailing words.
    #[arg(short = 'f', long = "filter", value_name = "EXPR", help_heading = "Live capture")]
    pub filter: Option<String>,

    /// List the interfaces that can be captured from, and exit.
    #[arg(short = 'D', long = "list-interfaces", help_heading = "Live capture")]
    pub list_interfaces: bool,

    /// Bytes captured per packet.
    #[arg(
        short = 's',
        long = "snaplen",
        value_name = "BYTES",
        default_value_t = 262_144,
        help_heading = "Live capture"
    )]
    pub snaplen: i32,

    /// Kernel capture buffer, in MiB.
    #[arg(
        short = 'B',
        long = "buffer-size",
        value_name = "MIB",
        default_value_t = 32,
        help_heading = "Live capture"
    )]
    pub buffer_mb: i32,

    /// Stop after this many packets.
    #[arg(short = 'c', long = "count", value_name = "N", help_heading = "Live capture")]
    pub count: Option<u64>,

    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", help_heading = "Live capture")]
    pub duration: Option<f64>,

    /// Also write the raw packets to this pcap file, to analyse again later.
    #[arg(short = 'w', long = "write", value_name = "FILE", help_heading = "Live capture")]
    pub write: Option<std::path::PathBuf>,

    /// Drop privileges to this user once the capture is open (nothing after needs root).
    #[arg(short = 'Z', long = "user", value_name = "USER", help_heading = "Live capture")]
    pub user: Option<String>,

    /// Hand each packet over as it arrives (immediate mode) instead of in the kernel's batches, delivered at
    /// least every 100 ms: lower latency, about half the packet rate without drops.
    #[arg(long, help_heading = "Live capture")]
    pub immediate: bool,
}

const EXAMPLES: &str = "Examples:
  whoclosed capture.pcap                    table of connections, with the problems explained below it
  whoclosed --problems --timeline cap.pcapng only the connections that did not end normally, with their events
  whoclosed --format markdown cap.pcap      a report to paste into an incident ticket
  tcpdump -i eth0 -w - | whoclosed -        read a live tcpdump from standard input
  whoclosed --frames --port 50051 grpc.pcap every HTTP/2 frame of the gRPC connections on port 50051
  sudo whoclosed -i eth0 tcp port 50051    live: a verdict per connection as it closes (Ctrl-C to stop)
  sudo whoclosed -i any -w inc.pcap -Z nobody --format ndjson   live, keep the packets, drop root

Exit status: 0 on success, 2 when an input cannot be read or an argument is wrong.";
