//! whoclosed: reads packet captures and explains, for every TCP connection, who closed it and why.
//!
//! The pipeline, one module per stage; data flows one way and a later stage never reaches back:
//!
//! ```text
//! source → decode → tcp → http2 → timeline → diagnose → report
//! ```
//!
//! `analyzer` drives the stages over a packet source; `cli` turns arguments into a validated configuration and
//! maps every error to an exit code in one place.
#![forbid(unsafe_code)]

pub mod analyzer;
pub mod cli;
pub mod decode;
pub mod diagnose;
pub mod http2;
pub mod report;
pub mod source;
pub mod tcp;
pub mod timeline;
pub mod ts;
pub mod vantage;
