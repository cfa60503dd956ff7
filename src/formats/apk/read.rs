//! Reading an `.apk` once, as a stream: the three gzip members in turn, with
//! every check a client would make later (and more).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest as _, Sha1};
use std::io::{BufRead, Read};

use super::paths::TreeCheck;
use super::pkginfo::{PkgInfo, parse_pkginfo};
use super::stream::{Budget, GZIP_MAGIC, Member, MemberDigest, Part, StoredBytes, start_member};
use super::{ApkError, ApkLimits, ApkPackage, DATA_BYTES_PER_HEADER, DATA_SLACK_BYTES, ustar};

/// Reads and checks one `.apk`, streaming: splits the gzip members, parses
/// `.PKGINFO`, computes `C:` and the file's SHA-256, verifies the data member
/// against `datahash` and each file's `APK-TOOLS.checksum.SHA1`, and refuses
/// unsafe paths and members that inflate beyond `limits`.
///
/// Memory stays bounded whatever the input: one read buffer, one tar block,
/// one `.PKGINFO` line (at most [`ApkLimits::max_pkginfo_line`]). Inflated
/// sizes are capped while reading: the signature and control members together
/// at [`ApkLimits::max_control_bytes`]; the data member at `.PKGINFO` `size` +
/// [`DATA_SLACK_BYTES`] + [`DATA_BYTES_PER_HEADER`] per tar header, and never
/// beyond [`ApkLimits::max_data_bytes`].
pub fn read_package<R: Read>(reader: R, limits: &ApkLimits) -> Result<ApkPackage, ApkError> {
    let mut stored = StoredBytes::new(reader);

    // 1. Signature member: only `.SIGN.*` entries, tar end blocks cut.
    start_member(&mut stored, Part::Signature)?;
    stored.begin_member(MemberDigest::None);
    let sig_inflated = {
        let budget = Budget::Control(limits.max_control_bytes);
        let mut tar = ustar::Reader::new(
            Member::new(
                &mut stored,
                Part::Signature,
                budget,
                limits.max_control_bytes,
            ),
            Part::Signature.name(),
        );
        read_signature_member(&mut tar)?;
        tar.source_mut().finish()?
    };

    // 2. Control member: `.PKGINFO` and scripts; its stored bytes give `C:`.
    start_member(&mut stored, Part::Control)?;
    stored.begin_member(MemberDigest::Sha1);
    let info = {
        let budget = Budget::Control(limits.max_control_bytes);
        let left = limits.max_control_bytes.saturating_sub(sig_inflated);
        let mut tar = ustar::Reader::new(
            Member::new(&mut stored, Part::Control, budget, left),
            Part::Control.name(),
        );
        let info = read_control_member(&mut tar, limits)?;
        tar.source_mut().finish()?;
        info
    };
    let control_sha1 = std::mem::take(&mut stored.member_sha1).finalize();
    let mut record = info.validate()?;

    // 3. Data member: checked against `datahash` and per-file SHA-1s, its
    //    tree as apk would install it, and `size` against what it holds.
    start_member(&mut stored, Part::Data)?;
    stored.begin_member(MemberDigest::Sha256);
    let mut tree = TreeCheck::new(limits.max_entries);
    {
        let budget = Budget::Data {
            max: limits.max_data_bytes,
            size: record.installed_size,
        };
        let limit = record
            .installed_size
            .saturating_add(DATA_SLACK_BYTES)
            .min(limits.max_data_bytes);
        let mut member = Member::new(&mut stored, Part::Data, budget, limit);
        member.per_header = DATA_BYTES_PER_HEADER;
        let mut tar = ustar::Reader::new(member, Part::Data.name());
        read_data_member(&mut tar, &mut tree)?;
        tar.source_mut().finish()?;
    }
    let data_sha256 = hex::encode(std::mem::take(&mut stored.member_sha256).finalize());
    if data_sha256 != record.datahash {
        return Err(ApkError::Corrupt(format!(
            "the data member does not match .PKGINFO datahash (datahash {}, data member SHA-256 {data_sha256})",
            record.datahash
        )));
    }
    tree.check_installed_size(record.installed_size)?;

    // 4. Nothing after the data member.
    let rest = stored.fill_buf()?;
    if !rest.is_empty() {
        return Err(ApkError::Format(if rest[0] == GZIP_MAGIC[0] {
            "a 4th gzip member follows the data member (an .apk has exactly three)".to_owned()
        } else {
            "trailing bytes after the data member".to_owned()
        }));
    }

    record.checksum = format!("Q1{}", BASE64.encode(control_sha1));
    record.file_size = stored.total;
    record.sha256 = hex::encode(stored.file_sha256.finalize());
    Ok(ApkPackage { record })
}

fn read_signature_member<S: ustar::Source>(tar: &mut ustar::Reader<S>) -> Result<(), ApkError> {
    let mut signatures = 0;
    loop {
        match tar.next()? {
            ustar::Next::Entry(entry) => {
                if entry.name == b".PKGINFO" {
                    return Err(ApkError::Format(
                        "the first gzip member holds .PKGINFO, not a signature: unsigned packages are not supported"
                            .to_owned(),
                    ));
                }
                if !entry.name.starts_with(b".SIGN.") || entry.kind != ustar::Kind::Regular {
                    return Err(ApkError::Format(format!(
                        "signature member: unexpected entry {:?} (only .SIGN.* files belong there)",
                        entry.display_name()
                    )));
                }
                signatures += 1;
            }
            ustar::Next::ZeroBlock => {
                return Err(ApkError::Format(
                    "signature member: the tar keeps its end-of-archive blocks, so apk would stop \
                     reading there (the tar must be cut)"
                        .to_owned(),
                ));
            }
            ustar::Next::Eof => break,
        }
    }
    if signatures == 0 {
        return Err(ApkError::Format(
            "signature member: no .SIGN.* entry".to_owned(),
        ));
    }
    Ok(())
}

fn read_control_member<S: ustar::Source>(
    tar: &mut ustar::Reader<S>,
    limits: &ApkLimits,
) -> Result<PkgInfo, ApkError> {
    let mut info: Option<PkgInfo> = None;
    loop {
        match tar.next()? {
            ustar::Next::Entry(entry) => {
                let name = entry.display_name();
                if entry.name == b".PKGINFO" {
                    if entry.kind != ustar::Kind::Regular {
                        return Err(ApkError::Format(
                            "control member: .PKGINFO is not a regular file".to_owned(),
                        ));
                    }
                    if info.is_some() {
                        return Err(ApkError::Format(
                            "control member: two .PKGINFO entries".to_owned(),
                        ));
                    }
                    info = Some(parse_pkginfo(tar, limits)?);
                } else if entry.name == b".INSTALL" {
                    return Err(ApkError::Format(
                        "control member: .INSTALL is an apk v1 script, not supported by apk 2 or 3"
                            .to_owned(),
                    ));
                } else if !entry.name.starts_with(b".") || entry.name.contains(&b'/') {
                    return Err(ApkError::Format(format!(
                        "control member: unexpected entry {name:?} (only .PKGINFO and dot-file scripts belong there)"
                    )));
                }
            }
            ustar::Next::ZeroBlock => {
                return Err(ApkError::Format(
                    "control member: the tar keeps its end-of-archive blocks, so apk would stop \
                     reading before the data (the tar must be cut)"
                        .to_owned(),
                ));
            }
            ustar::Next::Eof => break,
        }
    }
    info.ok_or_else(|| ApkError::Format("control member: no .PKGINFO".to_owned()))
}

/// Reads the data member: every entry goes through `tree` (paths, kinds,
/// links), every regular file's content is checked against its
/// `APK-TOOLS.checksum.SHA1`.
fn read_data_member<S: ustar::Source>(
    tar: &mut ustar::Reader<S>,
    tree: &mut TreeCheck,
) -> Result<(), ApkError> {
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let entry = match tar.next()? {
            ustar::Next::Entry(entry) => entry,
            ustar::Next::ZeroBlock => {
                // End of archive: a second zero block (or the end) must follow.
                return match tar.next()? {
                    ustar::Next::Entry(entry) => Err(ApkError::Format(format!(
                        "data member: entry {:?} after an end-of-archive block",
                        entry.display_name()
                    ))),
                    ustar::Next::ZeroBlock | ustar::Next::Eof => Ok(()),
                };
            }
            ustar::Next::Eof => return Ok(()),
        };
        // Symlink targets are not checked: absolute targets (`/bin/busybox`)
        // and `..` (`../lib/libfoo.so`) are normal, and they are resolved on
        // the client at run time; writing *through* one is what `tree` refuses.
        tree.entry(&entry)?;
        if entry.kind != ustar::Kind::Regular {
            continue;
        }
        let name = entry.display_name();
        let Some(expected) = entry.sha1 else {
            return Err(ApkError::Format(format!(
                "{name}: regular file without an {} pax header (apk 3 refuses to install it)",
                ustar::PAX_SHA1
            )));
        };
        let mut hasher = Sha1::new();
        loop {
            let n = tar.read_data(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let actual: [u8; 20] = hasher.finalize().into();
        if actual != expected {
            return Err(ApkError::Corrupt(format!(
                "{name}: content SHA-1 {} does not match its {} {}",
                hex::encode(actual),
                ustar::PAX_SHA1,
                hex::encode(expected)
            )));
        }
    }
}
