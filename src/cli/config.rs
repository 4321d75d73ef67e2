//! From raw arguments to the validated configuration the run uses: input list, analysis settings, output
//! settings. Every usage error is found here, before any file is opened.

use super::CliError;
use super::args::{Args, ColorArg, FormatArg, TimeArg};
use crate::analyzer::Settings;
use crate::report::{Format, Selection, TimeMode};
use crate::ts::Dur;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

/// What the run does.
#[derive(Debug)]
pub enum Mode {
    /// Read capture files (or standard input).
    Files(Vec<PathBuf>),
    /// Capture from an interface.
    Live(LiveConfig),
    /// `-D`: list interfaces.
    ListInterfaces,
}

#[derive(Debug)]
pub struct LiveConfig {
    pub options: crate::source::live::LiveOptions,
    pub duration: Option<std::time::Duration>,
    pub user: Option<String>,
}

#[derive(Debug)]
pub struct Config {
    pub mode: Mode,
    pub settings: Settings,
    pub format: Format,
    pub frames: bool,
    pub timeline: bool,
    pub time: TimeMode,
    pub selection: Selection,
    pub color: bool,
    pub progress: bool,
    /// Bytes of rendered report kept in memory before spilling to a temporary file.
    pub report_memory: usize,
    /// Threads of an offline run (at least 1; 3 and more: packets, report and read-ahead).
    pub threads: usize,
}

fn secs(name: &str, v: f64) -> Result<Dur, CliError> {
    if !(v.is_finite() && (0.0..=365.0 * 86_400.0).contains(&v)) {
        return Err(CliError::Usage(format!(
            "--{name} takes a number of seconds from 0 to 31536000, not {v}"
        )));
    }
    Ok(Dur::from_secs_f64(v))
}

impl Config {
    pub fn from_args(a: Args) -> Result<Config, CliError> {
        let mut inputs: Vec<OsString> = a.read;
        inputs.extend(a.files);
        let mode = if a.list_interfaces {
            Mode::ListInterfaces
        } else if let Some(iface) = a.interface.clone() {
            let words: Vec<String> = inputs
                .iter()
                .map(|w| {
                    w.to_str()
                        .map(str::to_string)
                        .ok_or_else(|| CliError::Usage("capture filter words must be UTF-8".into()))
                })
                .collect::<Result<_, _>>()?;
            let filter = match (&a.filter, words.is_empty()) {
                (Some(_), false) => {
                    return Err(CliError::Usage(
                        "give the capture filter either with -f or as trailing words, not both".into(),
                    ));
                }
                (Some(f), true) => Some(f.clone()),
                (None, false) => Some(words.join(" ")),
                (None, true) => None,
            };
            if a.snaplen <= 0 {
                return Err(CliError::Usage(format!(
                    "-s {}: the snapshot length must be positive",
                    a.snaplen
                )));
            }
            if a.buffer_mb <= 0 || a.buffer_mb > 4096 {
                return Err(CliError::Usage(format!(
                    "-B {}: the buffer size is 1 to 4096 MiB",
                    a.buffer_mb
                )));
            }
            let duration = match a.duration {
                Some(d) => Some(std::time::Duration::from_nanos(
                    u64::try_from(secs("duration", d)?.nanos()).unwrap_or(0),
                )),
                None => None,
            };
            Mode::Live(LiveConfig {
                options: crate::source::live::LiveOptions {
                    interface: iface,
                    filter,
                    snaplen: a.snaplen,
                    buffer_mb: a.buffer_mb,
                    immediate: a.immediate,
                    write: a.write.clone(),
                    count: a.count,
                },
                duration,
                user: a.user.clone(),
            })
        } else {
            if inputs.is_empty() {
                return Err(CliError::Usage(
                    "no capture given: name a pcap/pcapng file, `-` to read standard input, or -i IFACE to capture live (see --help)".into(),
                ));
            }
            if inputs.iter().filter(|i| *i == "-").count() > 1 {
                return Err(CliError::Usage("standard input (`-`) can be read only once".into()));
            }
            for (flag, given) in [
                ("-w", a.write.is_some()),
                ("-Z", a.user.is_some()),
                ("-c", a.count.is_some()),
                ("--duration", a.duration.is_some()),
                ("-f", a.filter.is_some()),
            ] {
                if given {
                    return Err(CliError::Usage(format!("{flag} applies to live capture (-i IFACE)")));
                }
            }
            Mode::Files(inputs.into_iter().map(PathBuf::from).collect())
        };
        let mut hosts = Vec::new();
        for h in &a.host {
            let t = h.trim_start_matches('[').trim_end_matches(']');
            hosts.push(
                t.parse()
                    .map_err(|_| CliError::Usage(format!("--host {h}: not an IPv4 or IPv6 address")))?,
            );
        }
        if a.max_connections == 0 {
            return Err(CliError::Usage("--max-connections must be at least 1".into()));
        }
        let threads = match a.threads {
            Some(0) => return Err(CliError::Usage("--threads must be at least 1".into())),
            Some(n) => n,
            // Two cores are enough for all three: the reading thread mostly waits for the kernel's copy.
            None if std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2) => 3,
            None => 1,
        };
        let mut settings = Settings::default();
        settings.tcp.max_connections = a.max_connections;
        settings.tcp.linger = secs("linger", a.linger)?;
        settings.tcp.idle_gap = secs("idle-gap", a.idle_gap)?;
        settings.h2.keep_frames = a.frames;
        settings.tcp.idle_evict = match (a.idle_timeout, &mode) {
            (Some(t), _) => Some(secs("idle-timeout", t)?),
            (None, Mode::Live(_)) => Some(Dur::from_secs(7200)),
            (None, _) => None,
        };
        let stdout_tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match a.color {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => stdout_tty && !no_color,
        };
        Ok(Config {
            mode,
            settings,
            format: match a.format {
                FormatArg::Table => Format::Table,
                FormatArg::Json => Format::Json,
                FormatArg::Ndjson => Format::Ndjson,
                FormatArg::Markdown => Format::Markdown,
                FormatArg::Html => Format::Html,
            },
            frames: a.frames,
            timeline: a.timeline,
            time: match a.time {
                TimeArg::Utc => TimeMode::Utc,
                TimeArg::Local => TimeMode::Local,
                TimeArg::Relative => TimeMode::Relative,
            },
            selection: Selection {
                ports: a.port,
                hosts,
                conns: a.conn,
                problems_only: a.problems,
            },
            color,
            progress: !a.quiet && std::io::stderr().is_terminal(),
            report_memory: a.report_memory.saturating_mul(1024 * 1024),
            threads,
        })
    }
}
