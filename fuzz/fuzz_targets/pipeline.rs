//! The whole pipeline on one capture: the input is written as a capture file, read with `source::open`, run
//! through `analyzer::Analyzer` (decode → TCP → HTTP/2 → timeline → diagnosis), and the report rendered in every
//! format, as `whoclosed FILE` would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whoclosed::analyzer::{Analyzer, Settings};
use whoclosed::report::{self, Format, RenderOpts};
use whoclosed::source;

fuzz_target!(|data: &[u8]| {
    let path = whoclosed_fuzz::write_scratch("pipeline", data);
    let Ok(mut src) = source::open(&[&path]) else {
        return;
    };
    let mut settings = Settings::default();
    // Small limits so that eviction and caps are reached by small inputs; frames kept on some inputs.
    settings.tcp.max_connections = 8;
    settings.tcp.reassembly_cap = 16 * 1024;
    settings.h2.keep_frames = data.len() % 2 == 0;
    let mut a = Analyzer::new(settings);
    let mut done = Vec::new();
    let mut n = 0u64;
    while let Some(p) = src.next_packet() {
        a.packet(&p);
        n += 1;
        for (_, f) in a.take_frames() {
            let _ = serde_json::to_string(&f);
        }
        if n % 16 == 0 {
            done.extend(a.take_finished());
        }
    }
    done.extend(a.finish());
    let warnings: Vec<String> = src.take_warnings().into_iter().map(|w| w.to_string()).collect();
    let conns = done.iter().map(|f| report::conn_report(f, false)).collect();
    let mut rep = report::Report {
        capture: whoclosed::cli::run::capture_out(&a, src.files(), warnings),
        summary: Default::default(),
        connections: conns,
    };
    rep.summarize();
    for (format, timeline) in [
        (Format::Json, true),
        (Format::Ndjson, false),
        (Format::Table, true),
        (Format::Markdown, true),
        (Format::Html, true),
    ] {
        let opts = RenderOpts {
            timeline,
            color: timeline,
            width: if format == Format::Table { Some(60) } else { None },
            ..RenderOpts::default()
        };
        let mut out = Vec::new();
        report::renderer(format)
            .render(&rep, &opts, &mut out)
            .expect("rendering to memory");
        if format == Format::Json {
            let v: Result<serde_json::Value, _> = serde_json::from_slice(&out);
            assert!(v.is_ok(), "JSON output does not parse");
        }
    }
});
