//! What `verify` found: problems (a client would fail or be fooled), files
//! that could not be checked, warnings, and what was checked, printed as
//! text or as one JSON object.

use serde::Serialize;

/// Which keys signatures were checked against.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum KeySource {
    /// No signature was checked yet.
    #[default]
    None,
    /// The key files the user gave (`--key`).
    Given {
        /// The files.
        files: Vec<String>,
    },
    /// The keys published next to the repository.
    Published {
        /// Their URLs.
        urls: Vec<String>,
    },
}

/// One finding about one file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// The file's URL.
    pub file: String,
    /// What is wrong, for people.
    pub problem: String,
}

/// Everything `verify` found about one repository.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The URL given.
    pub url: String,
    /// `apk`, `deb` or `rpm`.
    pub format: String,
    /// Whether entries were only checked with `HEAD` (sizes, no checksums).
    pub no_download: bool,
    /// The keys signatures were checked against.
    pub key: KeySource,
    /// The signed root files checked (`APKINDEX.tar.gz`, `InRelease`, `repomd.xml`).
    pub indexes: Vec<String>,
    /// Package files checked.
    pub packages: u64,
    /// Files checked in all (indexes, metadata, packages).
    pub files: u64,
    /// Bytes downloaded and hashed.
    pub bytes: u64,
    /// What a client would refuse or be fooled by: exit status 1.
    pub problems: Vec<Finding>,
    /// What could not be checked (network errors, server errors): exit status 2
    /// when there is no problem.
    pub unchecked: Vec<Finding>,
    /// Worth knowing, not failing.
    pub warnings: Vec<String>,
    /// `ok`, `problems` or `unchecked`.
    pub result: String,
}

impl Report {
    /// An empty report for `url`.
    pub fn new(url: &str, format: &str, no_download: bool) -> Self {
        Self {
            url: url.to_owned(),
            format: format.to_owned(),
            no_download,
            key: KeySource::None,
            indexes: Vec::new(),
            packages: 0,
            files: 0,
            bytes: 0,
            problems: Vec::new(),
            unchecked: Vec::new(),
            warnings: Vec::new(),
            result: String::new(),
        }
    }

    /// Records a problem with `file`.
    pub fn problem(&mut self, file: impl Into<String>, problem: impl Into<String>) {
        self.problems.push(Finding {
            file: file.into(),
            problem: problem.into(),
        });
    }

    /// Records that `file` could not be checked.
    pub fn unchecked(&mut self, file: impl Into<String>, problem: impl Into<String>) {
        self.unchecked.push(Finding {
            file: file.into(),
            problem: problem.into(),
        });
    }

    /// Records a warning.
    pub fn warn(&mut self, warning: impl Into<String>) {
        let warning = warning.into();
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// Records which keys signatures are checked against (the first call
    /// wins; later ones add the published URLs they used).
    pub fn use_keys(&mut self, source: KeySource) {
        match (&mut self.key, source) {
            (KeySource::Published { urls }, KeySource::Published { urls: more }) => {
                for url in more {
                    if !urls.contains(&url) {
                        urls.push(url);
                    }
                }
            }
            (KeySource::None, source) => self.key = source,
            _ => {}
        }
    }

    /// Sets [`Report::result`] and the warning about trusting published keys.
    pub fn finish(&mut self, published_keys: bool) {
        if published_keys && matches!(self.key, KeySource::Published { .. }) {
            self.warnings.insert(
                0,
                "the signatures were checked against the key published next to the \
                 repository: that only proves the repository is consistent, not that it is \
                 yours (anyone who can write the repository can replace both); pass \
                 `--key FILE` with a copy of the key you trust"
                    .to_owned(),
            );
        }
        self.result = if !self.problems.is_empty() {
            "problems"
        } else if !self.unchecked.is_empty() {
            "unchecked"
        } else {
            "ok"
        }
        .to_owned();
    }

    /// The exit status: 0 all good, 1 problems, 2 something could not be checked.
    pub fn exit_code(&self) -> u8 {
        if !self.problems.is_empty() {
            1
        } else if !self.unchecked.is_empty() {
            2
        } else {
            0
        }
    }

    /// The report as text, one finding a line.
    pub fn to_text(&self) -> String {
        let mut out = format!("verified {} ({})\n", self.url, self.format);
        out.push_str(&match &self.key {
            KeySource::None => "key: none (no signature was checked)\n".to_owned(),
            KeySource::Given { files } => format!("key: the key you gave: {}\n", files.join(", ")),
            KeySource::Published { urls } => {
                format!("key: the PUBLISHED key: {}\n", urls.join(", "))
            }
        });
        for index in &self.indexes {
            out.push_str(&format!("index: {index}\n"));
        }
        for warning in &self.warnings {
            out.push_str(&format!("warning: {warning}\n"));
        }
        for f in &self.problems {
            out.push_str(&format!("problem: {}: {}\n", f.file, f.problem));
        }
        for f in &self.unchecked {
            out.push_str(&format!("not checked: {}: {}\n", f.file, f.problem));
        }
        let how = if self.no_download {
            "sizes only, with HEAD"
        } else {
            "downloaded and hashed"
        };
        out.push_str(&format!(
            "{}: {} problem(s), {} not checked; {} file(s) checked ({} package(s), {how}), {} bytes\n",
            self.result,
            self.problems.len(),
            self.unchecked.len(),
            self.files,
            self.packages,
            self.bytes
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_findings() {
        let mut r = Report::new("http://x/", "apk", false);
        r.finish(false);
        assert_eq!((r.exit_code(), r.result.as_str()), (0, "ok"));
        r.unchecked("http://x/a", "connection refused");
        r.finish(false);
        assert_eq!((r.exit_code(), r.result.as_str()), (2, "unchecked"));
        r.problem("http://x/b", "missing");
        r.finish(false);
        assert_eq!((r.exit_code(), r.result.as_str()), (1, "problems"));
        let text = r.to_text();
        assert!(text.contains("problem: http://x/b: missing"), "{text}");
        assert!(text.contains("not checked: http://x/a"), "{text}");
    }

    #[test]
    fn published_keys_are_warned_about() {
        let mut r = Report::new("http://x/", "deb", false);
        r.use_keys(KeySource::Published {
            urls: vec!["http://x/k.asc".to_owned()],
        });
        r.finish(true);
        assert!(r.warnings[0].contains("only proves the repository is consistent"));
        assert!(
            r.to_text()
                .contains("key: the PUBLISHED key: http://x/k.asc")
        );
        let mut given = Report::new("http://x/", "deb", false);
        given.use_keys(KeySource::Given {
            files: vec!["k.asc".to_owned()],
        });
        given.finish(false);
        assert!(given.warnings.is_empty());
        let json = serde_json::to_value(&given).unwrap();
        assert_eq!(json["key"]["kind"], "given");
    }
}
