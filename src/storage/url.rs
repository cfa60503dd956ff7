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

impl StorageUrl {
    /// The default store when none is given: `./packages-data`.
    pub const DEFAULT: &'static str = "./packages-data";

    /// Parses `s3://BUCKET[/PREFIX]`, `file:///path` or a plain path.
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        let invalid = |reason: &str| StorageError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("missing bucket name"));
            }
            let prefix = prefix.trim_matches('/').to_owned();
            if prefix.split('/').any(|s| s == ".." || s == ".") {
                return Err(invalid("`.` or `..` in the prefix"));
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
            return Ok(StorageUrl::Local(PathBuf::from(path)));
        }
        if url.contains("://") {
            return Err(invalid("unknown scheme (use `s3://`, `file://` or a path)"));
        }
        if url.is_empty() {
            return Err(invalid("empty"));
        }
        Ok(StorageUrl::Local(PathBuf::from(url)))
    }
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
    }

    #[test]
    fn rejects_bad_keys() {
        for key in ["", "a//b", "../a", "a/./b", "a/\u{7}", "/a", "a/"] {
            assert!(check_key(key).is_err(), "{key:?}");
        }
        check_key("static/o/alpine/v/r/x86_64/a+b~c d é.apk").unwrap();
    }
}
