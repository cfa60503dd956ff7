//! Package formats. Alpine's `.apk` is the first; Debian and RPM follow.

pub mod apk;
