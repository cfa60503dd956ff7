//! The index checker: any text is checked without panicking, and the index
//! rendered from any valid records has no problem.

use packages::formats::apk::ApkRecord;
use packages::formats::apk::index::render_text;
use packages::formats::apk::limits::check_index_text;
use rand::Rng as _;

use crate::mutate;

fn record(rng: &mut rand::rngs::StdRng, i: usize) -> ApkRecord {
    let atoms = |rng: &mut rand::rngs::StdRng, prefix: &str| -> Vec<String> {
        (0..rng.gen_range(0..50))
            .map(|j| format!("{prefix}{j}"))
            .collect()
    };
    ApkRecord {
        checksum: "Q1BwcHBwcHBwcHBwcHBwcHBwcHBwc=".to_owned(),
        name: format!("pkg{i}"),
        version: format!("{}.{}-r{}", rng.gen_range(0..9), rng.gen_range(0..99), i),
        arch: "x86_64".to_owned(),
        file_size: rng.r#gen(),
        installed_size: rng.r#gen(),
        description: "d".repeat(rng.gen_range(0..4096)),
        url: String::new(),
        license: "MIT".to_owned(),
        origin: format!("pkg{i}"),
        maintainer: String::new(),
        build_time: Some(rng.gen_range(0..u64::from(u32::MAX))),
        commit: String::new(),
        provider_priority: rng.gen_bool(0.5).then(|| rng.gen_range(0..65536)),
        depends: atoms(rng, "so:lib"),
        provides: atoms(rng, "cmd:x"),
        install_if: atoms(rng, "base"),
        datahash: String::new(),
        sha256: String::new(),
    }
}

#[test]
fn fuzz_index_text_check() {
    crate::run(
        "index-text",
        |rng| {
            let records: Vec<ApkRecord> =
                (0..rng.gen_range(1..6)).map(|i| record(rng, i)).collect();
            let mut text = render_text(&records).into_bytes();
            // Half the time keep it valid: the check must then find nothing.
            if rng.gen_bool(0.5) {
                mutate::bytes(rng, &mut text);
                text.push(0xff); // marks "mutated" for the check (not UTF-8 by itself)
            }
            text
        },
        |input| {
            let (text, mutated) = match input.split_last() {
                Some((0xff, rest)) => (String::from_utf8_lossy(rest).into_owned(), true),
                _ => (String::from_utf8_lossy(input).into_owned(), false),
            };
            let problems = check_index_text(&text);
            if !mutated && !problems.is_empty() {
                return Err(format!("valid records flagged: {problems:?}"));
            }
            for p in &problems {
                let shown = p.to_string();
                if shown.len() > 1000 || p.line == 0 {
                    return Err(format!("bad report: {shown}"));
                }
            }
            Ok(())
        },
    );
}
