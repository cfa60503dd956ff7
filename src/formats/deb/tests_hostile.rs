//! Hostile and broken inputs: each must be refused with an error that names
//! the problem, never a panic, and never by reading without bound.

use std::io::Write as _;

use super::tests_build::{
    ar, control, data_tar, deb, fixtures, gz, tar, tar_entry, tar_entry_link, xz, zstd,
};
use super::*;

fn refuse(bytes: &[u8]) -> DebError {
    refuse_with(bytes, &DebLimits::default())
}

fn refuse_with(bytes: &[u8], limits: &DebLimits) -> DebError {
    match read_deb(bytes, limits) {
        Ok(pkg) => panic!("accepted: {pkg:?}"),
        Err(e) => e,
    }
}

fn assert_msg(err: &DebError, needle: &str) {
    let msg = err.to_string();
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
}

fn control_tar(text: &str) -> Vec<u8> {
    tar(&[tar_entry(b"./control", b'0', text.as_bytes())])
}

#[test]
fn truncated_at_every_offset_is_refused() {
    let bytes = deb(&control(""), &data_tar());
    for cut in 0..bytes.len() {
        let err = refuse(&bytes[..cut]);
        assert!(
            matches!(
                err,
                DebError::Truncated(_) | DebError::NotDeb(_) | DebError::Member { .. }
            ),
            "cut at {cut}: {err}"
        );
    }
    // A real package too, at a stride (each read inflates up to the cut).
    let real = std::fs::read(&fixtures()[4]).expect("fixture");
    for cut in (0..real.len()).step_by(97) {
        refuse(&real[..cut]);
    }
}

#[test]
fn wrong_magic_and_first_member() {
    assert_msg(&refuse(b""), "empty");
    assert_msg(&refuse(b"!<arch>\n"), "no debian-binary");
    let mut bytes = deb(&control(""), &data_tar());
    bytes[1] = b'?';
    assert_msg(&refuse(&bytes), "ar magic");
    let tar_gz = gz(&data_tar());
    assert_msg(&refuse(&tar_gz), "ar magic");
    let bytes = ar(&[
        ("control.tar", &control_tar(&control(""))),
        ("debian-binary", b"2.0\n"),
    ]);
    assert_msg(&refuse(&bytes), "not \"debian-binary\"");
    let bytes = ar(&[("debian-binary", b"3.0\n")]);
    assert_msg(&refuse(&bytes), "not 2.x");
    let bytes = ar(&[("debian-binary", b"2.0")]);
    assert_msg(&refuse(&bytes), "not 2.x");
}

#[test]
fn member_order_and_presence() {
    let ctl = control_tar(&control(""));
    let data = data_tar();
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("data.tar", &data),
        ("control.tar", &ctl),
    ]);
    assert_msg(&refuse(&bytes), "comes before control.tar");
    let bytes = ar(&[("debian-binary", b"2.0\n"), ("data.tar", &data)]);
    assert_msg(&refuse(&bytes), "comes before control.tar");
    let bytes = ar(&[("debian-binary", b"2.0\n"), ("control.tar", &ctl)]);
    assert_msg(&refuse(&bytes), "\"data.tar\": missing");
    let bytes = ar(&[("debian-binary", b"2.0\n")]);
    assert_msg(&refuse(&bytes), "\"control.tar\": missing");
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &ctl),
        ("control.tar", &ctl),
    ]);
    assert_msg(&refuse(&bytes), "second control");
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &ctl),
        ("data.tar", &data),
        ("data.tar", &data),
    ]);
    assert_msg(&refuse(&bytes), "after data.tar");
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("extra", b"x"),
        ("control.tar", &ctl),
    ]);
    assert_msg(&refuse(&bytes), "unknown member");
    // A control.tar without `control`.
    let no_control = tar(&[tar_entry(b"./md5sums", b'0', b"")]);
    let bytes = ar(&[("debian-binary", b"2.0\n"), ("control.tar", &no_control)]);
    assert_msg(&refuse(&bytes), "no `control` file");
}

#[test]
fn unsupported_compressions() {
    let ctl = control_tar(&control(""));
    for (name, needle) in [
        ("data.tar.bz2", ".bz2 compression is refused"),
        ("data.tar.lzma", ".lzma compression is refused"),
        ("data.tar.lz4", "unknown compression"),
    ] {
        let bytes = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", &ctl),
            (name, b"whatever"),
        ]);
        assert_msg(&refuse(&bytes), needle);
    }
    // Bytes that are not what the name says.
    let bytes = ar(&[("debian-binary", b"2.0\n"), ("control.tar.xz", &gz(&ctl))]);
    assert!(matches!(refuse(&bytes), DebError::Compression { .. }));
    let bytes = ar(&[("debian-binary", b"2.0\n"), ("control.tar.zst", &gz(&ctl))]);
    let err = refuse(&bytes);
    assert!(matches!(err, DebError::Compression { .. }), "{err}");
    assert_msg(&err, "not a zstd frame");
    let mut corrupt = gz(&ctl);
    let n = corrupt.len();
    corrupt[n - 6] ^= 0xff; // the CRC-32
    let bytes = ar(&[("debian-binary", b"2.0\n"), ("control.tar.gz", &corrupt)]);
    assert!(matches!(refuse(&bytes), DebError::Compression { .. }));
}

#[test]
fn oversized_control_and_too_many_entries() {
    let limits = DebLimits {
        max_control_file: 1000,
        ..DebLimits::default()
    };
    let big = control(&format!("X-Big: {}\n", "y".repeat(2000)));
    let err = refuse_with(&deb(&big, &data_tar()), &limits);
    assert!(matches!(err, DebError::Limit { limit: 1000, .. }), "{err}");
    let limits = DebLimits {
        max_data_entries: 2,
        ..DebLimits::default()
    };
    let err = refuse_with(&deb(&control(""), &data_tar()), &limits);
    assert_msg(&err, "too many entries");
}

#[test]
fn decompression_bomb_is_stopped_at_the_cap() {
    // 40 MiB of zeros in one file gzip to about 40 KiB: ratio about 1000.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let size = 40u64 << 20;
    let mut header = tar_entry(b"./zeros", b'0', b"");
    header[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header[..512].iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    enc.write_all(&header).expect("gzip");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..40 {
        enc.write_all(&zeros).expect("gzip");
    }
    enc.write_all(&[0u8; 1024]).expect("gzip");
    let bomb = enc.finish().expect("gzip");
    assert!(bomb.len() < 200 << 10, "{}", bomb.len());
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &gz(&control_tar(&control("")))),
        ("data.tar.gz", &bomb),
    ]);
    let limits = DebLimits {
        ratio_floor: 1 << 20,
        ..DebLimits::default()
    };
    let err = refuse_with(&bytes, &limits);
    assert!(matches!(err, DebError::Limit { .. }), "{err}");
    assert_msg(&err, "decompression bomb");
    // An absolute cap too, whatever the ratio.
    let limits = DebLimits {
        max_data_bytes: 10 << 20,
        ..DebLimits::default()
    };
    let err = refuse_with(&bytes, &limits);
    assert!(
        matches!(err, DebError::Limit { limit, .. } if limit == 10 << 20),
        "{err}"
    );
    // Under the default limits (64 MiB floor) the same package is fine.
    read_deb(&bytes[..], &DebLimits::default()).expect("40 MiB of zeros is allowed");
}

#[test]
fn unsafe_paths_and_types_in_data() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (tar_entry(b"../etc/passwd", b'0', b"x"), "`..` component"),
        (
            tar_entry(b"./usr/../../etc/x", b'0', b"x"),
            "`..` component",
        ),
        (tar_entry(b"/etc/passwd", b'0', b"x"), "absolute path"),
        (tar_entry(b"./usr/..", b'5', b""), "`..` component"),
        (
            tar_entry_link(b"./usr/x", b'1', b"../../etc/shadow", b""),
            "hard link target",
        ),
        (tar_entry(b"./contig", b'7', b""), "tar type '7'"),
        (tar_entry(b"./sparse", b'S', b""), "tar type 'S'"),
        (
            [
                tar_entry(b"././@LongLink", b'L', b"../escape\0"),
                tar_entry(b"./short", b'0', b""),
            ]
            .concat(),
            "`..` component",
        ),
        (
            [
                tar_entry(b"./PaxHeaders/x", b'x', b"20 path=/etc/shadow\n"),
                tar_entry(b"./x", b'0', b""),
            ]
            .concat(),
            "pax extended header",
        ),
        (
            tar_entry(b"././@LongLink", b'L', &[b'a'; 5000]),
            "GNU long name of 5000 bytes",
        ),
    ];
    for (entries, needle) in cases {
        let data = tar(&[tar_entry(b"./", b'5', b""), entries]);
        let err = refuse(&deb(&control(""), &data));
        assert!(matches!(err, DebError::Tar { .. }), "{needle}: {err}");
        assert_msg(&err, needle);
    }
    // Symlinks may point anywhere, devices and FIFOs are fine (dpkg accepts them).
    let data = tar(&[
        tar_entry_link(b"./usr/lib/x", b'2', b"/etc/alternatives/x", b""),
        tar_entry_link(b"./usr/lib/y", b'2', b"../../y", b""),
        tar_entry(b"./dev/null", b'3', b""),
        tar_entry(b"./dev/sda", b'4', b""),
        tar_entry(b"./run/fifo", b'6', b""),
    ]);
    read_deb(&deb(&control(""), &data)[..], &DebLimits::default()).expect("accepted");
}

#[test]
fn corrupt_tar_headers() {
    let mut data = data_tar();
    data[512 + 10] ^= 1; // a byte of the second header's name
    assert_msg(&refuse(&deb(&control(""), &data)), "checksum mismatch");
    let bytes = deb(&control(""), b"not a tar at all, but long enough? no");
    assert_msg(&refuse(&bytes), "ends inside a 512-byte header");
    // The data tar ends inside a file's content.
    let data = tar_entry(b"./usr/hello", b'0', &[b'x'; 2000]);
    assert_msg(
        &refuse(&deb(&control(""), &data[..1024])),
        "ends inside an entry's data",
    );
}

#[test]
fn bad_control_stanzas() {
    let base = "Package: tiny\nVersion: 1.0-1\nArchitecture: amd64\n";
    let cases: Vec<(String, &str)> = vec![
        (base.replace('\n', "\r\n"), "carriage return"),
        (
            format!("{base}Depends: a\n\nPackage: second\n"),
            "more than one stanza",
        ),
        (
            format!("{base}Depends: a\n \t \nX: y\n"),
            "more than one stanza",
        ),
        (format!("{base}package: again\n"), "duplicate field package"),
        (format!("{base}no colon here\n"), "neither a field"),
        (format!("{base}: empty\n"), "empty name"),
        (format!("{base}Bad Name: x\n"), "printable ASCII"),
        (format!("{base}#comment: x\n"), "starts with `#`"),
        (
            format!(" leading continuation\n{base}"),
            "continuation line before",
        ),
        (format!("{base}X: \0\n"), "NUL"),
        (format!("{base}X: a\x0b\n"), "control character 0x0b"),
        (
            "Version: 1\nArchitecture: all\n".to_owned(),
            "Package: missing",
        ),
        (
            "Package: p1\nArchitecture: all\n".to_owned(),
            "Version: missing",
        ),
        (
            "Package: p1\nVersion: 1\n".to_owned(),
            "Architecture: missing",
        ),
        (base.replace("tiny", "Tiny"), "not a valid package name"),
        (base.replace("tiny", "t_y"), "not a valid package name"),
        (base.replace("1.0-1", "a1.0"), "does not start with a digit"),
        (base.replace("1.0-1", "1.0-"), "empty revision"),
        (base.replace("1.0-1", "x:1.0"), "epoch"),
        (base.replace("1.0-1", "1.0_1"), "invalid character '_'"),
        (
            base.replace("amd64", "any"),
            "not a binary package architecture",
        ),
        (
            base.replace("amd64", "AMD64"),
            "not a binary package architecture",
        ),
        (format!("{base}Installed-Size: 12k\n"), "not a number"),
        (
            format!("{base}Source: Bad\n"),
            "not a valid source package name",
        ),
        (format!("{base}Source: src (1.0\n"), "neither `name`"),
        (format!("{base}Source: src (a1)\n"), "not valid"),
        (
            base.replace("Version: 1.0-1", "Version: 1.0-1\n continued"),
            "several lines",
        ),
        (base.replace("tiny", &"t".repeat(250)), "more than 255"),
    ];
    for (text, needle) in cases {
        let err = refuse(&deb(&text, &data_tar()));
        assert!(
            matches!(err, DebError::Control { .. } | DebError::Field { .. }),
            "{needle}: {err}"
        );
        assert_msg(&err, needle);
    }
    let mut latin1 = control("").into_bytes();
    latin1.extend_from_slice(b"X-Name: caf\xe9\n");
    let control_tar = tar(&[tar_entry(b"./control", b'0', &latin1)]);
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &control_tar),
        ("data.tar", &data_tar()),
    ]);
    assert_msg(&refuse(&bytes), "not UTF-8");
}

#[test]
fn ar_structure_errors() {
    let good = deb(&control(""), &data_tar());
    let mut bad = good.clone();
    bad[8 + 58] = b'x'; // the first header's terminator
    assert!(matches!(refuse(&bad), DebError::Ar { offset: 8, .. }));
    let mut bad = good.clone();
    bad[8 + 48] = b'z'; // the first member's size
    assert_msg(&refuse(&bad), "not a decimal number");
    // Odd member without its `\n` padding.
    let mut odd = ar(&[("debian-binary", b"2.0\n"), ("_x", b"abc")]);
    let n = odd.len();
    odd[n - 1] = b'Q';
    assert_msg(&refuse(&odd), "padding byte");
    // Junk after the last member.
    let mut junk = good.clone();
    junk.extend_from_slice(b"garbage");
    assert!(matches!(refuse(&junk), DebError::Truncated(_)));
}

/// Mutated fixtures, many times: errors or packages, never a panic or a hang.
#[test]
fn mutated_fixtures_never_panic() {
    let files: Vec<Vec<u8>> = fixtures()
        .iter()
        .map(|p| std::fs::read(p).expect("fixture"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let built: Vec<Vec<u8>> = ["zstd", "gzip"]
        .iter()
        .map(|z| {
            let path = super::tests_build::dpkg_build(dir.path(), &control(""), z);
            std::fs::read(path).expect("built")
        })
        .collect();
    let small = deb(&control(""), &data_tar());
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut accepted = 0;
    for round in 0..2000 {
        let mut bytes = match round % 4 {
            0 => files[round % files.len()].clone(),
            1 => built[round / 4 % built.len()].clone(),
            _ => small.clone(),
        };
        // Mutations concentrate on the start: headers and control.
        let span = bytes
            .len()
            .min(if round % 2 == 0 { 2048 } else { usize::MAX });
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % span;
            bytes[at] = next() as u8;
        }
        if next() % 5 == 0 {
            let cut = (next() as usize) % bytes.len();
            bytes.truncate(cut);
        }
        if read_deb(&bytes[..], &DebLimits::default()).is_ok() {
            accepted += 1;
        }
    }
    // Some mutations hit bytes nobody checks (mtimes, file contents).
    assert!(accepted < 2000);
}

fn with_data(name: &str, data: &[u8]) -> Vec<u8> {
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &gz(&control_tar(&control("")))),
        (name, data),
    ])
}

#[test]
fn zstd_frames_windows_and_checksums() {
    let data = data_tar();
    let (a, b) = data.split_at(1024);
    // Two frames: both are read (the third entry is in the second frame).
    let two = [zstd(a, &[]), zstd(b, &[])].concat();
    let bytes = with_data("data.tar.zst", &two);
    read_deb(&bytes[..], &DebLimits::default()).expect("two frames");
    let limits = DebLimits {
        max_data_entries: 2,
        ..DebLimits::default()
    };
    assert_msg(&refuse_with(&bytes, &limits), "too many entries");
    // A 256 MiB window (`--long=28`) is refused, as libzstd refuses it by default.
    let long = with_data("data.tar.zst", &zstd(&data, &["--long=28"]));
    let err = refuse(&long);
    assert!(matches!(err, DebError::Compression { .. }), "{err}");
    assert_msg(&err, "268435456-byte window");
    // A corrupt content checksum (the frame's last 4 bytes).
    let mut frame = zstd(&data, &[]);
    let n = frame.len();
    frame[n - 1] ^= 0xff;
    assert_msg(
        &refuse(&with_data("data.tar.zst", &frame)),
        "checksum mismatch",
    );
    // Garbage after the frame.
    let mut junk = zstd(&data, &[]);
    junk.extend_from_slice(b"garbage!");
    assert!(matches!(
        refuse(&with_data("data.tar.zst", &junk)),
        DebError::Compression { .. }
    ));
}

#[test]
fn trailing_garbage_after_xz_and_gzip_is_refused() {
    let data = data_tar();
    for (name, mut compressed) in [("data.tar.xz", xz(&data)), ("data.tar.gz", gz(&data))] {
        read_deb(&with_data(name, &compressed)[..], &DebLimits::default()).expect(name);
        compressed.extend_from_slice(b"garbage!");
        let err = refuse(&with_data(name, &compressed));
        assert!(matches!(err, DebError::Compression { .. }), "{name}: {err}");
    }
}
