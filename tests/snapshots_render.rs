//! Snapshot tests of every renderer on real fixture captures: the table, JSON, NDJSON, Markdown and HTML output
//! is pinned byte for byte (`cargo insta review` after an intended change).

use std::path::Path;
use whoclosed::analyzer::{Analyzer, Settings};
use whoclosed::report::{self, Format, RenderOpts, TimeFmt, TimeMode};

fn report_of(rel: &str) -> report::Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/captures")
        .join(rel);
    let mut src = whoclosed::source::open(&[&path]).expect("fixture opens");
    let mut a = Analyzer::new(Settings::default());
    let mut done = Vec::new();
    while let Some(p) = src.next_packet() {
        a.packet(&p);
        done.extend(a.take_finished());
    }
    done.extend(a.finish());
    done.sort_by_key(|f| f.tcp.id);
    let stats = a.packet_stats().clone();
    let mut files = src.files();
    for f in &mut files {
        // Snapshots must not depend on where the checkout lives.
        f.path = rel.to_string();
    }
    let mut rep = report::Report {
        capture: report::CaptureOut {
            files,
            packets: stats.packets,
            bytes: stats.bytes,
            tcp_segments: a.tcp_stats().segments,
            connections: a.tcp_stats().connections,
            start: stats.first.map(report::rfc3339),
            end: stats.last.map(report::rfc3339),
            duration_s: match (stats.first, stats.last) {
                (Some(x), Some(y)) => y.since(x).as_secs_f64(),
                _ => 0.0,
            },
            decode: a.decode_stats().clone(),
            tcp: a.tcp_stats().clone(),
            start_ts: stats.first,
            ..Default::default()
        },
        summary: Default::default(),
        connections: done.iter().map(|f| report::conn_report(f, false)).collect(),
    };
    rep.summarize();
    rep
}

fn render(rep: &report::Report, format: Format, timeline: bool) -> String {
    let opts = RenderOpts {
        time: TimeFmt {
            mode: TimeMode::Utc,
            origin: rep.capture.start_ts.unwrap_or_default(),
        },
        timeline,
        color: false,
        width: None,
    };
    let mut out = Vec::new();
    report::renderer(format).render(rep, &opts, &mut out).expect("render");
    String::from_utf8(out).expect("utf-8")
}

const CASES: &[(&str, &str)] = &[
    ("keepalive", "tcp/keepalive_timeout-v4-client-eth.pcap"),
    ("refused", "tcp/connection_refused-v6-client-any.pcap"),
    (
        "firewall_reset",
        "middlebox/firewall_idle_timeout-reset-v4-client-eth.pcap",
    ),
];

#[test]
fn table() {
    for (name, rel) in CASES {
        insta::assert_snapshot!(format!("table_{name}"), render(&report_of(rel), Format::Table, true));
    }
}

#[test]
fn json() {
    for (name, rel) in CASES {
        insta::assert_snapshot!(format!("json_{name}"), render(&report_of(rel), Format::Json, false));
    }
}

#[test]
fn ndjson() {
    let (name, rel) = CASES[0];
    insta::assert_snapshot!(format!("ndjson_{name}"), render(&report_of(rel), Format::Ndjson, false));
}

#[test]
fn markdown() {
    for (name, rel) in CASES {
        insta::assert_snapshot!(
            format!("markdown_{name}"),
            render(&report_of(rel), Format::Markdown, true)
        );
    }
}

#[test]
fn html() {
    let (name, rel) = CASES[0];
    insta::assert_snapshot!(format!("html_{name}"), render(&report_of(rel), Format::Html, true));
}
