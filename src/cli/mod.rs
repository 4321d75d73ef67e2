//! The command line: arguments → validated configuration → run. Every error becomes an exit code here and
//! only here: 0 success, 2 for unreadable input or a wrong argument. A closed output pipe (`| head`) is a normal
//! way for a reader to stop, so it ends the program quietly with 0.

pub mod args;
pub mod config;
pub mod live;
mod privs;
pub mod run;

use crate::source::SourceError;
use std::fmt;

#[derive(Debug)]
pub enum CliError {
    /// A wrong argument.
    Usage(String),
    /// An input that cannot be read at all.
    Input(SourceError),
    /// Inputs were readable but nothing in them could be analysed.
    Nothing(String),
    /// Writing the output failed.
    Output(std::io::Error),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::Input(e) => write!(f, "{e}"),
            CliError::Nothing(m) => write!(f, "{m}"),
            CliError::Output(e) => write!(f, "writing the output: {e}"),
        }
    }
}

impl From<SourceError> for CliError {
    fn from(e: SourceError) -> Self {
        CliError::Input(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e)
    }
}

/// Runs whoclosed with these arguments; returns the exit code.
pub fn main_with(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    use clap::Parser;
    let parsed = match args::Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let result = config::Config::from_args(parsed).and_then(|cfg| match &cfg.mode {
        config::Mode::Files(inputs) => run::run(&cfg, inputs),
        config::Mode::Live(live) => live::run(&cfg, live),
        config::Mode::ListInterfaces => live::list(),
    });
    match result {
        Ok(()) => 0,
        Err(CliError::Output(e)) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("whoclosed: {e}");
            2
        }
    }
}

/// A write failed because the reader went away: the error itself, or one wrapped inside it (the JSON renderers
/// wrap serde_json's error, which wraps the `io::Error`, in `io::Error::other`).
fn is_broken_pipe(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return true;
    }
    let mut inner: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|i| i as _);
    while let Some(i) = inner {
        if let Some(j) = i.downcast_ref::<serde_json::Error>() {
            return j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe);
        }
        if let Some(io) = i.downcast_ref::<std::io::Error>() {
            return is_broken_pipe(io);
        }
        inner = i.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::is_broken_pipe;
    use std::io;

    #[test]
    fn regression_json_broken_pipe_exit_2() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&pipe()));
        let json = serde_json::Error::io(pipe());
        assert!(is_broken_pipe(&io::Error::other(json)));
        assert!(is_broken_pipe(&io::Error::other(pipe())));
        assert!(!is_broken_pipe(&io::Error::other(serde_json::Error::io(
            io::Error::from(io::ErrorKind::StorageFull)
        ))));
        assert!(!is_broken_pipe(&io::Error::other("disk on fire")));
    }
}
