//! Version order per package format, for retention ("keep the newest N").
//!
//! RPM uses rpm's own comparison ([`crate::formats::rpm::vercmp`]); apk and
//! Debian versions are compared here: apk as apk-tools orders them (numbers,
//! a letter, `_alpha`.. `_p` suffixes, `-rN`), Debian as dpkg does (epoch,
//! upstream, revision; `~` before everything).

use std::cmp::Ordering;

use crate::repo::Family;

/// Compares two versions of one package in `family`'s order.
pub fn compare(family: Family, a: &str, b: &str) -> Ordering {
    match family {
        Family::Apk => apk(a, b),
        Family::Deb => deb(a, b),
        Family::Rpm => {
            let (ea, va, ra) = evr(a);
            let (eb, vb, rb) = evr(b);
            crate::formats::rpm::compare_evr((ea, va, ra), (eb, vb, rb))
        }
    }
}

/// `[epoch:]version[-release]`, as RPM listings show it.
fn evr(text: &str) -> (u32, &str, &str) {
    let (epoch, rest) = match text.split_once(':') {
        Some((e, rest)) if e.bytes().all(|b| b.is_ascii_digit()) => (e.parse().unwrap_or(0), rest),
        _ => (0, text),
    };
    let (version, release) = rest.rsplit_once('-').unwrap_or((rest, ""));
    (epoch, version, release)
}

/// An apk suffix's rank: pre-releases before none (0), post-releases after.
fn suffix_rank(name: &str) -> i32 {
    match name {
        "alpha" => -4,
        "beta" => -3,
        "pre" => -2,
        "rc" => -1,
        "cvs" => 1,
        "svn" => 2,
        "git" => 3,
        "hg" => 4,
        "p" => 5,
        _ => 6,
    }
}

/// An apk version split: numbers, a letter, suffixes with numbers, release.
type ApkParts = (Vec<u64>, Option<char>, Vec<(i32, u64)>, u64);

fn apk_parts(version: &str) -> ApkParts {
    let (main, release) = match version.rsplit_once("-r") {
        Some((main, r)) if r.bytes().all(|b| b.is_ascii_digit()) && !r.is_empty() => {
            (main, r.parse().unwrap_or(0))
        }
        _ => (version, 0),
    };
    let mut pieces = main.split('_');
    let head = pieces.next().unwrap_or_default();
    let mut numbers = Vec::new();
    let mut letter = None;
    for part in head.split('.') {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        numbers.push(digits.parse().unwrap_or(0));
        letter = part[digits.len()..].chars().next().or(letter);
    }
    let suffixes = pieces
        .map(|s| {
            let name: String = s.chars().take_while(char::is_ascii_alphabetic).collect();
            (suffix_rank(&name), s[name.len()..].parse().unwrap_or(0))
        })
        .collect();
    (numbers, letter, suffixes, release)
}

fn apk(a: &str, b: &str) -> Ordering {
    let (na, la, sa, ra) = apk_parts(a);
    let (nb, lb, sb, rb) = apk_parts(b);
    na.cmp(&nb)
        .then_with(|| la.cmp(&lb))
        .then_with(|| {
            // No suffix sits between the pre- and post-release ones.
            let pad = |s: &[(i32, u64)], i: usize| s.get(i).copied().unwrap_or((0, 0));
            (0..sa.len().max(sb.len()))
                .map(|i| pad(&sa, i).cmp(&pad(&sb, i)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        })
        .then(ra.cmp(&rb))
}

/// dpkg's order of one non-digit character: `~` first, then the end, then
/// letters, then everything else.
fn deb_char(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

fn deb_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        let text = |s: &[u8]| s.iter().take_while(|c| !c.is_ascii_digit()).count();
        let (ta, tb) = (text(a), text(b));
        for i in 0..ta.max(tb) {
            let o = deb_char(a[..ta].get(i).copied()).cmp(&deb_char(b[..tb].get(i).copied()));
            if o.is_ne() {
                return o;
            }
        }
        (a, b) = (&a[ta..], &b[tb..]);
        let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
        let (da, db) = (digits(a), digits(b));
        let number = |s: &[u8]| {
            std::str::from_utf8(s)
                .ok()
                .and_then(|t| t.parse::<u128>().ok())
                .unwrap_or(0)
        };
        let o = number(&a[..da]).cmp(&number(&b[..db]));
        if o.is_ne() {
            return o;
        }
        (a, b) = (&a[da..], &b[db..]);
    }
    Ordering::Equal
}

fn deb(a: &str, b: &str) -> Ordering {
    let split = |v: &str| -> (u64, String, String) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, rest)) => (e.parse().unwrap_or(0), rest),
            None => (0, v),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        (epoch, upstream.to_owned(), revision.to_owned())
    };
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| deb_part(&ua, &ub))
        .then_with(|| deb_part(&ra, &rb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ascending(family: Family, versions: &[&str]) {
        for pair in versions.windows(2) {
            assert_eq!(
                compare(family, pair[0], pair[1]),
                Ordering::Less,
                "{pair:?}"
            );
            assert_eq!(
                compare(family, pair[1], pair[0]),
                Ordering::Greater,
                "{pair:?}"
            );
        }
    }

    #[test]
    fn apk_versions_order_as_apk_tools() {
        ascending(
            Family::Apk,
            &[
                "1.0_alpha1-r0",
                "1.0_beta-r0",
                "1.0_rc2-r0",
                "1.0-r0",
                "1.0-r1",
                "1.0-r10",
                "1.0_p1-r0",
                "1.0a-r0",
                "1.0.1-r0",
                "1.2-r0",
                "1.10-r0",
                "2-r0",
            ],
        );
        assert_eq!(compare(Family::Apk, "1.0-r0", "1.0-r0"), Ordering::Equal);
    }

    #[test]
    fn debian_versions_order_as_dpkg() {
        ascending(
            Family::Deb,
            &[
                "1.0~rc1-1",
                "1.0-1",
                "1.0-1ubuntu1",
                "1.0-2",
                "1.0a-1",
                "1.0.1-1",
                "1.10-1",
                "1:0.1-1",
            ],
        );
    }

    #[test]
    fn rpm_versions_order_as_rpm() {
        ascending(
            Family::Rpm,
            &["1.0-1", "1.0-2", "1.1-1", "1.10-1", "1:0.5-1"],
        );
    }
}
