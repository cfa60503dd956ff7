//! Builders for test packages: `dpkg-deb --build` for real ones, and raw
//! `ar`/tar writers for the broken ones dpkg-deb refuses to make.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixtures copied from Debian 12 (see `tests/fixtures/deb/README.md`).
pub fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deb");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "fixtures missing in {}", dir.display());
    files
}

/// Runs a tool and returns its stdout; panics (fails the test) if the tool is
/// missing or fails: these tests must not pass without dpkg.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} ({e}); install it with `apt-get install -y dpkg-dev`")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What `dpkg-scanpackages` prints for `deb`, placed at `pool/<name>` in a
/// fresh directory.
pub fn scanpackages(deb: &Path) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("pool")).expect("mkdir");
    let name = deb.file_name().expect("file name");
    std::fs::copy(deb, dir.path().join("pool").join(name)).expect("copy");
    let out = run(Command::new("dpkg-scanpackages")
        .arg("-m")
        .arg("pool")
        .current_dir(dir.path()));
    String::from_utf8(out).expect("UTF-8")
}

/// Builds a package with `dpkg-deb --build -Z<compression>` from a control
/// text and a few files, returns the `.deb` path (inside `dir`).
pub fn dpkg_build(dir: &Path, control: &str, compression: &str) -> PathBuf {
    let root = dir.join(format!("root-{compression}"));
    std::fs::create_dir_all(root.join("DEBIAN")).expect("mkdir");
    std::fs::write(root.join("DEBIAN/control"), control).expect("control");
    let deep = root.join("usr/share/doc/x".repeat(12));
    std::fs::create_dir_all(&deep).expect("deep dir");
    std::fs::write(deep.join("a-long-name-past-100-bytes"), b"deep\n").expect("deep file");
    std::fs::create_dir_all(root.join("usr/bin")).expect("mkdir");
    std::fs::write(root.join("usr/bin/tool"), vec![b'x'; 5000]).expect("file");
    std::os::unix::fs::symlink("tool", root.join("usr/bin/tool-link")).expect("symlink");
    run(Command::new("mkfifo").arg(root.join("usr/bin/fifo")));
    let out = dir.join(format!("pkg-{compression}.deb"));
    run(Command::new("dpkg-deb")
        .arg("--root-owner-group")
        .arg(format!("-Z{compression}"))
        .arg("--build")
        .arg(&root)
        .arg(&out));
    out
}

/// An `ar` archive of `members`, as dpkg-deb writes it.
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            100644,
            data.len()
        );
        assert_eq!(header.len(), 60);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// One raw GNU tar entry (header and padded data), any name and type.
pub fn tar_entry(name: &[u8], typeflag: u8, data: &[u8]) -> Vec<u8> {
    tar_entry_link(name, typeflag, b"", data)
}

/// One raw tar entry with a link target.
pub fn tar_entry_link(name: &[u8], typeflag: u8, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..265].copy_from_slice(b"ustar  \0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A tar of `entries` with its two end blocks.
pub fn tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// gzip of `data`.
pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// A minimal control stanza with `extra` lines appended.
pub fn control(extra: &str) -> String {
    format!(
        "Package: tiny\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: T <t@example.org>\nDescription: tiny\n{extra}"
    )
}

/// A `.deb` made by hand from a control text and a data tar, gzip members.
pub fn deb(control_text: &str, data_tar: &[u8]) -> Vec<u8> {
    let control_tar = tar(&[
        tar_entry(b"./", b'5', b""),
        tar_entry(b"./control", b'0', control_text.as_bytes()),
    ]);
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &gz(&control_tar)),
        ("data.tar.gz", &gz(data_tar)),
    ])
}

/// A small data tar: a directory and a file.
pub fn data_tar() -> Vec<u8> {
    tar(&[
        tar_entry(b"./", b'5', b""),
        tar_entry(b"./usr/", b'5', b""),
        tar_entry(b"./usr/hello", b'0', b"hello\n"),
    ])
}

/// `data` compressed by the `zstd` tool with `args`, reading standard input
/// (so the tool does not know the size and keeps the window it is given).
pub fn zstd(data: &[u8], args: &[&str]) -> Vec<u8> {
    use std::process::Stdio;
    let mut child = Command::new("zstd")
        .args(args)
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("zstd is installed with dpkg");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).expect("write"));
    let out = child.wait_with_output().expect("zstd");
    writer.join().expect("writer");
    assert!(out.status.success());
    out.stdout
}

/// `data` compressed with xz.
pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut enc = xz2::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(data).expect("xz");
    enc.finish().expect("xz")
}
