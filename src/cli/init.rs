//! `packages init`: create a store on purpose; and what every command says
//! about the store it uses (a line on stderr, and what `admin init` or
//! `org create` created on a new location).

use anyhow::Result;

use super::output::print_json;
use crate::config::{Opened, StoreConfig};
use crate::stores::{STORE_MARKER, StoreMarker};

/// Prints what `packages init` did: created the store, found one, or marked
/// an earlier version's store. Data (the marker) on stdout, the rest on stderr.
pub(super) fn report(config: &StoreConfig, opened: &Opened, json: bool) -> Result<()> {
    let url = config.describe();
    let (marker, created) = match opened {
        Opened::Created(marker) => (marker.clone(), true),
        Opened::Existing(marker) => (marker.clone(), false),
        // `open_checked` marks an earlier version's store for `init`; if
        // the marker could not be read back, report a fresh one.
        Opened::Unmarked => (StoreMarker::new(), false),
    };
    if json {
        return print_json(&serde_json::json!({
            "store": url,
            "created": created,
            "format": marker.format,
            "initialized": rfc3339(marker.created),
            "created_by": marker.created_by,
        }));
    }
    if created {
        println!("created a new store at {url} (format {})", marker.format);
        eprintln!("wrote {STORE_MARKER}; next: `packages org create NAME`");
    } else {
        println!(
            "{url} is a store already (format {}, initialized {})",
            marker.format,
            rfc3339(marker.created)
        );
    }
    Ok(())
}

/// Says on stderr that a command (`admin init`, `org create`) created the
/// store because the location was new.
pub(super) fn report_created(config: &StoreConfig, opened: &Opened) {
    if let Opened::Created(marker) = opened {
        eprintln!(
            "created a new store at {} (format {}, marker {STORE_MARKER})",
            config.describe(),
            marker.format
        );
    }
}

/// Unix seconds as an RFC 3339 UTC time (`2026-11-27T22:30:21Z`).
pub(super) fn rfc3339(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(i64::MAX / 2);
    let secs = unix % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_unix_times_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_410_621), "2026-12-27T22:30:21Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
