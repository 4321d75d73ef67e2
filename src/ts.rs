//! Packet time.
//!
//! Every decision whoclosed makes is taken in *packet time*: the timestamps the capture carries, never the wall
//! clock, so that a file analysed today gives the verdict a live run gave during the incident. Timestamps are
//! nanoseconds since the Unix epoch in an `i64` (good until 2262); conversions from the wire saturate instead of
//! overflowing, because captures carry arbitrary numbers (pcapng files with timestamps in 2106 exist).

use std::fmt;

/// An instant: nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(i64);

/// A signed span of packet time in nanoseconds (negative when a capture's clock steps back).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(i64);

impl Ts {
    pub const ZERO: Ts = Ts(0);
    pub const MAX: Ts = Ts(i64::MAX);

    pub const fn from_nanos(nanos: i64) -> Ts {
        Ts(nanos)
    }

    /// Seconds and a sub-second part in nanoseconds, saturating at the ends of the range.
    pub fn from_secs_nanos(secs: u64, nanos: u64) -> Ts {
        let s = i64::try_from(secs).unwrap_or(i64::MAX);
        let n = i64::try_from(nanos).unwrap_or(i64::MAX);
        Ts(s.saturating_mul(1_000_000_000).saturating_add(n))
    }

    /// A count of `units` ticks of `1/per_second` seconds (pcapng `if_tsresol`), saturating.
    pub fn from_ticks(ticks: u64, per_second: u64) -> Ts {
        if per_second == 0 {
            return Ts(0);
        }
        let secs = ticks / per_second;
        let rem = u128::from(ticks % per_second);
        let frac = rem * 1_000_000_000 / u128::from(per_second);
        Ts::from_secs_nanos(secs, u64::try_from(frac).unwrap_or(u64::MAX))
    }

    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// `self - earlier`, saturating.
    pub fn since(self, earlier: Ts) -> Dur {
        Dur(self.0.saturating_sub(earlier.0))
    }

    pub fn plus(self, d: Dur) -> Ts {
        Ts(self.0.saturating_add(d.0))
    }

    /// Whole seconds and nanoseconds, for calendar formatting.
    pub fn split(self) -> (i64, u32) {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        (secs, u32::try_from(nanos).unwrap_or(0))
    }
}

impl Dur {
    pub const ZERO: Dur = Dur(0);

    pub const fn from_nanos(n: i64) -> Dur {
        Dur(n)
    }
    pub const fn from_micros(us: i64) -> Dur {
        Dur(us.saturating_mul(1_000))
    }
    pub const fn from_millis(ms: i64) -> Dur {
        Dur(ms.saturating_mul(1_000_000))
    }
    pub const fn from_secs(s: i64) -> Dur {
        Dur(s.saturating_mul(1_000_000_000))
    }
    pub fn from_secs_f64(s: f64) -> Dur {
        let n = s * 1e9;
        if n.is_nan() {
            Dur(0)
        } else {
            // `as` saturates for floats out of range.
            Dur(n as i64)
        }
    }
    pub const fn nanos(self) -> i64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    pub fn abs(self) -> Dur {
        Dur(self.0.saturating_abs())
    }
    pub fn saturating_mul(self, k: i64) -> Dur {
        Dur(self.0.saturating_mul(k))
    }
    pub fn saturating_add(self, o: Dur) -> Dur {
        Dur(self.0.saturating_add(o.0))
    }
}

/// Human form: `850 µs`, `12.3 ms`, `4.20 s`, `5 min 50 s`, `2 h 3 min`.
impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let sign = if n < 0 { "-" } else { "" };
        let a = n.unsigned_abs();
        if a < 1_000 {
            write!(f, "{sign}{a} ns")
        } else if a < 1_000_000 {
            write!(f, "{sign}{} µs", a / 1_000)
        } else if a < 1_000_000_000 {
            let ms = a as f64 / 1e6;
            if ms < 100.0 {
                write!(f, "{sign}{ms:.1} ms")
            } else {
                write!(f, "{sign}{ms:.0} ms")
            }
        } else if a < 60_000_000_000 {
            let s = a as f64 / 1e9;
            if s < 10.0 {
                write!(f, "{sign}{s:.2} s")
            } else {
                write!(f, "{sign}{s:.1} s")
            }
        } else if a < 3_600_000_000_000 {
            let s = a / 1_000_000_000;
            if s % 60 == 0 {
                write!(f, "{sign}{} min", s / 60)
            } else {
                write!(f, "{sign}{} min {} s", s / 60, s % 60)
            }
        } else {
            let m = a / 60_000_000_000;
            if m % 60 == 0 {
                write!(f, "{sign}{} h", m / 60)
            } else {
                write!(f, "{sign}{} h {} min", m / 60, m % 60)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_overflowing() {
        assert_eq!(Ts::from_secs_nanos(u64::MAX, 5).nanos(), i64::MAX);
        assert_eq!(Ts::MAX.plus(Dur::from_secs(1)), Ts::MAX);
        assert_eq!(Ts::from_nanos(i64::MIN).since(Ts::MAX).nanos(), i64::MIN);
        assert_eq!(Ts::from_ticks(u64::MAX, 1).nanos(), i64::MAX);
        assert_eq!(Ts::from_ticks(5, 0), Ts::ZERO);
    }

    #[test]
    fn ticks_convert_exactly() {
        assert_eq!(Ts::from_ticks(1_500_000, 1_000_000).nanos(), 1_500_000_000);
        assert_eq!(Ts::from_ticks(3, 1024).nanos(), 2_929_687);
    }

    #[test]
    fn durations_print_for_humans() {
        assert_eq!(Dur::from_micros(850).to_string(), "850 µs");
        assert_eq!(Dur::from_micros(12_345).to_string(), "12.3 ms");
        assert_eq!(Dur::from_millis(4_200).to_string(), "4.20 s");
        assert_eq!(Dur::from_secs(350).to_string(), "5 min 50 s");
        assert_eq!(Dur::from_secs(7_380).to_string(), "2 h 3 min");
        assert_eq!(Dur::from_secs(300).to_string(), "5 min");
        assert_eq!(Dur::from_secs(7_200).to_string(), "2 h");
    }
}
