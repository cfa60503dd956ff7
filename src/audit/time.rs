//! Times of the audit log: UTC calendar dates for the object keys, RFC 3339
//! for humans, and the `--since`/`--until` forms the CLI and API accept.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds in a second.
pub const NANOS: u64 = 1_000_000_000;

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day count since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC day of `ns` as `yyyy/mm/dd` (the audit log's folders).
pub fn day_path(ns: u64) -> String {
    let (y, m, d) = civil_from_days((ns / NANOS / 86_400) as i64);
    format!("{y:04}/{m:02}/{d:02}")
}

/// `ns` as RFC 3339 UTC with nanoseconds (`2026-11-28T01:02:03.000000004Z`).
pub fn rfc3339_ns(ns: u64) -> String {
    let secs = ns / NANOS;
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rest = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        ns % NANOS
    )
}

/// Parses a point in time, in nanoseconds since the Unix epoch: RFC 3339
/// (`2026-11-28T10:00:00Z`, an offset, fractions), a UTC date
/// (`2026-11-28`: its midnight), Unix seconds (`1796000000`), or an age
/// before `now_ns` (`30m`, `12h`, `7d`, `90s`).
pub fn parse_time(text: &str, now_ns: u64) -> Result<u64, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "`{text}` is not a time: give RFC 3339 (2026-11-28T10:00:00Z), a date (2026-11-28), Unix seconds, or an age (30m, 12h, 7d)"
        )
    };
    if text.is_empty() {
        return Err(bad());
    }
    if let Some(unit) = text.chars().last().filter(|c| "smhdw".contains(*c)) {
        if let Ok(n) = text[..text.len() - 1].parse::<u64>() {
            let secs = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => 7 * 86_400,
            };
            return Ok(now_ns.saturating_sub(n.saturating_mul(secs).saturating_mul(NANOS)));
        }
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text.parse().map_err(|_| bad())?;
        return Ok(secs.saturating_mul(NANOS));
    }
    parse_rfc3339(text).ok_or_else(bad)
}

fn number(text: &str) -> Option<u32> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn parse_rfc3339(text: &str) -> Option<u64> {
    let (date, time) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year = number(parts.next()?)?;
    let month = number(parts.next()?)?;
    let day = number(parts.next()?)?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let mut secs = days.checked_mul(86_400)?;
    let mut nanos = 0u64;
    if let Some(time) = time {
        let (clock, offset) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
            (clock, 0i64)
        } else {
            let i = time.rfind(['+', '-'])?;
            let (h, m) = time[i + 1..].split_once(':')?;
            let minutes = i64::from(number(h)?) * 60 + i64::from(number(m)?);
            (
                &time[..i],
                if &time[i..=i] == "+" {
                    minutes
                } else {
                    -minutes
                },
            )
        };
        let (clock, fraction) = match clock.split_once('.') {
            Some((c, f)) => (c, Some(f)),
            None => (clock, None),
        };
        let mut hms = clock.split(':');
        let h = number(hms.next()?)?;
        let m = number(hms.next()?)?;
        let s = number(hms.next().unwrap_or("0"))?;
        if h > 23 || m > 59 || s > 60 {
            return None;
        }
        secs += i64::from(h * 3600 + m * 60 + s) - offset * 60;
        if let Some(f) = fraction {
            let digits: String = f.chars().take(9).collect();
            number(&digits)?;
            nanos = format!("{digits:0<9}").parse().ok()?;
        }
    }
    // Before 1970: the epoch; after 2554 (past u64 nanoseconds): the end of time.
    let secs = u64::try_from(secs).unwrap_or(0);
    Some(secs.saturating_mul(NANOS).saturating_add(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for days in [-1, 0, 1, 59, 60, 11_016, 20_785, 47_481] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(day_path(0), "1970/01/01");
        assert_eq!(
            rfc3339_ns(951_782_400 * NANOS + 5),
            "2000-02-29T00:00:00.000000005Z"
        );
    }

    #[test]
    fn times_parse_in_every_form() {
        let now = 1_800_000_000 * NANOS;
        assert_eq!(parse_time("1970-01-02", now), Ok(86_400 * NANOS));
        assert_eq!(
            parse_time("2026-12-27T22:30:21Z", now),
            Ok(1_798_410_621 * NANOS)
        );
        assert_eq!(
            parse_time("2026-12-27T23:30:21.5+01:00", now),
            Ok(1_798_410_621 * NANOS + 500_000_000)
        );
        assert_eq!(parse_time("1798410621", now), Ok(1_798_410_621 * NANOS));
        assert_eq!(parse_time("2h", now), Ok(now - 7200 * NANOS));
        assert_eq!(parse_time("7d", now), Ok(now - 7 * 86_400 * NANOS));
        for bad in ["", "yesterday", "2026-13-01", "2026-11-28T25:00Z", "x5d"] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}
