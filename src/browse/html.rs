//! Writing the pages: escaping, relative links, sizes, dates, and the one
//! page skeleton (no JavaScript, a few lines of inline CSS).

use std::fmt::Write as _;

/// Escapes text for HTML element content and double- or single-quoted
/// attribute values. Every piece of user data (package names, versions,
/// descriptions) goes through here.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters have no business in a page; show them as a replacement.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A relative link to `path` (`/`-separated, relative to the page's folder):
/// each segment percent-encoded but for unreserved characters, and `./` in
/// front so that a first segment holding `:` is never read as a scheme.
pub fn href(path: &str) -> String {
    let mut out = String::from("./");
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if segment == ".." || segment == "." {
            out.push_str(segment);
            continue;
        }
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+') {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// The path to `target` from the folder `from` (both relative to the public
/// tree, `/`-separated, no leading `/`): `../` up to their common folder, then down.
pub fn relative(from: &str, target: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|s| !s.is_empty()).collect();
    let to: Vec<&str> = target.split('/').filter(|s| !s.is_empty()).collect();
    // The target's last segment is a file (or a folder named with a trailing `/`).
    let common = from
        .iter()
        .zip(to.iter().take(to.len().saturating_sub(1)))
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

/// A size for people: bytes, KiB, MiB or GiB with one decimal.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A Unix time as `YYYY-MM-DD` (UTC).
pub fn date(secs: u64) -> String {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.2em .6em;border-bottom:1px solid #ddd;vertical-align:top}\
td.n{text-align:right;white-space:nowrap}pre{background:#f4f4f4;padding:.8em;overflow-x:auto}\
code{font-size:.95em}nav{margin-bottom:1em}";

/// A page being written: head, sections, end.
#[derive(Debug)]
pub struct Doc {
    out: String,
}

impl Doc {
    /// Starts a page titled `title` with `crumbs` (label, relative link) above it.
    pub fn new(title: &str, crumbs: &[(String, String)]) -> Self {
        let mut out = String::with_capacity(4096);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            escape(title)
        );
        if !crumbs.is_empty() {
            out.push_str("<nav>");
            for (i, (label, link)) in crumbs.iter().enumerate() {
                if i > 0 {
                    out.push_str(" / ");
                }
                let _ = write!(out, "<a href=\"{}\">{}</a>", escape(link), escape(label));
            }
            out.push_str("</nav>\n");
        }
        let _ = writeln!(out, "<h1>{}</h1>", escape(title));
        Self { out }
    }

    /// A heading.
    pub fn heading(&mut self, text: &str) {
        let _ = writeln!(self.out, "<h2>{}</h2>", escape(text));
    }

    /// A paragraph of plain text.
    pub fn para(&mut self, text: &str) {
        let _ = writeln!(self.out, "<p>{}</p>", escape(text));
    }

    /// A preformatted block (shell commands).
    pub fn pre(&mut self, lines: &[String]) {
        self.out.push_str("<pre><code>");
        for line in lines {
            self.out.push_str(&escape(line));
            self.out.push('\n');
        }
        self.out.push_str("</code></pre>\n");
    }

    /// A list of links `(label, relative path)`.
    pub fn links(&mut self, links: &[(String, String)]) {
        self.out.push_str("<ul>\n");
        for (label, path) in links {
            let _ = writeln!(
                self.out,
                "<li><a href=\"{}\">{}</a></li>",
                escape(path),
                escape(label)
            );
        }
        self.out.push_str("</ul>\n");
    }

    /// Appends raw, already escaped HTML.
    pub fn raw(&mut self, html: &str) {
        self.out.push_str(html);
    }

    /// Ends the page.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push_str("</body>\n</html>\n");
        self.out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(escape("a\u{0}b"), "a\u{fffd}b");
    }

    #[test]
    fn links_are_relative_and_encoded() {
        assert_eq!(href("a:b-1.0.apk"), "./a%3Ab-1.0.apk");
        assert_eq!(href("g++-1.0.apk"), "./g++-1.0.apk");
        assert_eq!(href("x86_64/"), "./x86_64/");
        assert_eq!(
            href("../../pool/main/h/x y.deb"),
            "./../../pool/main/h/x%20y.deb"
        );
        assert_eq!(
            relative(
                "acme/alpine/v3.20/main/x86_64",
                "acme/alpine/acme-1.rsa.pub"
            ),
            "../../../acme-1.rsa.pub"
        );
        assert_eq!(relative("acme/alpine", "acme/alpine/k.pub"), "k.pub");
    }

    #[test]
    fn sizes_and_dates() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_700_000_000), "2023-11-14");
        assert_eq!(date(951_782_400), "2000-02-29");
    }
}
