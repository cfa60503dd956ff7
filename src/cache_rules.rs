//! Cache rules per object kind: how long a CDN, a proxy or a client may keep a public object.
//!
//! One table, chosen from what the object *is* ([`ObjectKind`]), never from a suffix at a call
//! site: the code that writes an object names its kind, and the kind gives the
//! `Cache-Control` stored with the object and served by `packages serve`.
//!
//! | kind | class | `Cache-Control` |
//! |---|---|---|
//! | package files, content-named metadata (`by-hash/`, `repodata/<sha>-…`) | [`CacheClass::Immutable`] | `public, max-age=31536000, immutable` |
//! | signed indexes (`APKINDEX.tar.gz`, `InRelease`, `Packages*` fetched by path), browse pages (`index.html`) | [`CacheClass::Index`] | `public, max-age=60, must-revalidate` |
//! | roots whose signature is a file of its own, and that signature (`repomd.xml`, `repomd.xml.asc`, `Release`, `Release.gpg`) | [`CacheClass::Revalidate`] | `public, max-age=0, no-cache` |
//! | public keys, `.repo` files | [`CacheClass::Medium`] | `public, max-age=3600` |
//!
//! THE CDN USES THE SAME LIFETIMES: `cache_ttl` in `terraform/modules/packages/locals.tf` sets
//! the CloudFront cache policies, and `tests/integration/cdn.rs` fails when the two disagree.
//! Change both together.
//!
//! Why these values: a package never changes once published (different bytes under the same
//! name are refused), so it may be cached for good. An index changes with every publish; 60 s
//! bounds how long a new package stays invisible behind a cache, and removed files stay
//! downloadable for far longer (24 h) than any cached index that still names them. Keys change
//! only on rotation, which publishes the new key before indexes are signed with it.

/// Seconds a package file or content-named file may be cached: a year.
pub const IMMUTABLE_MAX_AGE: u64 = 31_536_000;
/// Seconds a signed index or repository root may be cached before it is revalidated.
pub const INDEX_MAX_AGE: u64 = 60;
/// Seconds a root with a detached signature (or that signature) may be used without asking
/// the origin: none, see [`ObjectKind::SignaturePair`].
pub const REVALIDATE_MAX_AGE: u64 = 0;
/// Seconds a public key or `.repo` file may be cached.
pub const MEDIUM_MAX_AGE: u64 = 3_600;

// Checked when compiling: the lifetimes grow from indexes to keys to packages.
const _: () = assert!(
    REVALIDATE_MAX_AGE < INDEX_MAX_AGE
        && INDEX_MAX_AGE < MEDIUM_MAX_AGE
        && MEDIUM_MAX_AGE < IMMUTABLE_MAX_AGE
);

/// What a public object is, as far as caching goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A package file (`.apk`, `.deb`, `.rpm`): immutable once published.
    Package,
    /// Metadata named by its content (`by-hash/…`, `repodata/<sha>-…`).
    ContentNamed,
    /// A signed index that holds its own signature (`APKINDEX.tar.gz`, `InRelease`), or an
    /// index file a root names by its path (Debian's `Packages*` when fetched without by-hash).
    SignedIndex,
    /// A root whose signature is a file of its own, or that signature: `repomd.xml` and
    /// `repomd.xml.asc`, Debian's `Release` and `Release.gpg` (and a component's `Release`).
    /// A cache keeps each file on its own clock: with a lifetime, a cache that fetched one half
    /// just before a publish and the other just after would serve the mismatched pair for that
    /// whole lifetime (dnf with `repo_gpgcheck=1` then refuses the repository). So every
    /// request is checked with the origin (a `304` when unchanged), and the pair a client
    /// gets is as consistent as the store's.
    SignaturePair,
    /// A public signing key.
    PublicKey,
    /// A `.repo` file (dnf/yum client configuration).
    RepoFile,
    /// A browse page (`index.html`, [`crate::browse`]): rewritten with the index it shows,
    /// so it is cached like one.
    Page,
}

/// How long a kind of object may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheClass {
    /// Forever, in practice: a year and `immutable` (no revalidation on reload).
    Immutable,
    /// Short, then revalidated with the origin.
    Index,
    /// Revalidated with the origin on every request.
    Revalidate,
    /// An hour.
    Medium,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 7] = [
        ObjectKind::Package,
        ObjectKind::ContentNamed,
        ObjectKind::SignedIndex,
        ObjectKind::SignaturePair,
        ObjectKind::PublicKey,
        ObjectKind::RepoFile,
        ObjectKind::Page,
    ];

    /// The cache class of this kind.
    pub const fn cache_class(self) -> CacheClass {
        match self {
            ObjectKind::Package | ObjectKind::ContentNamed => CacheClass::Immutable,
            ObjectKind::SignedIndex | ObjectKind::Page => CacheClass::Index,
            ObjectKind::SignaturePair => CacheClass::Revalidate,
            ObjectKind::PublicKey | ObjectKind::RepoFile => CacheClass::Medium,
        }
    }

    /// The `Cache-Control` of this kind.
    pub const fn cache_control(self) -> &'static str {
        self.cache_class().cache_control()
    }

    /// The kind of a public object known only by its path (relative to the public tree), for
    /// objects that are served or checked without the key that wrote them: a CDN sees only
    /// paths, too. Code that writes an object names its kind instead. `None`: not a kind of
    /// object the repositories publish.
    pub fn for_public_path(path: &str) -> Option<ObjectKind> {
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (parent, name),
            None => ("", path),
        };
        // Roots first: `Release.gpg` and `repomd.xml.asc` are signatures of roots, not keys.
        if ["repomd.xml", "repomd.xml.asc", "Release", "Release.gpg"].contains(&name) {
            return Some(ObjectKind::SignaturePair);
        }
        if name == "APKINDEX.tar.gz" || name == "InRelease" {
            return Some(ObjectKind::SignedIndex);
        }
        if parent.split('/').any(|s| s == "by-hash") || is_content_named_repodata(parent, name) {
            return Some(ObjectKind::ContentNamed);
        }
        const INDEX_MEMBERS: [&str; 4] = ["Packages", "Sources", "Contents-", "Translation-"];
        if INDEX_MEMBERS.iter().any(|p| name.starts_with(p)) && parent.contains("dists/") {
            return Some(ObjectKind::SignedIndex);
        }
        const PACKAGES: [&str; 5] = [".apk", ".deb", ".udeb", ".ddeb", ".rpm"];
        if PACKAGES.iter().any(|s| name.ends_with(s)) {
            return Some(ObjectKind::Package);
        }
        if [".rsa.pub", ".pub", ".asc", ".gpg"]
            .iter()
            .any(|s| name.ends_with(s))
        {
            return Some(ObjectKind::PublicKey);
        }
        if name.ends_with(".repo") {
            return Some(ObjectKind::RepoFile);
        }
        if name == "index.html" {
            return Some(ObjectKind::Page);
        }
        None
    }
}

/// `repodata/<hex digest>-<name>`, as createrepo names everything but `repomd.xml`.
fn is_content_named_repodata(parent: &str, name: &str) -> bool {
    let in_repodata = parent == "repodata" || parent.ends_with("/repodata");
    let digest = name.split_once('-').map_or("", |(d, _)| d);
    in_repodata && digest.len() >= 32 && digest.bytes().all(|b| b.is_ascii_hexdigit())
}

impl CacheClass {
    /// Every class.
    pub const ALL: [CacheClass; 4] = [
        CacheClass::Immutable,
        CacheClass::Index,
        CacheClass::Revalidate,
        CacheClass::Medium,
    ];

    /// Seconds an object of this class may be cached.
    pub const fn max_age(self) -> u64 {
        match self {
            CacheClass::Immutable => IMMUTABLE_MAX_AGE,
            CacheClass::Index => INDEX_MAX_AGE,
            CacheClass::Revalidate => REVALIDATE_MAX_AGE,
            CacheClass::Medium => MEDIUM_MAX_AGE,
        }
    }

    /// The `Cache-Control` header value of this class.
    pub const fn cache_control(self) -> &'static str {
        // Literals, so the value is a `&'static str` in const context; a unit test checks
        // that each names its class's `max_age`.
        match self {
            CacheClass::Immutable => "public, max-age=31536000, immutable",
            CacheClass::Index => "public, max-age=60, must-revalidate",
            CacheClass::Revalidate => "public, max-age=0, no-cache",
            CacheClass::Medium => "public, max-age=3600",
        }
    }

    /// The class's name in the Terraform module's `cache_ttl` map.
    pub const fn terraform_name(self) -> &'static str {
        match self {
            CacheClass::Immutable => "immutable",
            CacheClass::Index => "index",
            CacheClass::Revalidate => "revalidate",
            CacheClass::Medium => "medium",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_names_the_class_lifetime() {
        for class in CacheClass::ALL {
            let value = class.cache_control();
            let max_age: Vec<u64> = value
                .split(',')
                .filter_map(|d| d.trim().strip_prefix("max-age="))
                .map(|n| n.parse().expect("a number"))
                .collect();
            assert_eq!(max_age, [class.max_age()], "{class:?}: {value}");
            assert!(value.starts_with("public, "), "{class:?}: {value}");
        }
    }

    #[test]
    fn the_table_of_issue_11() {
        assert_eq!(
            ObjectKind::Package.cache_control(),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            ObjectKind::ContentNamed.cache_control(),
            ObjectKind::Package.cache_control()
        );
        assert_eq!(
            ObjectKind::SignedIndex.cache_control(),
            "public, max-age=60, must-revalidate"
        );
        assert_eq!(
            ObjectKind::PublicKey.cache_control(),
            "public, max-age=3600"
        );
        assert_eq!(ObjectKind::RepoFile.cache_class(), CacheClass::Medium);
        // Checked with the origin on every request (nginx and CloudFront with a minimum TTL
        // of 0 keep nothing they would serve without asking).
        assert_eq!(
            ObjectKind::SignaturePair.cache_control(),
            "public, max-age=0, no-cache"
        );
        assert_eq!(
            ObjectKind::Page.cache_control(),
            ObjectKind::SignedIndex.cache_control()
        );
        // Only immutable objects say so: a cache must revalidate everything else.
        for kind in ObjectKind::ALL {
            let immutable = kind.cache_control().contains("immutable");
            assert_eq!(immutable, kind.cache_class() == CacheClass::Immutable);
        }
    }

    #[test]
    fn kinds_of_public_paths() {
        use ObjectKind::*;
        let cases = [
            (
                "acme/alpine/edge/main/x86_64/hello-1.0-r0.apk",
                Some(Package),
            ),
            (
                "acme/alpine/edge/main/x86_64/APKINDEX.tar.gz",
                Some(SignedIndex),
            ),
            ("acme/alpine/acme-1a2b3c4d.rsa.pub", Some(PublicKey)),
            ("acme/debian/dists/stable/InRelease", Some(SignedIndex)),
            ("acme/debian/dists/stable/Release", Some(SignaturePair)),
            ("acme/debian/dists/stable/Release.gpg", Some(SignaturePair)),
            (
                "acme/debian/dists/stable/main/binary-amd64/Release",
                Some(SignaturePair),
            ),
            (
                "acme/debian/dists/stable/main/binary-amd64/Packages.gz",
                Some(SignedIndex),
            ),
            (
                "acme/debian/dists/stable/main/binary-amd64/by-hash/SHA256/0123abcd",
                Some(ContentNamed),
            ),
            (
                "acme/debian/pool/main/h/hello/hello_1.0-1_amd64.deb",
                Some(Package),
            ),
            ("acme/debian/acme.asc", Some(PublicKey)),
            (
                "acme/fedora/40/main/x86_64/repodata/repomd.xml",
                Some(SignaturePair),
            ),
            (
                "acme/fedora/40/main/x86_64/repodata/repomd.xml.asc",
                Some(SignaturePair),
            ),
            (
                "acme/fedora/40/main/x86_64/repodata/0123456789abcdef0123456789abcdef01234567-primary.xml.zst",
                Some(ContentNamed),
            ),
            (
                "acme/fedora/40/main/x86_64/hello-1.0-1.fc40.x86_64.rpm",
                Some(Package),
            ),
            ("acme/fedora/acme.repo", Some(RepoFile)),
            ("acme/alpine/index.html", Some(Page)),
            ("acme/debian/dists/bookworm/index.html", Some(Page)),
            // A package whose name merely starts like an index member is still a package.
            (
                "acme/debian/pool/main/p/packages-tool/Packages-tool_1.0_all.deb",
                Some(Package),
            ),
            ("acme/alpine/edge/main/x86_64/notes.txt", None),
            (
                "acme/fedora/40/main/x86_64/repodata/short-primary.xml",
                None,
            ),
        ];
        for (path, kind) in cases {
            assert_eq!(ObjectKind::for_public_path(path), kind, "{path}");
        }
    }
}
