//! rpm's version comparison (`rpmio/rpmvercmp.cc`) and EVR order.

use std::cmp::Ordering;

/// Compares two version (or release) strings as rpm's `rpmvercmp` does
/// (reference section 3.7): `1.0~rc1 < 1.0 < 1.0^git1 < 1.0.1`, `1.a < 1.1`,
/// leading zeros ignored.
pub fn rpmvercmp(a: &str, b: &str) -> std::cmp::Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let sep = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    loop {
        while a.first().is_some_and(sep) {
            a = &a[1..];
        }
        while b.first().is_some_and(sep) {
            b = &b[1..];
        }
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (Some(b'^'), Some(b'^')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'^'), None) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), _) => return Ordering::Less,
            (_, Some(b'^')) => return Ordering::Greater,
            (None, _) | (_, None) => break,
            _ => {}
        }
        let numeric = a[0].is_ascii_digit();
        let run = |s: &[u8]| {
            s.iter()
                .take_while(|c| {
                    if numeric {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_alphabetic()
                    }
                })
                .count()
        };
        let (la, lb) = (run(a), run(b));
        if lb == 0 {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (ra, rb) = (&a[..la], &b[..lb]);
        a = &a[la..];
        b = &b[lb..];
        let ord = if numeric {
            let strip = |s: &[u8]| {
                let z = s.iter().take_while(|&&c| c == b'0').count();
                s[z..].to_vec()
            };
            let (na, nb) = (strip(ra), strip(rb));
            na.len().cmp(&nb.len()).then_with(|| na.cmp(&nb))
        } else {
            ra.cmp(rb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// Compares two epoch-version-release triples as rpm does: epoch
/// numerically, then version, then release with [`rpmvercmp`].
pub fn compare_evr(a: (u32, &str, &str), b: (u32, &str, &str)) -> Ordering {
    a.0.cmp(&b.0)
        .then_with(|| rpmvercmp(a.1, b.1))
        .then_with(|| rpmvercmp(a.2, b.2))
}
