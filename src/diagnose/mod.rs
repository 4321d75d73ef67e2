//! The diagnosis: one table of rules, tried in order, the first that matches decides the verdict.
//!
//! Each rule reads the facts of the stages before it (the TCP record, the HTTP/2 record, the timeline) and
//! returns who closed the connection, why, how sure we are, one sentence for people, and the evidence: the
//! capture frames that prove it. `docs/diagnosis.md` is this table in prose, rule for rule, in the same order;
//! a test keeps the two in step.
//!
//! `closed_by` is the party whose *decision* ended the connection, not the sender of the first FIN or RST: a
//! client that FINs right after the server's GOAWAY was closed by the server.

mod h2_rules;
pub mod middlebox;
mod tcp_rules;
mod util;

pub use util::grpc_status_name;

use crate::http2::H2Record;
use crate::source::PacketRef;
use crate::tcp::TcpRecord;
use crate::timeline::Timeline;
use crate::ts::Ts;
use std::fmt;

/// Who ended the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    Client,
    Server,
    /// Something between the two: a firewall, NAT or load balancer.
    Middlebox,
    /// Nobody (yet): still open when the capture ended.
    None,
    Unknown,
}

impl ClosedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedBy::Client => "client",
            ClosedBy::Server => "server",
            ClosedBy::Middlebox => "middlebox",
            ClosedBy::None => "none",
            ClosedBy::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ClosedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the connection ended. The names are the stable `cause` strings of the JSON output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    ConnectionRefused,
    SynTimeout,
    GracefulClientClose,
    GracefulServerClose,
    PeerReset,
    RetransmitExhaustion,
    KeepaliveTimeout,
    TooManyPings,
    H2PingTimeout,
    ServerGoawayMaxAge,
    GoawayError,
    FirewallIdleTimeout,
    MiddleboxReset,
    StillOpen,
    Unknown,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::ConnectionRefused => "connection_refused",
            Cause::SynTimeout => "syn_timeout",
            Cause::GracefulClientClose => "graceful_client_close",
            Cause::GracefulServerClose => "graceful_server_close",
            Cause::PeerReset => "peer_reset",
            Cause::RetransmitExhaustion => "retransmit_exhaustion",
            Cause::KeepaliveTimeout => "keepalive_timeout",
            Cause::TooManyPings => "too_many_pings",
            Cause::H2PingTimeout => "h2_ping_timeout",
            Cause::ServerGoawayMaxAge => "server_goaway_max_age",
            Cause::GoawayError => "goaway_error",
            Cause::FirewallIdleTimeout => "firewall_idle_timeout",
            Cause::MiddleboxReset => "middlebox_reset",
            Cause::StillOpen => "still_open",
            Cause::Unknown => "unknown",
        }
    }

    /// Whether this is a normal ending (not listed by `--problems`, no paragraph under the table).
    pub fn is_normal(self) -> bool {
        matches!(
            self,
            Cause::GracefulClientClose | Cause::GracefulServerClose | Cause::StillOpen
        )
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

/// A fact the verdict rests on, tied to a capture frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub at: PacketRef,
    pub ts: Ts,
    pub text: String,
}

/// The answer for one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub closed_by: ClosedBy,
    pub cause: Cause,
    pub confidence: Confidence,
    /// One sentence.
    pub explanation: String,
    /// A few words for the table's reason column ("3 keepalive probes unanswered, then RST").
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// What to change, when there is something to change.
    pub advice: Vec<String>,
    /// Contributing factors (overload signs …) named beside the cause.
    pub factors: Vec<String>,
    /// The rule that decided (its id in docs/diagnosis.md).
    pub rule: &'static str,
    /// The silence that preceded the failure, when the verdict is about an idle timeout (for clustering).
    pub idle: Option<crate::ts::Dur>,
    /// The longest silence after which the connection still carried traffic both ways (a lower bound for any
    /// middlebox idle timeout on its path).
    pub survived_idle: Option<crate::ts::Dur>,
    /// Where the capture was taken, as far as this connection tells.
    pub vantage: Option<middlebox::Vantage>,
}

/// What a rule reads.
pub struct Input<'a> {
    pub tcp: &'a TcpRecord,
    pub h2: Option<&'a H2Record>,
    pub timeline: &'a Timeline,
}

/// What the rules read: the input and what the table works out once for all rules.
pub struct Ctx<'a> {
    pub tcp: &'a TcpRecord,
    pub h2: Option<&'a H2Record>,
    pub timeline: &'a Timeline,
    /// Where the capture was taken, as this connection shows it.
    pub vantage: middlebox::Vantage,
}

/// One row of the table.
pub struct Rule {
    pub id: &'static str,
    pub check: fn(&Ctx<'_>) -> Option<Verdict>,
}

const fn rule(id: &'static str, check: fn(&Ctx<'_>) -> Option<Verdict>) -> Rule {
    Rule { id, check }
}

/// The table, in the order the rules are tried. Keep docs/diagnosis.md in the same order.
pub const RULES: &[Rule] = &[
    rule("too_many_pings", h2_rules::too_many_pings),
    rule("h2_ping_timeout", h2_rules::h2_ping_timeout),
    rule("server_goaway_max_age", h2_rules::server_goaway_max_age),
    rule("goaway", h2_rules::goaway),
    rule("connection_refused", tcp_rules::connection_refused),
    rule("syn_timeout", tcp_rules::syn_timeout),
    rule("firewall_idle_timeout", middlebox::firewall_idle_timeout),
    rule("middlebox_reset", middlebox::middlebox_reset),
    rule("keepalive_timeout", tcp_rules::keepalive_timeout),
    rule("retransmit_exhaustion", tcp_rules::retransmit_exhaustion),
    rule("graceful_close", tcp_rules::graceful_close),
    rule("peer_reset", tcp_rules::peer_reset),
    rule("still_open", tcp_rules::still_open),
    rule("unknown", tcp_rules::unknown),
];

/// Runs the table on one connection.
/// A connection let go of before its end (a limit was hit) says so, whatever rule explained it: otherwise a
/// SYN flood's evicted connection read "still retrying when the capture ended".
fn early_note(reason: crate::tcp::EndReason, explanation: &mut String) {
    let note = match reason {
        crate::tcp::EndReason::TableFull => {
            " Reported early: the connection table was full (--max-connections), so this least recently active \
             connection was let go; later packets of its 4-tuple count as a new connection."
        }
        crate::tcp::EndReason::IdleEvicted => {
            " Reported early: idle past the eviction time (--idle-timeout); later packets of its 4-tuple count as a \
             new connection."
        }
        _ => return,
    };
    if !explanation.contains("reported early") {
        explanation.push_str(note);
    }
}

pub fn diagnose(input: &Input<'_>) -> Verdict {
    let ctx = Ctx {
        tcp: input.tcp,
        h2: input.h2,
        timeline: input.timeline,
        vantage: middlebox::vantage(input.tcp),
    };
    for rule in RULES {
        if let Some(mut v) = (rule.check)(&ctx) {
            v.rule = rule.id;
            v.factors = h2_rules::factors(&ctx);
            v.survived_idle = middlebox::survived_idle(input.tcp);
            v.vantage = Some(ctx.vantage.clone());
            early_note(input.tcp.end_reason, &mut v.explanation);
            return v;
        }
    }
    // `unknown` always matches; this is only reached if the table was emptied.
    Verdict {
        closed_by: ClosedBy::Unknown,
        cause: Cause::Unknown,
        confidence: Confidence::Low,
        explanation: "No rule matched.".into(),
        summary: "no rule matched".into(),
        evidence: Vec::new(),
        advice: Vec::new(),
        factors: Vec::new(),
        rule: "none",
        idle: None,
        survived_idle: None,
        vantage: None,
    }
}
