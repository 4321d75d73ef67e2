//! Time display: absolute UTC (default), local time, or seconds relative to the capture's first packet.
//! JSON always carries RFC 3339 UTC (machine-readable and stable); `--time` shapes the human formats.

use crate::ts::Ts;
use chrono::{DateTime, Local, SecondsFormat, Utc};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeMode {
    #[default]
    Utc,
    Local,
    Relative,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct TimeFmt {
    pub mode: TimeMode,
    /// The capture's first packet (the origin of relative times).
    pub origin: Ts,
}

/// RFC 3339 in UTC with as many sub-second digits as needed (0, 3, 6 or 9).
///
/// A report prints this for every event, and a connection's events fall within a few seconds: the date and
/// time of day are made by chrono once per second (kept per thread), the fraction here, the way chrono's
/// `SecondsFormat::AutoSi` writes it.
pub fn rfc3339(ts: Ts) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let (s, n) = ts.split();
    LAST.with_borrow_mut(|(secs, prefix)| {
        if *secs != s || prefix.is_empty() {
            let Some(t) = DateTime::<Utc>::from_timestamp(s, 0) else {
                return format!("{}.{:09}", s, n);
            };
            *prefix = t.to_rfc3339_opts(SecondsFormat::Secs, true);
            prefix.pop(); // the `Z`
            *secs = s;
        }
        let (value, digits) = if n == 0 {
            (0, 0)
        } else if n % 1_000_000 == 0 {
            (n / 1_000_000, 3)
        } else if n % 1_000 == 0 {
            (n / 1_000, 6)
        } else {
            (n, 9)
        };
        let mut out = String::with_capacity(prefix.len() + 11);
        out.push_str(prefix);
        if digits > 0 {
            out.push('.');
            let mut buf = [b'0'; 9];
            let mut v = value;
            for d in buf.iter_mut().take(digits).rev() {
                *d = b'0' + (v % 10) as u8;
                v /= 10;
            }
            for &d in buf.iter().take(digits) {
                out.push(char::from(d));
            }
        }
        out.push('Z');
        out
    })
}

impl TimeFmt {
    /// A full timestamp for people: `2026-11-22 10:03:04.123456 UTC`, local with offset, or `+12.345678 s`.
    pub fn full(&self, ts: Ts) -> String {
        let (s, n) = ts.split();
        match self.mode {
            TimeMode::Relative => relative(ts, self.origin),
            TimeMode::Utc => match DateTime::<Utc>::from_timestamp(s, n) {
                Some(t) => t.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string(),
                None => rfc3339(ts),
            },
            TimeMode::Local => match DateTime::<Utc>::from_timestamp(s, n) {
                Some(t) => t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S%.6f %:z").to_string(),
                None => rfc3339(ts),
            },
        }
    }

    /// A compact time of day for timelines and tables (`10:03:04.123456`), or relative seconds.
    pub fn short(&self, ts: Ts) -> String {
        let (s, n) = ts.split();
        match self.mode {
            TimeMode::Relative => relative(ts, self.origin),
            TimeMode::Utc => match DateTime::<Utc>::from_timestamp(s, n) {
                Some(t) => t.format("%H:%M:%S%.6f").to_string(),
                None => rfc3339(ts),
            },
            TimeMode::Local => match DateTime::<Utc>::from_timestamp(s, n) {
                Some(t) => t.with_timezone(&Local).format("%H:%M:%S%.6f").to_string(),
                None => rfc3339(ts),
            },
        }
    }

    /// The zone the short form is in, for a table caption.
    pub fn zone(&self) -> &'static str {
        match self.mode {
            TimeMode::Utc => "UTC",
            TimeMode::Local => "local time",
            TimeMode::Relative => "seconds since the first packet",
        }
    }
}

fn relative(ts: Ts, origin: Ts) -> String {
    let d = ts.since(origin).nanos();
    let sign = if d < 0 { "-" } else { "+" };
    let a = d.unsigned_abs();
    format!("{sign}{}.{:06}", a / 1_000_000_000, (a % 1_000_000_000) / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let ts = Ts::from_secs_nanos(1_700_000_000, 123_456_000);
        assert_eq!(rfc3339(ts), "2023-11-14T22:13:20.123456Z");
        assert_eq!(rfc3339(Ts::from_secs_nanos(1_700_000_000, 0)), "2023-11-14T22:13:20Z");
        let f = TimeFmt {
            mode: TimeMode::Utc,
            origin: ts,
        };
        assert_eq!(f.full(ts), "2023-11-14 22:13:20.123456 UTC");
        assert_eq!(f.short(ts), "22:13:20.123456");
        let r = TimeFmt {
            mode: TimeMode::Relative,
            origin: Ts::from_secs_nanos(1_700_000_000, 0),
        };
        assert_eq!(r.short(ts), "+0.123456");
        // Far outside chrono's range: still printable.
        assert!(!rfc3339(Ts::MAX).is_empty());
    }

    #[test]
    fn rfc3339_is_chronos_autosi() {
        let chrono = |ts: Ts| {
            let (s, n) = ts.split();
            DateTime::<Utc>::from_timestamp(s, n).map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut cases = vec![
            0,
            1,
            -1,
            999_999_999,
            1_000_000_000,
            -1_000_000_000,
            i64::MAX,
            i64::MIN + 1,
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let base = 1_700_000_000_000_000_000 + (x % 4_000_000_000_000) as i64;
            // Whole seconds, milliseconds, microseconds and nanoseconds, and the same second again.
            cases.push(base - base % [1_000_000_000, 1_000_000, 1_000, 1][(x >> 60) as usize % 4]);
            cases.push(x as i64);
        }
        for n in cases {
            let ts = Ts::from_nanos(n);
            if let Some(want) = chrono(ts) {
                assert_eq!(rfc3339(ts), want, "{n}");
            }
        }
    }
}
