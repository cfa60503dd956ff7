use super::super::index::render_text;
use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

fn record(name: &str) -> ApkRecord {
    ApkRecord {
        checksum: format!("Q1{}", BASE64.encode([7u8; 20])),
        name: name.to_owned(),
        version: "1.0-r0".to_owned(),
        arch: "x86_64".to_owned(),
        file_size: 1000,
        installed_size: 4096,
        description: "a package".to_owned(),
        url: "https://example.com".to_owned(),
        license: "MIT".to_owned(),
        origin: name.to_owned(),
        maintainer: "A <a@example.com>".to_owned(),
        build_time: Some(1_700_000_000),
        commit: "abc".to_owned(),
        provider_priority: Some(10),
        depends: vec!["so:libc.musl-x86_64.so.1".to_owned()],
        provides: vec![format!("cmd:{name}=1.0-r0")],
        install_if: vec![],
        datahash: "0".repeat(64),
        sha256: "0".repeat(64),
    }
}

/// `n` dependency atoms of 10 bytes each (`dep-00000` and a space).
fn deps(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("dep-{i:05}")).collect()
}

#[test]
fn a_normal_record_passes_both_checks() {
    let r = record("demo");
    check_record(&r).unwrap();
    assert_eq!(check_rendered_record(&r), []);
    let text = render_text(&[r, record("other"), record("third")]);
    assert_eq!(check_index_text(&text), []);
}

#[test]
fn each_text_field_is_capped_at_its_limit() {
    for field in TEXT_FIELDS {
        let mut r = record("demo");
        let slot = match field.letter {
            'P' => &mut r.name,
            'V' => &mut r.version,
            'A' => &mut r.arch,
            'T' => &mut r.description,
            'U' => &mut r.url,
            'L' => &mut r.license,
            'o' => &mut r.origin,
            'm' => &mut r.maintainer,
            'c' => &mut r.commit,
            other => panic!("{other}"),
        };
        *slot = "x".repeat(field.max_bytes);
        check_record(&r).unwrap_or_else(|e| panic!("{}: {e}", field.key));
        match field.letter {
            'P' => r.name.push('x'),
            'V' => r.version.push('x'),
            'A' => r.arch.push('x'),
            'T' => r.description.push('x'),
            'U' => r.url.push('x'),
            'L' => r.license.push('x'),
            'o' => r.origin.push('x'),
            'm' => r.maintainer.push('x'),
            _ => r.commit.push('x'),
        }
        let err = check_record(&r).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(field.key)
                && msg.contains(&format!("{} allowed", field.max_bytes))
                && msg.contains(&format!("`{}:`", field.letter)),
            "{msg}"
        );
        // The rendered record is flagged as over a limit, not as breaking apk.
        let problems = check_rendered_record(&r);
        assert!(
            problems.iter().any(|p| p.field == Some(field.letter)),
            "{}: {problems:?}",
            field.key
        );
        assert!(problems.iter().all(|p| p.severity == Severity::Policy));
    }
}

#[test]
fn list_lines_are_capped_at_64_kib() {
    let mut r = record("demo");
    // `D:` + 6553 atoms of 9 bytes + one of 4, with spaces: 65536 bytes.
    r.depends = deps(6553);
    r.depends.push("last".to_owned());
    assert_eq!(
        render_text(std::slice::from_ref(&r))
            .lines()
            .map(str::len)
            .max(),
        Some(65536)
    );
    check_record(&r).unwrap();
    assert_eq!(check_rendered_record(&r), []);
    r.depends.push("x".to_owned());
    let msg = check_record(&r).unwrap_err().to_string();
    assert!(
        msg.starts_with("depend: its index line `D:` would be 65538 bytes"),
        "{msg}"
    );
    assert!(msg.contains("65536 allowed"), "{msg}");
    let problems = check_rendered_record(&r);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].severity, Severity::Policy);
    assert_eq!(problems[0].field, Some('D'));
    for (letter, key) in LIST_FIELDS {
        let mut r = record("demo");
        let list = match letter {
            'D' => &mut r.depends,
            'p' => &mut r.provides,
            _ => &mut r.install_if,
        };
        *list = deps(7000);
        let err = check_record(&r).unwrap_err();
        assert!(
            matches!(err, LimitError::ListLine { key: k, .. } if k == key),
            "{err}"
        );
    }
}

#[test]
fn the_poisoning_record_breaks_the_whole_index() {
    // The attack of issue 8: 20,000 dependencies, one 200 KB `D:` line.
    let mut poison = record("poison");
    poison.depends = deps(20_000);
    let text = render_text(&[record("a-good"), poison.clone(), record("z-good")]);
    let problems = check_index_text(&text);
    let index: Vec<_> = problems
        .iter()
        .filter(|p| p.severity == Severity::Index)
        .collect();
    assert_eq!(index.len(), 1, "{problems:?}");
    let p = index[0];
    assert_eq!(p.field, Some('D'));
    assert_eq!(p.record, 1);
    assert_eq!(p.package.as_deref(), Some("poison-1.0-r0"));
    assert_eq!(p.checksum.as_deref(), Some(poison.checksum.as_str()));
    let shown = p.to_string();
    assert!(
        shown.contains("breaks the whole index") && shown.contains("131064"),
        "{shown}"
    );
    // Exactly at the clients' limit it is only over ours.
    let mut edge = record("edge");
    let atoms = (CLIENT_MAX_LINE - 2 + 1) / 10;
    edge.depends = deps(atoms);
    let len = 2 + atoms * 10 - 1;
    assert!(
        len <= CLIENT_MAX_LINE && len + 10 > CLIENT_MAX_LINE,
        "{len}"
    );
    assert!(
        check_rendered_record(&edge)
            .iter()
            .all(|p| p.severity == Severity::Policy)
    );
    edge.depends.push("x".repeat(CLIENT_MAX_LINE - len));
    assert!(
        check_rendered_record(&edge)
            .iter()
            .any(|p| p.severity == Severity::Index)
    );
}

#[test]
fn numbers_apk_cannot_hold_are_refused() {
    let mut r = record("demo");
    r.provider_priority = Some(65_535);
    r.build_time = Some(u64::from(u32::MAX));
    check_record(&r).unwrap();
    r.provider_priority = Some(65_536);
    let msg = check_record(&r).unwrap_err().to_string();
    assert!(
        msg.contains("provider_priority 65536 is more than 65535"),
        "{msg}"
    );
    assert_eq!(check_rendered_record(&r)[0].severity, Severity::Package);
    r.provider_priority = None;
    r.build_time = Some(1 << 32);
    let msg = check_record(&r).unwrap_err().to_string();
    assert!(msg.contains("builddate 4294967296"), "{msg}");
}

fn severities(text: &str) -> Vec<(Severity, usize, Option<char>)> {
    check_index_text(text)
        .into_iter()
        .map(|p| (p.severity, p.line, p.field))
        .collect()
}

const C: &str = "C:Q1BwcHBwcHBwcHBwcHBwcHBwcHBwc=";

#[test]
fn what_apk_refuses_the_whole_index_for() {
    use Severity::*;
    let ok = format!("{C}\nP:a\nV:1-r0\n\n");
    assert_eq!(severities(&ok), []);
    // Not an `X:value` line.
    assert_eq!(
        severities(&format!("{C}\nP:a\nV:1-r0\nhello\n\n")),
        [(Index, 4, None)]
    );
    // No P:, no V:, no C:, or a C: apk 3 cannot use.
    assert_eq!(severities(&format!("{C}\nV:1-r0\n\n")), [(Index, 1, None)]);
    assert_eq!(severities(&format!("{C}\nP:a\n\n")), [(Index, 1, None)]);
    assert_eq!(severities("P:a\nV:1-r0\n\n"), [(Index, 1, None)]);
    assert_eq!(
        severities("C:Q1short\nP:a\nV:1-r0\n\n"),
        [(Index, 1, Some('C'))]
    );
    // A one-byte line ends a record for apk, leaving the rest without P:.
    assert_eq!(
        severities(&format!("{C}\nP:a\nx\nV:1-r0\n\n")),
        [(Index, 1, None), (Index, 4, None), (Index, 4, None)]
    );
    // The last record needs no blank line after it.
    assert_eq!(severities(&format!("{C}\nP:a\nV:1-r0")), []);
    assert_eq!(severities(""), []);
    assert_eq!(severities("\n\n\n"), []);
}

#[test]
fn what_breaks_one_package_or_is_only_over_our_limits() {
    use Severity::*;
    let with = |line: &str| format!("{C}\nP:a\nV:1-r0\n{line}\n\n");
    assert_eq!(severities(&with("X:new")), [(Package, 4, Some('X'))]);
    assert_eq!(severities(&with("x:new")), [(Policy, 4, Some('x'))]);
    assert_eq!(severities(&with("S:12k")), [(Package, 4, Some('S'))]);
    assert_eq!(severities(&with("k:70000")), [(Package, 4, Some('k'))]);
    assert_eq!(severities(&with("t:5000000000")), [(Policy, 4, Some('t'))]);
    assert_eq!(severities(&with("T:bell\u{7}")), [(Policy, 4, Some('T'))]);
    assert_eq!(severities(&with("A:x86/64")), [(Policy, 4, Some('A'))]);
    assert_eq!(severities(&with("F:usr/bin")), []);
    let problems = check_index_text(&with("X:new"));
    assert_eq!(problems[0].package.as_deref(), Some("a-1-r0"));
    assert_eq!(
        problems[0].to_string(),
        "APKINDEX line 4 (a-1-r0): breaks this package: unknown upper-case field: apk-tools 3 \
         refuses to install the package"
    );
}

#[test]
fn reports_stay_short_whatever_the_record_holds() {
    // Found by the fuzz loop: a 7 KB version made a 7 KB report line.
    let text = format!(
        "{C}\nP:{}\nV:{}\n\n",
        "n".repeat(100_000),
        "1".repeat(100_000)
    );
    let problems = check_index_text(&text);
    assert_eq!(problems.len(), 2, "{problems:?}");
    for p in problems {
        let shown = p.to_string();
        assert!(shown.len() < 400, "{} bytes: {shown}", shown.len());
        assert!(p.package.unwrap().ends_with('…'));
    }
}
