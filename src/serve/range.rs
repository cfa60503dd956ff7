//! Single byte ranges (`Range: bytes=…`, RFC 9110 §14), as a CDN origin must
//! answer them: a CDN fetching a large package in parts, or a client resuming
//! a download. Several ranges in one request are answered with the whole
//! object (which the RFC allows).

/// What to answer for a `Range` header, given the object's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable range: the whole object (200).
    Whole,
    /// `len` bytes from `start` (206).
    Part {
        /// First byte.
        start: u64,
        /// How many bytes.
        len: u64,
    },
    /// A well-formed range that lies outside the object (416).
    Unsatisfiable,
}

/// Reads a `Range` header value for an object of `size` bytes.
pub fn parse(value: &str, size: u64) -> RangeAnswer {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // `-N`: the last N bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                let len = suffix.min(size);
                RangeAnswer::Part {
                    start: size - len,
                    len,
                }
            }
        }
        // `N-` or `N-M`.
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            if start >= size {
                return RangeAnswer::Unsatisfiable;
            }
            let end = end.map_or(size - 1, |e| e.min(size - 1));
            if end < start {
                return RangeAnswer::Whole;
            }
            RangeAnswer::Part {
                start,
                len: end - start + 1,
            }
        }
        _ => RangeAnswer::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::{RangeAnswer, parse};

    #[test]
    fn reads_single_ranges() {
        let part = |start, len| RangeAnswer::Part { start, len };
        assert_eq!(parse("bytes=0-9", 100), part(0, 10));
        assert_eq!(parse("bytes=90-", 100), part(90, 10));
        assert_eq!(parse("bytes=90-500", 100), part(90, 10));
        assert_eq!(parse("bytes=-5", 100), part(95, 5));
        assert_eq!(parse("bytes=-500", 100), part(0, 100));
        assert_eq!(parse("bytes=100-", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), RangeAnswer::Unsatisfiable);
    }

    #[test]
    fn anything_else_is_the_whole_object() {
        for value in [
            "",
            "bytes=",
            "bytes=-",
            "bytes=5-2",
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=1-+2",
        ] {
            assert_eq!(parse(value, 100), RangeAnswer::Whole, "{value:?}");
        }
    }
}
