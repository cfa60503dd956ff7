//! Distros and their package format family ([`Distro`], [`Family`]).

use std::fmt;

use super::{NameError, check_name};

/// The package format family a distro publishes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Alpine: `.apk` packages, one signed `APKINDEX.tar.gz` per repo arch.
    Apk,
    /// Debian style: `.deb` packages in a shared `pool/`, `dists/<suite>/`
    /// indexes signed with OpenPGP (`InRelease`, `Release.gpg`).
    Deb,
    /// RPM: `.rpm` packages under `Packages/`, `repodata/` metadata with an
    /// OpenPGP-signed `repomd.xml`, one repository per repo arch.
    Rpm,
}

impl Family {
    /// The name used in configuration (`apk`, `deb`).
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Apk => "apk",
            Family::Deb => "deb",
            Family::Rpm => "rpm",
        }
    }
}

/// Distro names known without configuration, and their family.
const BUILTIN_DISTROS: &[(&str, Family)] = &[
    ("alpine", Family::Apk),
    ("debian", Family::Deb),
    ("ubuntu", Family::Deb),
    ("raspbian", Family::Deb),
    ("devuan", Family::Deb),
    ("fedora", Family::Rpm),
    ("rocky", Family::Rpm),
    ("almalinux", Family::Rpm),
    ("centos-stream", Family::Rpm),
    ("rhel", Family::Rpm),
    ("opensuse", Family::Rpm),
    ("amazonlinux", Family::Rpm),
];

/// The environment variable naming more distros and their family:
/// `name=family` pairs separated by commas (`pureos=deb,kali=deb`).
pub const DISTROS_ENV: &str = "PACKAGES_DISTROS";

/// Every distro this process knows: the built-in ones and those of
/// [`DISTROS_ENV`], read once. Names follow the org name rule; a malformed
/// entry is reported on stderr once and ignored.
fn known_distros() -> &'static [(&'static str, Family)] {
    static KNOWN: std::sync::LazyLock<Vec<(&'static str, Family)>> =
        std::sync::LazyLock::new(|| {
            let mut known = BUILTIN_DISTROS.to_vec();
            let extra = std::env::var(DISTROS_ENV).unwrap_or_default();
            for entry in extra.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                match parse_distro_entry(entry) {
                    Ok((name, family)) => {
                        if !known.iter().any(|(n, _)| *n == name) {
                            // Leaked once per configured name: the set is fixed at start.
                            known.push((Box::leak(name.into_boxed_str()), family));
                        }
                    }
                    Err(reason) => eprintln!("{DISTROS_ENV}: ignoring `{entry}`: {reason}"),
                }
            }
            known
        });
    KNOWN.as_slice()
}

/// One `name=family` entry of [`DISTROS_ENV`].
fn parse_distro_entry(entry: &str) -> Result<(String, Family), String> {
    let (name, family) = entry
        .split_once('=')
        .ok_or("expected `name=family` (family: apk, deb or rpm)")?;
    check_name("distro", name).map_err(|e| e.to_string())?;
    let family = match family {
        "apk" => Family::Apk,
        "deb" => Family::Deb,
        "rpm" => Family::Rpm,
        other => return Err(format!("unknown family `{other}` (apk, deb or rpm)")),
    };
    Ok((name.to_owned(), family))
}

/// A distro: its name as it appears in paths, and its [`Family`].
///
/// Names are `alpine`, `debian`, `ubuntu`, `raspbian`, `devuan`, `fedora`,
/// `rocky`, `almalinux`, `centos-stream`, `rhel`, `opensuse`, `amazonlinux`, plus any
/// configured with [`DISTROS_ENV`]; anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Distro {
    name: &'static str,
    family: Family,
}

impl Distro {
    /// Alpine Linux.
    pub const ALPINE: Distro = Distro {
        name: "alpine",
        family: Family::Apk,
    };

    /// Every distro this process knows: the built-in ones and those of [`DISTROS_ENV`].
    pub fn all() -> impl Iterator<Item = Distro> {
        known_distros().iter().map(|(name, family)| Distro {
            name,
            family: *family,
        })
    }

    /// Parses a distro name.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        known_distros()
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(name, family)| Distro {
                name,
                family: *family,
            })
            .ok_or_else(|| NameError {
                kind: "distro",
                value: value.escape_debug().to_string(),
                reason: "unsupported (alpine, debian, ubuntu, raspbian, devuan, fedora, rocky, almalinux, centos-stream, rhel, opensuse, amazonlinux, or one named in PACKAGES_DISTROS)",
            })
    }

    /// The name used in paths.
    pub fn as_str(self) -> &'static str {
        self.name
    }

    /// The package format family.
    pub fn family(self) -> Family {
        self.family
    }
}

impl fmt::Display for Distro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
