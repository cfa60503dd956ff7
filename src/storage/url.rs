//! Store locations and object keys: [`StorageUrl`] and the key rules every backend shares.

use std::path::PathBuf;

use super::StorageError;

/// A parsed storage location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local directory.
    Local(PathBuf),
    /// An S3 bucket and optional key prefix.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
        prefix: String,
    },
}

/// The forms a storage location may take, as error messages state them.
pub const ACCEPTED_FORMS: &str =
    "use `s3://BUCKET[/PREFIX]`, `file:///ABSOLUTE/PATH`, or a plain path (`./dir`, `/srv/dir`)";

impl StorageUrl {
    /// The default store when none is given: `./packages-data`.
    pub const DEFAULT: &'static str = "./packages-data";

    /// Parses `s3://BUCKET[/PREFIX]`, `file:///ABSOLUTE/PATH` or a plain path,
    /// strictly: `file:/x`, `file:x`, `file://host/x`, `s3:/b`, `s3:b` and any
    /// other `scheme:` are refused, naming the accepted forms (a relative path
    /// with a `:` in its first segment is written `./a:b`).
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        let invalid = |reason: &str| StorageError::InvalidUrl {
            url: url.to_owned(),
            reason: format!("{reason}; {ACCEPTED_FORMS}"),
        };
        if url.is_empty() {
            return Err(invalid("empty"));
        }
        if url.chars().any(char::is_control) {
            return Err(invalid("control character"));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("missing bucket name"));
            }
            if let Some(c) = bucket
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            {
                return Err(invalid(&format!("`{c}` in the bucket name")));
            }
            let prefix = prefix.trim_matches('/').to_owned();
            if prefix.split('/').any(|s| s == ".." || s == ".") {
                return Err(invalid("`.` or `..` in the prefix"));
            }
            if prefix.contains("//") {
                return Err(invalid("empty segment (`//`) in the prefix"));
            }
            return Ok(StorageUrl::S3 {
                bucket: bucket.to_owned(),
                prefix,
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err(invalid("missing path"));
            }
            if !path.starts_with('/') {
                return Err(invalid(
                    "a `file://` URL takes an absolute path: three slashes, `file:///srv/dir`",
                ));
            }
            return Ok(StorageUrl::Local(PathBuf::from(path)));
        }
        if let Some(scheme) = scheme_of(url) {
            let reason = match scheme {
                "file" => "`file:` needs three slashes and an absolute path".to_owned(),
                "s3" => "`s3:` needs two slashes before the bucket".to_owned(),
                other => format!("unknown scheme `{other}:`"),
            };
            return Err(invalid(&reason));
        }
        Ok(StorageUrl::Local(PathBuf::from(url)))
    }

    /// Whether this is a local directory.
    pub fn is_local(&self) -> bool {
        matches!(self, StorageUrl::Local(_))
    }

    /// The URL in its canonical form, for messages: `file:///ABSOLUTE/PATH`
    /// (made absolute from the current directory, without touching the
    /// file system) or `s3://BUCKET[/PREFIX]`.
    pub fn to_url(&self) -> String {
        match self {
            StorageUrl::Local(path) => {
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                format!("file://{}", absolute.display())
            }
            StorageUrl::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            StorageUrl::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

impl std::fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_url())
    }
}

/// The scheme of `url` if it starts like a URL (`letters:`), else `None`.
/// One-letter schemes are drive letters, not URLs; a path starting with
/// `.` or `/` never has a scheme.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (scheme.len() > 1
        && first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Checks that `key` is a relative `/`-separated key with no empty, `.` or `..` segment.
pub(crate) fn check_key(key: &str) -> Result<(), StorageError> {
    let invalid = |reason| StorageError::InvalidKey {
        key: key.to_owned(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("empty key"));
    }
    if key.len() > 1024 {
        return Err(invalid("longer than 1024 bytes"));
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err(invalid("empty path segment"));
        }
        if segment == "." || segment == ".." {
            return Err(invalid("`.` or `..` segment"));
        }
        if segment.chars().any(|c| c.is_control() || c == '\\') {
            return Err(invalid("control character or backslash"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_storage_urls() {
        assert_eq!(
            StorageUrl::parse("s3://bucket/some/prefix/").unwrap(),
            StorageUrl::S3 {
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            StorageUrl::parse("s3://bucket").unwrap(),
            StorageUrl::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StorageUrl::parse("file:///tmp/x").unwrap(),
            StorageUrl::Local("/tmp/x".into())
        );
        assert_eq!(
            StorageUrl::parse("data").unwrap(),
            StorageUrl::Local("data".into())
        );
        assert!(StorageUrl::parse("s3://").is_err());
        assert!(StorageUrl::parse("s3://b/../x").is_err());
        assert!(StorageUrl::parse("http://x").is_err());
        assert_eq!(
            StorageUrl::parse("./a:b").unwrap(),
            StorageUrl::Local("./a:b".into())
        );
        assert_eq!(
            StorageUrl::parse("/srv/packages").unwrap(),
            StorageUrl::Local("/srv/packages".into())
        );
    }

    #[test]
    fn refuses_near_miss_urls_naming_the_accepted_forms() {
        for url in [
            "file:/x",
            "file:x",
            "file://x",
            "file://relative/x",
            "s3:/b",
            "s3:b",
            "S3://b",
            "gs://b",
            "https://b.s3.amazonaws.com",
            "s3://b c/x",
            "s3://b/x//y",
            "",
        ] {
            let err = StorageUrl::parse(url).unwrap_err().to_string();
            assert!(
                err.contains("s3://BUCKET") && err.contains("file:///"),
                "{url:?}: {err}"
            );
        }
    }

    #[test]
    fn canonical_urls_are_absolute() {
        let url = StorageUrl::parse("data").unwrap().to_url();
        assert!(
            url.starts_with("file:///") && url.ends_with("/data"),
            "{url}"
        );
        assert_eq!(
            StorageUrl::parse("file:///srv/x").unwrap().to_url(),
            "file:///srv/x"
        );
        assert_eq!(
            StorageUrl::parse("s3://b/p/q/").unwrap().to_url(),
            "s3://b/p/q"
        );
        assert_eq!(StorageUrl::parse("s3://b").unwrap().to_url(), "s3://b");
    }

    #[test]
    fn rejects_bad_keys() {
        for key in ["", "a//b", "../a", "a/./b", "a/\u{7}", "/a", "a/"] {
            assert!(check_key(key).is_err(), "{key:?}");
        }
        check_key("static/o/alpine/v/r/x86_64/a+b~c d é.apk").unwrap();
    }
}
