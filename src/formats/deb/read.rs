//! Reading a `.deb` once, as a stream, with the member order and checks of
//! dpkg (`src/deb/extract.c`).

use std::io::{self, BufReader, Read};

use super::ar::{HEADER, Hashing, MAGIC, MemberHeader, MemberReader, parse_header};
use super::control::{parse_control, validate};
use super::decompress::{Capped, Compression, decoder, inflated_cap};
use super::tar::{Kind, Walk, Walker};
use super::{DebError, DebLimits, DebPackage};

/// Largest `debian-binary` member we read (it holds `2.0\n`).
const MAX_DEBIAN_BINARY: u64 = 1024;

/// Reads and checks one `.deb`, streaming: the `ar` members in dpkg's order
/// (`debian-binary`, `control.tar*`, `data.tar*`; members whose name starts
/// with `_` skipped), the `control` stanza, every header of `data.tar`
/// (contents are decompressed and discarded, never kept), and the size and
/// MD5, SHA-1, SHA-256, SHA-512 of the whole file.
///
/// Memory stays bounded whatever the input: decoder state (xz capped at
/// [`DebLimits::xz_memory`], zstd windows at [`DebLimits::zstd_window`]),
/// one tar block, one long name, and the `control` file (at most
/// [`DebLimits::max_control_file`]). Inflated sizes and entry counts are
/// capped by `limits`.
pub fn read_deb<R: Read>(reader: R, limits: &DebLimits) -> Result<DebPackage, DebError> {
    let mut file = Hashing::new(BufReader::with_capacity(64 << 10, reader));
    let mut magic = [0u8; 8];
    if !file.read_full(&mut magic, "the ar magic")? {
        return Err(DebError::NotDeb("the file is empty".to_owned()));
    }
    if &magic != MAGIC {
        return Err(DebError::NotDeb(
            "it does not start with the ar magic `!<arch>\\n`".to_owned(),
        ));
    }

    let mut seen_binary = false;
    let mut fields: Option<Vec<(String, String)>> = None;
    let mut data_seen = false;
    loop {
        let offset = file.total;
        let mut raw = [0u8; HEADER];
        if !file.read_full(&mut raw, "a member header")? {
            break;
        }
        let header = parse_header(&raw, offset)?;
        let name = header.name.clone();
        let member_err = |problem: String| DebError::Member {
            member: name.clone(),
            problem,
        };
        if !seen_binary {
            if name != "debian-binary" {
                return Err(DebError::NotDeb(format!(
                    "the first member is {name:?}, not \"debian-binary\""
                )));
            }
            read_debian_binary(&mut file, &header)?;
            seen_binary = true;
        } else if name.starts_with('_') {
            // dpkg skips members starting with `_` (deb(5)).
            skip_member(&mut file, &header)?;
        } else if data_seen {
            return Err(member_err(
                "unexpected member after data.tar (only `_` members may follow)".to_owned(),
            ));
        } else if let Some(suffix) = name.strip_prefix("control.tar") {
            if fields.is_some() {
                return Err(member_err("a second control member".to_owned()));
            }
            let compression = Compression::from_suffix(suffix).map_err(&member_err)?;
            let text = read_tar_member(
                &mut file,
                &header,
                compression,
                limits.max_control_tar_bytes,
                limits,
                |tar| find_control(tar, limits),
            )?
            .ok_or_else(|| member_err("no `control` file in it".to_owned()))?;
            fields = Some(parse_control(&text)?);
        } else if let Some(suffix) = name.strip_prefix("data.tar") {
            if fields.is_none() {
                return Err(member_err(
                    "comes before control.tar (dpkg requires debian-binary, control.tar, data.tar in that order)"
                        .to_owned(),
                ));
            }
            let compression = Compression::from_suffix(suffix).map_err(&member_err)?;
            read_tar_member(
                &mut file,
                &header,
                compression,
                limits.max_data_bytes,
                limits,
                |tar| walk_data(tar, limits),
            )?;
            data_seen = true;
        } else {
            return Err(member_err(format!(
                "unknown member before {} (dpkg refuses it; only `_` members may be added)",
                if fields.is_none() {
                    "control.tar"
                } else {
                    "data.tar"
                }
            )));
        }
        if header.size % 2 == 1 {
            let mut pad = [0u8; 1];
            if !file.read_full(&mut pad, "padding")? {
                return Err(DebError::Truncated(format!(
                    "the padding after member {name:?}"
                )));
            }
            if pad[0] != b'\n' {
                return Err(DebError::Ar {
                    offset: file.total - 1,
                    problem: format!("the padding byte after member {name:?} is not `\\n`"),
                });
            }
        }
    }
    let missing = |member: &str, problem: &str| DebError::Member {
        member: member.to_owned(),
        problem: problem.to_owned(),
    };
    if !seen_binary {
        return Err(DebError::NotDeb(
            "an empty ar archive (no debian-binary member)".to_owned(),
        ));
    }
    let Some(fields) = fields else {
        return Err(missing("control.tar", "missing"));
    };
    if !data_seen {
        return Err(missing("data.tar", "missing"));
    }
    let keys = validate(&fields)?;
    let digests = file.finish();
    Ok(DebPackage {
        control: fields,
        package: keys.package,
        version: keys.version,
        architecture: keys.architecture,
        source: keys.source,
        size: digests.size,
        md5: digests.md5,
        sha1: digests.sha1,
        sha256: digests.sha256,
        sha512: digests.sha512,
    })
}

fn read_debian_binary<R: Read>(
    file: &mut Hashing<R>,
    header: &MemberHeader,
) -> Result<(), DebError> {
    let bad = |problem: String| DebError::Member {
        member: "debian-binary".to_owned(),
        problem,
    };
    if header.size > MAX_DEBIAN_BINARY {
        return Err(bad(format!(
            "{} bytes, more than the {MAX_DEBIAN_BINARY} allowed (it holds `2.0\\n`)",
            header.size
        )));
    }
    let mut content = vec![0u8; usize::try_from(header.size).expect("at most 1024")];
    if !content.is_empty() && !file.read_full(&mut content, "member debian-binary")? {
        return Err(DebError::Truncated("member debian-binary".to_owned()));
    }
    let first = content.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let ok = content.contains(&b'\n')
        && first
            .strip_prefix(b"2.")
            .is_some_and(|minor| !minor.is_empty() && minor.iter().all(u8::is_ascii_digit));
    if !ok {
        return Err(bad(format!(
            "format version {:?} is not 2.x (dpkg reads only format 2.x, `2.0\\n`)",
            String::from_utf8_lossy(&content)
        )));
    }
    Ok(())
}

fn skip_member<R: Read>(file: &mut Hashing<R>, header: &MemberHeader) -> Result<(), DebError> {
    let mut member = MemberReader::new(file, header.size);
    let complete = match member.drain() {
        Ok(complete) => complete,
        Err(_) if member.truncated => false,
        Err(e) => return Err(e.into()),
    };
    if !complete {
        return Err(DebError::Truncated(format!("member {:?}", header.name)));
    }
    Ok(())
}

/// Decompresses one tar member through `walk`, capping inflated bytes, then
/// drains what the walk left (so decoders verify their checksums) and the
/// member's remaining stored bytes. Errors name the member and say whether
/// the file ended, a cap was reached, the decoder failed or the tar is bad.
fn read_tar_member<R: Read, T>(
    file: &mut Hashing<R>,
    header: &MemberHeader,
    compression: Compression,
    max: u64,
    limits: &DebLimits,
    walk: impl FnOnce(&mut dyn Read) -> Result<T, Walk>,
) -> Result<T, DebError> {
    let name = header.name.as_str();
    let cap = inflated_cap(max, header.size, limits);
    let mut member = MemberReader::new(file, header.size);
    let (result, exceeded) = match decoder(compression, &mut member, limits) {
        // The decoder refused the stream's header: a compression error.
        Err(problem) => (
            Err(Walk::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                problem,
            ))),
            false,
        ),
        Ok(dec) => {
            let mut capped = Capped::new(dec, cap);
            let result = walk(&mut capped).and_then(|t| {
                io::copy(&mut capped, &mut io::sink())?;
                Ok(t)
            });
            (result, capped.exceeded)
        }
    };
    let truncated = || DebError::Truncated(format!("member {name:?}"));
    if member.truncated {
        return Err(truncated());
    }
    let value = match result {
        Ok(value) => value,
        Err(_) if exceeded => {
            return Err(DebError::Limit {
                member: name.to_owned(),
                problem: format!(
                    "inflates past {cap} bytes (a decompression bomb, or a package larger than \
                     allowed: at most {} times its compressed size, or {} bytes)",
                    limits.max_ratio, max
                ),
                limit: cap,
            });
        }
        Err(Walk::Limit(problem, limit)) => {
            return Err(DebError::Limit {
                member: name.to_owned(),
                problem,
                limit,
            });
        }
        Err(Walk::Bad(problem)) => {
            return Err(DebError::Tar {
                member: name.to_owned(),
                problem,
            });
        }
        Err(Walk::Io(e)) => {
            return Err(DebError::Compression {
                member: name.to_owned(),
                problem: e.to_string(),
            });
        }
    };
    match member.drain() {
        Ok(true) => Ok(value),
        Ok(false) => Err(truncated()),
        Err(_) if member.truncated => Err(truncated()),
        Err(e) => Err(e.into()),
    }
}

/// Finds `control` in `control.tar` and returns its bytes.
fn find_control(src: &mut dyn Read, limits: &DebLimits) -> Result<Option<Vec<u8>>, Walk> {
    let mut tar = Walker::new(src);
    let mut text = None;
    let mut entries = 0u64;
    while let Some(entry) = tar.next_entry()? {
        entries += 1;
        if entries > limits.max_control_entries {
            return Err(Walk::Limit(
                "too many entries".to_owned(),
                limits.max_control_entries,
            ));
        }
        if entry.bare_name() != b"control" {
            continue;
        }
        if entry.kind != Kind::Regular {
            return Err(Walk::Bad(format!(
                "entry {:?} is not a regular file",
                entry.display()
            )));
        }
        if text.is_some() {
            return Err(Walk::Bad("two `control` files".to_owned()));
        }
        if entry.size > limits.max_control_file {
            return Err(Walk::Limit(
                format!("the control file is {} bytes", entry.size),
                limits.max_control_file,
            ));
        }
        text = Some(tar.read_data()?);
    }
    Ok(text)
}

/// Walks every header of `data.tar`, skipping contents (they still pass
/// through the decoder and the cap).
fn walk_data(src: &mut dyn Read, limits: &DebLimits) -> Result<(), Walk> {
    let mut tar = Walker::new(src);
    let mut entries = 0u64;
    while tar.next_entry()?.is_some() {
        entries += 1;
        if entries > limits.max_data_entries {
            return Err(Walk::Limit(
                "too many entries".to_owned(),
                limits.max_data_entries,
            ));
        }
    }
    Ok(())
}
