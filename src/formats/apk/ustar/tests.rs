use super::*;

fn entries(bytes: &[u8]) -> Result<Vec<Entry>, ApkError> {
    let mut reader = Reader::new(bytes, "test");
    let mut out = Vec::new();
    loop {
        match reader.next()? {
            Next::Entry(e) => out.push(e),
            Next::ZeroBlock | Next::Eof => return Ok(out),
        }
    }
}

#[test]
fn pax_record_length_counts_itself() {
    assert_eq!(pax_record("path", b"a"), b"9 path=a\n");
    // A 98-byte body needs a 3-digit length: 98 + 2 = 100 has 3 digits.
    let record = pax_record("path", &[b'v'; 91]);
    assert_eq!(record.len(), 101);
    assert!(record.starts_with(b"101 path="));
    let record = pax_record("path", &[b'v'; 90]);
    assert_eq!(record.len(), 99);
    assert!(record.starts_with(b"99 path="));
}

#[test]
fn written_entries_read_back_with_pax_names_and_checksums() {
    let long = "d/".repeat(80) + "file";
    let mut out = Vec::new();
    let sha1 = [7u8; 20];
    append_entry(
        &mut out,
        &HeaderSpec::file(long.as_bytes(), 5, 0o755),
        b"hello",
        &[(PAX_SHA1, hex::encode(sha1).as_bytes())],
    );
    append_entry(
        &mut out,
        &HeaderSpec {
            name: b"ln",
            typeflag: b'2',
            size: 0,
            mode: 0o777,
            mtime: 0,
            link: b"../target",
        },
        b"",
        &[],
    );
    append_end(&mut out);
    assert_eq!(out.len() % BLOCK, 0);
    let got = entries(&out).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].name, long.as_bytes());
    assert_eq!(got[0].kind, Kind::Regular);
    assert_eq!(got[0].size, 5);
    assert_eq!(got[0].sha1, Some(sha1));
    assert_eq!(got[1].kind, Kind::Symlink);
    assert_eq!(got[1].link, b"../target");
    assert_eq!(got[1].sha1, None);
}

#[test]
fn gnu_tar_reads_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let long = "x".repeat(150);
    append_entry(
        &mut out,
        &HeaderSpec::file(long.as_bytes(), 3, 0o644),
        b"abc",
        &[],
    );
    append_entry(&mut out, &HeaderSpec::file(b"short", 2, 0o600), b"hi", &[]);
    append_end(&mut out);
    let path = dir.path().join("t.tar");
    std::fs::write(&path, &out).unwrap();
    let listing = std::process::Command::new("tar")
        .arg("-tvf")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let text = String::from_utf8(listing.stdout).unwrap();
    assert!(text.contains(&long), "{text}");
    let short = text
        .lines()
        .find(|l| l.ends_with(" short"))
        .expect("short listed");
    assert!(short.starts_with("-rw------- root/root"), "{text}");
}

#[test]
fn bad_headers_are_refused() {
    let mut good = Vec::new();
    append_entry(&mut good, &HeaderSpec::file(b"f", 1, 0o644), b"x", &[]);

    let mut bad_sum = good.clone();
    bad_sum[0] = b'g';
    assert!(matches!(entries(&bad_sum), Err(ApkError::Format(m)) if m.contains("checksum")));

    let mut v7 = good.clone();
    v7[257..265].fill(0);
    assert!(matches!(entries(&v7), Err(ApkError::Format(m)) if m.contains("ustar")));

    let truncated = &good[..700];
    let mut reader = Reader::new(truncated, "test");
    assert!(matches!(reader.next(), Ok(Next::Entry(_))));
    let mut buf = [0u8; 1];
    assert_eq!(reader.read_data(&mut buf).unwrap(), 1);
    assert!(matches!(reader.next(), Err(ApkError::Format(m)) if m.contains("ends inside")));

    let mut pax_only = Vec::new();
    append_entry(
        &mut pax_only,
        &HeaderSpec::file(b"f", 0, 0o644),
        b"",
        &[("k", b"v")],
    );
    pax_only.truncate(2 * BLOCK);
    assert!(
        matches!(entries(&pax_only), Err(ApkError::Format(m)) if m.contains("extended header"))
    );

    let mut bad_sha = Vec::new();
    append_entry(
        &mut bad_sha,
        &HeaderSpec::file(b"f", 0, 0o644),
        b"",
        &[(PAX_SHA1, b"zz")],
    );
    assert!(matches!(entries(&bad_sha), Err(ApkError::Format(m)) if m.contains(PAX_SHA1)));
}

#[test]
fn octal_fields() {
    assert_eq!(parse_octal(b"0000644\0"), Some(0o644));
    assert_eq!(parse_octal(b"   644 \0"), Some(0o644));
    assert_eq!(parse_octal(b"\0\0\0\0"), Some(0));
    assert_eq!(parse_octal(b"0008\0"), None);
    assert_eq!(parse_octal(b"12 3\0"), None);
    let mut field = [0u8; 12];
    put_octal(&mut field, 0o17);
    assert_eq!(&field, b"00000000017\0");
    put_octal(&mut field, 1 << 33);
    assert_eq!(field[0], 0x80);
}
