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

#[derive(Debug)]
pub struct Config {
    pub inputs: Vec<PathBuf>,
    pub settings: Settings,
    pub format: Format,
    pub frames: bool,
    pub timeline: bool,
    pub time: TimeMode,
    pub selection: Selection,
    pub color: bool,
    pub progress: bool,
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
        if inputs.is_empty() {
            return Err(CliError::Usage(
                "no capture given: name a pcap/pcapng file, or `-` to read standard input (see --help)".into(),
            ));
        }
        if inputs.iter().filter(|i| *i == "-").count() > 1 {
            return Err(CliError::Usage("standard input (`-`) can be read only once".into()));
        }
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
        let mut settings = Settings::default();
        settings.tcp.max_connections = a.max_connections;
        settings.tcp.linger = secs("linger", a.linger)?;
        settings.tcp.idle_gap = secs("idle-gap", a.idle_gap)?;
        settings.h2.keep_frames = a.frames;
        let stdout_tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match a.color {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => stdout_tty && !no_color,
        };
        Ok(Config {
            inputs: inputs.into_iter().map(PathBuf::from).collect(),
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
        })
    }
}
