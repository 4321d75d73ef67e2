//! The incident summary: what the connections say together.
//!
//! One connection cut after a long silence is a suspicion; twelve cut after the same silence is a middlebox with
//! an idle timeout. Silences that *killed* a connection give an upper bound for that timeout, silences a
//! connection *survived* a lower bound; the bounds are compared with a table of well-known defaults
//! (docs/idle-timeouts.md, with sources) to name the likely culprits.

use super::ConnReport;
use crate::diagnose::middlebox::Place;
use crate::diagnose::{Cause, ClosedBy};
use crate::ts::Dur;
use serde::Serialize;

/// A documented default idle timeout of a middlebox or proxy.
pub struct Known {
    pub name: &'static str,
    pub seconds: f64,
}

/// Keep in step with docs/idle-timeouts.md (which gives the sources).
pub const KNOWN_IDLE_TIMEOUTS: &[Known] = &[
    Known {
        name: "AWS NAT gateway (350 s)",
        seconds: 350.0,
    },
    Known {
        name: "AWS Network Load Balancer, TCP listener default (350 s)",
        seconds: 350.0,
    },
    Known {
        name: "AWS Gateway Load Balancer default (350 s)",
        seconds: 350.0,
    },
    Known {
        name: "AWS Network Firewall default (350 s)",
        seconds: 350.0,
    },
    Known {
        name: "AWS Application / Classic Load Balancer default (60 s)",
        seconds: 60.0,
    },
    Known {
        name: "nginx proxy_read_timeout / upstream keepalive_timeout default (60 s)",
        seconds: 60.0,
    },
    Known {
        name: "nginx keepalive_timeout default (75 s)",
        seconds: 75.0,
    },
    Known {
        name: "Azure Load Balancer / NAT Gateway default (4 min)",
        seconds: 240.0,
    },
    Known {
        name: "Google Cloud NAT TCP established default (20 min)",
        seconds: 1200.0,
    },
    Known {
        name: "Envoy idle_timeout default (1 h)",
        seconds: 3600.0,
    },
    Known {
        name: "kube-proxy conntrack tcp-timeout-established (24 h)",
        seconds: 86_400.0,
    },
    Known {
        name: "Linux conntrack nf_conntrack_tcp_timeout_established default (5 days)",
        seconds: 432_000.0,
    },
];

/// Connections cut after about the same silence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IdleCluster {
    pub connections: Vec<u64>,
    /// Median silence before the failure, and the largest distance from it.
    pub idle_s: f64,
    pub spread_s: f64,
    /// The middlebox's timeout lies above this (the longest silence any connection survived), when known…
    pub timeout_above_s: Option<f64>,
    /// …and at or below this (the shortest silence that killed one of these connections).
    pub timeout_at_most_s: f64,
    /// Documented defaults that fit.
    pub culprits: Vec<String>,
    pub text: String,
}

/// Where the capture was taken, over all connections.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VantageOut {
    pub place: Place,
    pub text: String,
}

fn secs(d: f64) -> String {
    Dur::from_secs_f64(d).to_string()
}

/// A spread as "± 0.50 s" (nothing when it is below a millisecond).
fn spread_text(d: f64) -> String {
    if d < 0.001 {
        String::new()
    } else if d < 60.0 {
        format!(" ± {d:.2} s")
    } else {
        format!(" ± {}", secs(d))
    }
}

/// Summary inputs gathered one connection at a time (nothing per connection is kept but the few idle kills).
#[derive(Clone, Debug, Default)]
pub struct SummaryAcc {
    pub connections: u64,
    pub problems: u64,
    pub by_cause: std::collections::BTreeMap<String, u64>,
    pub by_closer: std::collections::BTreeMap<String, u64>,
    /// (idle seconds, connection id) of the middlebox idle kills.
    kills: Vec<(f64, u64)>,
    survived: Option<f64>,
    vantage: Vec<(Place, usize, Vec<String>)>,
}

/// One connection's share of the summary, taken from its report where the report was made (the summary may be
/// gathered on another thread; the report itself is dropped where it was made).
#[derive(Clone, Debug)]
pub struct SummaryItem {
    id: u64,
    cause: Cause,
    closed_by: ClosedBy,
    problem: bool,
    idle_s: Option<f64>,
    survived_idle_s: Option<f64>,
    /// Where the capture was taken (when known) and the host it names there.
    vantage: Option<(Place, Option<String>)>,
}

impl SummaryItem {
    pub fn of(c: &ConnReport) -> SummaryItem {
        let vantage = c.vantage.as_ref().filter(|v| v.place != Place::Unknown).map(|v| {
            let host = match v.place {
                Place::ClientHost => c.client.rsplit_once(':').map(|(h, _)| h.to_string()),
                Place::ServerHost => c.server.rsplit_once(':').map(|(h, _)| h.to_string()),
                _ => None,
            };
            (v.place, host)
        });
        SummaryItem {
            id: c.id,
            cause: c.cause,
            closed_by: c.closed_by,
            problem: c.is_problem(),
            idle_s: c.idle_s,
            survived_idle_s: c.survived_idle_s,
            vantage,
        }
    }
}

/// Idle kills kept for clustering; past this the summary says so.
const MAX_KILLS: usize = 100_000;
const MAX_HOSTS: usize = 8;

impl SummaryAcc {
    pub fn add(&mut self, c: &ConnReport) {
        self.add_item(SummaryItem::of(c));
    }

    /// [`SummaryAcc::add`] from what was taken of the report where it was made.
    pub fn add_item(&mut self, c: SummaryItem) {
        self.connections += 1;
        *self.by_cause.entry(c.cause.to_string()).or_default() += 1;
        *self.by_closer.entry(c.closed_by.to_string()).or_default() += 1;
        if c.problem {
            self.problems += 1;
        }
        if c.cause == Cause::FirewallIdleTimeout
            && let Some(i) = c.idle_s
            && self.kills.len() < MAX_KILLS
        {
            self.kills.push((i, c.id));
        }
        if let Some(s) = c.survived_idle_s {
            self.survived = Some(self.survived.map_or(s, |m: f64| m.max(s)));
        }
        if let Some((place, host)) = c.vantage {
            let e = match self.vantage.iter_mut().position(|e| e.0 == place) {
                Some(i) => &mut self.vantage[i],
                None => {
                    self.vantage.push((place, 0, Vec::new()));
                    let last = self.vantage.len() - 1;
                    &mut self.vantage[last]
                }
            };
            e.1 += 1;
            if let Some(h) = host
                && !e.2.contains(&h)
                && e.2.len() < MAX_HOSTS
            {
                e.2.push(h);
            }
        }
    }

    pub fn finish(&self) -> super::SummaryOut {
        let idle_clusters = idle_clusters(&self.kills, self.survived);
        super::SummaryOut {
            connections: self.connections,
            problems: self.problems,
            by_cause: self.by_cause.clone(),
            by_closer: self.by_closer.clone(),
            advice: advice(&idle_clusters),
            idle_clusters,
            vantage: vantage(&self.vantage),
        }
    }
}

/// Clusters the middlebox idle kills and bounds the timeout.
pub fn idle_clusters(kills: &[(f64, u64)], survived: Option<f64>) -> Vec<IdleCluster> {
    let mut kills = kills.to_vec();
    kills.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut groups: Vec<Vec<(f64, u64)>> = Vec::new();
    for k in kills {
        match groups.last_mut() {
            Some(g) if g.last().is_some_and(|&(prev, _)| k.0 - prev <= (prev * 0.03).max(1.0)) => g.push(k),
            _ => groups.push(vec![k]),
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let vals: Vec<f64> = g.iter().map(|k| k.0).collect();
            let median = vals.get(vals.len() / 2).copied().unwrap_or(0.0);
            let spread = vals.iter().map(|v| (v - median).abs()).fold(0.0, f64::max);
            let min = vals.first().copied().unwrap_or(median);
            let above = survived.filter(|s| *s < min);
            let tol = (min * 0.05).max(2.0);
            let culprits: Vec<String> = KNOWN_IDLE_TIMEOUTS
                .iter()
                .filter(|k| k.seconds <= min + tol && k.seconds >= min - tol && above.is_none_or(|a| k.seconds > a))
                .map(|k| k.name.to_string())
                .collect();
            let n = g.len();
            let mut text = format!(
                "{n} connection{} {} cut by a middlebox after {}{} idle",
                if n == 1 { "" } else { "s" },
                if n == 1 { "was" } else { "were" },
                secs(median),
                spread_text(spread)
            );
            match above {
                Some(a) => text.push_str(&format!(
                    "; its idle timeout lies between {} (the longest silence a connection survived) and {}",
                    secs(a),
                    secs(min)
                )),
                None => text.push_str(&format!("; its idle timeout is at most {}", secs(min))),
            }
            if culprits.is_empty() {
                text.push_str("; no documented default matches it, so look for a site-specific setting");
            } else {
                text.push_str(&format!("; likely: {}", culprits.join(", ")));
            }
            IdleCluster {
                connections: g.iter().map(|k| k.1).collect(),
                idle_s: median,
                spread_s: spread,
                timeout_above_s: above,
                timeout_at_most_s: min,
                culprits,
                text,
            }
        })
        .collect()
}

/// What to change, from the clusters.
pub fn advice(clusters: &[IdleCluster]) -> Vec<String> {
    let Some(shortest) = clusters.iter().map(|c| c.timeout_at_most_s).min_by(f64::total_cmp) else {
        return Vec::new();
    };
    let keep = (shortest * 0.5).max(1.0);
    vec![format!(
        "Keep idle connections alive below {}: gRPC keepalive with keepalive_time below that (e.g. {}; the server must permit it: grpc.http2.min_ping_interval_without_data_ms / keepalive EnforcementPolicy), or TCP keepalive idle (tcp_keepalive_time, TCP_KEEPIDLE) below it; or raise the middlebox's idle timeout. Note: AWS ALBs do not count HTTP/2 PINGs as activity.",
        secs(shortest),
        secs(keep)
    )]
}

/// The capture point over all connections, by majority.
fn vantage(counts: &[(Place, usize, Vec<String>)]) -> Option<VantageOut> {
    let mut counts = counts.to_vec();
    counts.sort_by_key(|e| std::cmp::Reverse(e.1));
    let (place, n, mut hosts) = counts.first()?.clone();
    hosts.sort();
    let total: usize = counts.iter().map(|e| e.1).sum();
    let hosts = if hosts.is_empty() {
        String::new()
    } else {
        format!(" ({})", hosts.join(", "))
    };
    let text = match place {
        Place::ClientHost => format!(
            "Captured on the client host{hosts}: {n} of {total} connections say so (their own packets carry an initial TTL, and SYN-ACK → ACK is immediate)."
        ),
        Place::ServerHost => format!(
            "Captured on the server host{hosts}: {n} of {total} connections say so (initial TTL on the server's packets, SYN → SYN-ACK immediate). A connection cut on the client's path shows here only as silence, so quiet connections deserve a look from the client side."
        ),
        Place::Between => {
            format!("Captured between the two ends: {n} of {total} connections show decremented TTLs both ways.")
        }
        Place::Unknown => return None,
    };
    Some(VantageOut { place, text })
}
