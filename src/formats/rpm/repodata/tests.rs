//! Every element and attribute of the three documents and of `repomd.xml`,
//! the escaping, and `parse_repomd`'s refusals, on packages made here.

use super::super::{ChangelogEntry, Dependency, RpmFile, RpmPackage};
use super::*;

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub(super) fn dep(
    name: &str,
    flags: Option<&str>,
    evr: [Option<&str>; 3],
    pre: bool,
) -> Dependency {
    let [epoch, version, release] = evr.map(|s| s.map(str::to_owned));
    Dependency {
        name: name.to_owned(),
        flags: flags.map(str::to_owned),
        epoch,
        version,
        release,
        pre,
        sense: 0,
    }
}

fn file(path: &str, mode: u32, flags: u32) -> RpmFile {
    RpmFile {
        path: path.to_owned(),
        mode,
        flags,
    }
}

/// A package with one of everything; its own framing fields (size, digest,
/// header range) deliberately differ from [`published`]'s.
pub(super) fn demo() -> RpmPackage {
    RpmPackage {
        name: "demo".into(),
        epoch: 0,
        version: "1.0".into(),
        release: "2.fc39".into(),
        arch: "x86_64".into(),
        summary: "A & B <c> \"d\" 'e'".into(),
        description: "line1\nline2\r\tend".into(),
        url: None,
        license: Some("MIT".into()),
        vendor: None,
        group: Some("Applications/System".into()),
        buildhost: Some("host".into()),
        sourcerpm: "demo-1.0-2.fc39.src.rpm".into(),
        build_time: 1_700_000_000,
        packager: None,
        header_start: 1,
        header_end: 2,
        size_package: 3,
        size_installed: 123,
        size_archive: 456,
        sha256: "not the published one".into(),
        payload_compressor: None,
        signed: false,
        requires: vec![
            dep(
                "rpmlib(CompressedFileNames)",
                Some("LE"),
                [Some("0"), Some("3.0.4"), Some("1")],
                false,
            ),
            dep("/bin/sh", None, [None; 3], true),
            dep(
                "libfoo",
                Some("GE"),
                [Some("2"), Some("1.0"), Some("3")],
                false,
            ),
        ],
        provides: vec![dep(
            "demo",
            Some("EQ"),
            [Some("0"), Some("1.0"), Some("2.fc39")],
            true,
        )],
        conflicts: vec![dep(
            "old",
            Some("LT"),
            [Some("0"), Some("1.0"), None],
            false,
        )],
        obsoletes: vec![dep("legacy", None, [None; 3], false)],
        recommends: vec![dep("extra", None, [None; 3], false)],
        suggests: vec![dep("docs", Some("GT"), [Some("0"), Some("1"), None], false)],
        supplements: vec![dep("base", None, [None; 3], false)],
        enhances: vec![dep("core", Some("GE"), [Some("0"), Some("2"), None], false)],
        files: vec![
            file("/usr/bin/demo", 0o100755, 0),
            file("/etc/demo", 0o040755, 0),
            file("/etc/demo/state", 0o100644, 0x40),
            file("/etc/demo/both", 0o040755, 0x40),
            file("/usr/share/doc/demo/README", 0o100644, 0x02),
        ],
        changelog: vec![
            ChangelogEntry {
                time: 1_700_000_000,
                author: "Zoë <z@x> - 1.0-2  ".into(),
                text: "- fix & <go>".into(),
            },
            ChangelogEntry {
                time: 1_690_000_000,
                author: "A \"B\" - 1.0-1".into(),
                text: "- first\n- second".into(),
            },
        ],
    }
}

pub(super) fn published() -> PublishedFile {
    PublishedFile {
        location_href: "Packages/d/demo-1.0-2.fc39.x86_64.rpm".into(),
        sha256: SHA.into(),
        size: 7000,
        time_file: 1_700_000_100,
        header_start: 4512,
        header_end: 6100,
    }
}

#[test]
fn primary_has_every_element_in_createrepo_c_order() {
    let xml = package_xml(&demo(), &published());
    let expected = format!(
        r#"<package type="rpm">
  <name>demo</name>
  <arch>x86_64</arch>
  <version epoch="0" ver="1.0" rel="2.fc39"/>
  <checksum type="sha256" pkgid="YES">{SHA}</checksum>
  <summary>A &amp; B &lt;c&gt; "d" 'e'</summary>
  <description>line1
line2&#13;	end</description>
  <packager></packager>
  <url></url>
  <time file="1700000100" build="1700000000"/>
  <size package="7000" installed="123" archive="456"/>
  <location href="Packages/d/demo-1.0-2.fc39.x86_64.rpm"/>
  <format>
    <rpm:license>MIT</rpm:license>
    <rpm:vendor></rpm:vendor>
    <rpm:group>Applications/System</rpm:group>
    <rpm:buildhost>host</rpm:buildhost>
    <rpm:sourcerpm>demo-1.0-2.fc39.src.rpm</rpm:sourcerpm>
    <rpm:header-range start="4512" end="6100"/>
    <rpm:provides>
      <rpm:entry name="demo" flags="EQ" epoch="0" ver="1.0" rel="2.fc39"/>
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="/bin/sh" pre="1"/>
      <rpm:entry name="libfoo" flags="GE" epoch="2" ver="1.0" rel="3"/>
    </rpm:requires>
    <rpm:conflicts>
      <rpm:entry name="old" flags="LT" epoch="0" ver="1.0"/>
    </rpm:conflicts>
    <rpm:obsoletes>
      <rpm:entry name="legacy"/>
    </rpm:obsoletes>
    <rpm:suggests>
      <rpm:entry name="docs" flags="GT" epoch="0" ver="1"/>
    </rpm:suggests>
    <rpm:enhances>
      <rpm:entry name="core" flags="GE" epoch="0" ver="2"/>
    </rpm:enhances>
    <rpm:recommends>
      <rpm:entry name="extra"/>
    </rpm:recommends>
    <rpm:supplements>
      <rpm:entry name="base"/>
    </rpm:supplements>
    <file>/usr/bin/demo</file>
    <file type="dir">/etc/demo</file>
    <file type="ghost">/etc/demo/state</file>
    <file type="dir">/etc/demo/both</file>
  </format>
</package>
"#
    );
    assert_eq!(xml.primary, expected);
}

#[test]
fn filelists_lists_every_file_with_its_type() {
    let xml = package_xml(&demo(), &published());
    let expected = format!(
        r#"<package pkgid="{SHA}" name="demo" arch="x86_64">
  <version epoch="0" ver="1.0" rel="2.fc39"/>
  <file>/usr/bin/demo</file>
  <file type="dir">/etc/demo</file>
  <file type="ghost">/etc/demo/state</file>
  <file type="dir">/etc/demo/both</file>
  <file>/usr/share/doc/demo/README</file>
</package>
"#
    );
    assert_eq!(xml.filelists, expected);
}

#[test]
fn other_has_the_changelog_oldest_first_with_escaped_attributes() {
    let xml = package_xml(&demo(), &published());
    let expected = format!(
        r#"<package pkgid="{SHA}" name="demo" arch="x86_64">
  <version epoch="0" ver="1.0" rel="2.fc39"/>
  <changelog author="A &quot;B&quot; - 1.0-1" date="1690000000">- first
- second</changelog>
  <changelog author="Zo&#xEB; &lt;z@x&gt; - 1.0-2" date="1700000000">- fix &amp; &lt;go&gt;</changelog>
</package>
"#
    );
    assert_eq!(xml.other, expected);
}

#[test]
fn epoch_is_written_everywhere_and_defaults_to_zero() {
    let mut pkg = demo();
    pkg.epoch = 3;
    let xml = package_xml(&pkg, &published());
    for doc in [&xml.primary, &xml.filelists, &xml.other] {
        assert!(
            doc.contains(r#"<version epoch="3" ver="1.0" rel="2.fc39"/>"#),
            "{doc}"
        );
    }
    let xml = package_xml(&demo(), &published());
    assert!(
        xml.other
            .contains(r#"<version epoch="0" ver="1.0" rel="2.fc39"/>"#)
    );
}

#[test]
fn a_bare_package_has_no_empty_lists_and_no_files() {
    let mut pkg = demo();
    for list in [
        &mut pkg.requires,
        &mut pkg.provides,
        &mut pkg.conflicts,
        &mut pkg.obsoletes,
        &mut pkg.recommends,
        &mut pkg.suggests,
        &mut pkg.supplements,
        &mut pkg.enhances,
    ] {
        list.clear();
    }
    pkg.files.clear();
    pkg.changelog.clear();
    let xml = package_xml(&pkg, &published());
    assert!(xml.primary.ends_with(
        "    <rpm:header-range start=\"4512\" end=\"6100\"/>\n  </format>\n</package>\n"
    ));
    assert!(!xml.primary.contains("rpm:entry"));
    let version = "  <version epoch=\"0\" ver=\"1.0\" rel=\"2.fc39\"/>\n</package>\n";
    assert!(xml.filelists.ends_with(version), "{}", xml.filelists);
    assert!(xml.other.ends_with(version), "{}", xml.other);
}

#[test]
fn only_rpmlib_free_requires_and_pre_only_on_requires() {
    let xml = package_xml(&demo(), &published()).primary;
    assert!(!xml.contains("rpmlib("));
    // The provide carries pre = true in the model; only requires write it.
    assert_eq!(xml.matches("pre=\"1\"").count(), 1);
    // A version without a comparison is not written (createrepo_c).
    let mut pkg = demo();
    pkg.provides = vec![dep("odd", None, [Some("0"), Some("1"), None], false)];
    let xml = package_xml(&pkg, &published()).primary;
    assert!(xml.contains("<rpm:entry name=\"odd\"/>"), "{xml}");
    // A require identical to a provide goes; one of another version stays.
    let mut pkg = demo();
    let v = |ver| [Some("0"), Some(ver), None];
    pkg.provides = vec![dep("foo", Some("EQ"), v("1"), false)];
    pkg.requires = vec![
        dep("foo", Some("EQ"), v("1"), false),
        dep("foo", Some("GE"), v("2"), false),
    ];
    let xml = package_xml(&pkg, &published()).primary;
    assert!(xml.contains("<rpm:requires>\n      <rpm:entry name=\"foo\" flags=\"GE\" epoch=\"0\" ver=\"2\"/>\n    </rpm:requires>"), "{xml}");
}

#[test]
fn legacy_missingok_requires_lead_the_recommends() {
    let mut pkg = demo();
    let mut weak = dep("weak-thing", Some("GE"), [Some("0"), Some("2"), None], true);
    weak.sense = (1 << 19) | 0x0c | 0x200;
    pkg.requires.insert(1, weak);
    let xml = package_xml(&pkg, &published()).primary;
    assert!(
        xml.contains(
            "    <rpm:recommends>\n      <rpm:entry name=\"weak-thing\" flags=\"GE\" epoch=\"0\" ver=\"2\"/>\n      <rpm:entry name=\"extra\"/>\n    </rpm:recommends>\n"
        ),
        "{xml}"
    );
    assert_eq!(xml.matches("weak-thing").count(), 1);
}

#[test]
fn changelog_keeps_the_newest_ten() {
    let mut pkg = demo();
    pkg.changelog = (0..12)
        .map(|i| ChangelogEntry {
            time: 2_000_000_000 - i * 86_400,
            author: format!("A{i}"),
            text: format!("- {i}"),
        })
        .collect();
    let other = package_xml(&pkg, &published()).other;
    assert_eq!(other.matches("<changelog ").count(), CHANGELOG_LIMIT);
    // Oldest kept (entry 9) first, newest (entry 0) last; 10 and 11 dropped.
    let first = other.find("author=\"A9\"").expect("A9");
    let last = other.find("author=\"A0\"").expect("A0");
    assert!(first < last);
    assert!(!other.contains("author=\"A10\"") && !other.contains("author=\"A11\""));
}

#[test]
fn text_and_attribute_escaping_follow_libxml2() {
    let mut x = Xml::with_capacity(0);
    x.text("a&b<c>d\"e'f\tg\nh\ri é中😀");
    assert_eq!(x.out, "a&amp;b&lt;c&gt;d\"e'f\tg\nh&#13;i é中😀");
    let mut x = Xml::with_capacity(0);
    x.attr("a&b<c>d\"e'f\tg\nh\ri é中😀");
    assert_eq!(
        x.out,
        "a&amp;b&lt;c&gt;d&quot;e'f&#9;g&#10;h&#13;i &#xE9;&#x4E2D;&#x1F600;"
    );
}

#[test]
fn forbidden_characters_are_dropped_and_reported() {
    let bad = "x\u{1}y\u{8}z\u{1b}\u{7f}\u{85}\u{fffe}\u{ffff}\u{fffd}";
    let mut x = Xml::with_capacity(0);
    x.text(bad);
    // DEL, NEL and U+FFFD are XML 1.0 characters and stay.
    assert_eq!(x.out, "xyz\u{7f}\u{85}\u{fffd}");
    let mut x = Xml::with_capacity(0);
    x.attr(bad);
    assert_eq!(x.out, "xyz\u{7f}&#x85;&#xFFFD;");

    assert_eq!(forbidden_chars(&demo()), None);
    let mut pkg = demo();
    pkg.summary = "bell\u{7}".into();
    assert_eq!(forbidden_chars(&pkg), Some(("summary".to_owned(), '\u{7}')));
    let mut pkg = demo();
    pkg.requires.push(dep("x\u{1}", None, [None; 3], false));
    assert_eq!(
        forbidden_chars(&pkg),
        Some(("requires entry \"x\\u{1}\"".to_owned(), '\u{1}'))
    );
    let mut pkg = demo();
    pkg.files.push(file("/usr/bin/a\u{fffe}", 0o100644, 0));
    assert!(forbidden_chars(&pkg).is_some_and(|(what, _)| what.starts_with("file ")));
    let mut pkg = demo();
    pkg.changelog[1].text = "esc \u{1b}[0m".into();
    assert!(
        forbidden_chars(&pkg)
            .is_some_and(|(what, c)| what.starts_with("changelog") && c == '\u{1b}')
    );

    let mut pkg = demo();
    pkg.summary = "a\u{1}b".into();
    pkg.files = vec![file("/usr/bin/a\u{2}b", 0o100755, 0)];
    let xml = package_xml(&pkg, &published());
    assert!(xml.primary.contains("<summary>ab</summary>"));
    assert!(xml.primary.contains("<file>/usr/bin/ab</file>"));
    assert!(xml.filelists.contains("<file>/usr/bin/ab</file>"));
}

#[test]
fn heads_and_tails() {
    assert_eq!(
        primary_head(4),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"4\">\n"
    );
    assert_eq!(
        filelists_head(0),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"0\">\n"
    );
    assert_eq!(
        other_head(10_000),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"10000\">\n"
    );
    assert_eq!(
        (PRIMARY_TAIL, FILELISTS_TAIL, OTHER_TAIL),
        ("</metadata>", "</filelists>", "</otherdata>")
    );
    assert_eq!(
        metadata_href("primary", SHA, "gz"),
        format!("repodata/{SHA}-primary.xml.gz")
    );
}

pub(super) fn records() -> Vec<RepomdData> {
    ["primary", "filelists", "other"]
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let sum = format!("{i}").repeat(64);
            RepomdData {
                kind: kind.to_owned(),
                href: metadata_href(kind, &sum, "gz"),
                checksum: sum,
                size: 100 + i as u64,
                open_checksum: Some(format!("{}", i + 5).repeat(64)),
                open_size: Some(1000 + i as u64),
                timestamp: 1_700_000_000 + i as u64,
            }
        })
        .collect()
}

#[test]
fn repomd_is_written_as_createrepo_c_writes_it_and_reads_back() {
    let mut data = records();
    data[2].open_checksum = None;
    data[2].open_size = None;
    let xml = repomd_xml(1_700_000_009, &data);
    let z = "0".repeat(64);
    let five = "5".repeat(64);
    let expected_head = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1700000009</revision>
  <data type="primary">
    <checksum type="sha256">{z}</checksum>
    <open-checksum type="sha256">{five}</open-checksum>
    <location href="repodata/{z}-primary.xml.gz"/>
    <timestamp>1700000000</timestamp>
    <size>100</size>
    <open-size>1000</open-size>
  </data>
"#
    );
    assert!(xml.starts_with(&expected_head), "{xml}");
    let two = "2".repeat(64);
    let expected_tail = format!(
        r#"  <data type="other">
    <checksum type="sha256">{two}</checksum>
    <location href="repodata/{two}-other.xml.gz"/>
    <timestamp>1700000002</timestamp>
    <size>102</size>
  </data>
</repomd>
"#
    );
    assert!(xml.ends_with(&expected_tail), "{xml}");
    assert_eq!(parse_repomd(&xml).expect("parses"), data);
    assert_eq!(parse_repomd(&repomd_xml(1, &[])).expect("parses"), vec![]);
}

#[test]
fn parse_repomd_accepts_what_other_writers_may_add() {
    let sum = "A".repeat(64);
    let text = format!(
        "\u{feff}<?xml version='1.0'?>\n<!-- made elsewhere -->\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\">\
         <revision>r</revision><tags><content>binary-x86_64</content></tags>\
         <data type='primary_db'><checksum type='sha256'>\n{sum}\n</checksum>\
         <location href='repodata/x&amp;y-primary.sqlite.bz2'/><timestamp> 5 </timestamp>\
         <size>6</size><database_version>10</database_version></data></repomd>\n"
    );
    let got = parse_repomd(&text).expect("parses");
    assert_eq!(
        got,
        vec![RepomdData {
            kind: "primary_db".into(),
            href: "repodata/x&y-primary.sqlite.bz2".into(),
            checksum: "a".repeat(64),
            size: 6,
            open_checksum: None,
            open_size: None,
            timestamp: 5,
        }]
    );
}

#[test]
fn parse_repomd_refuses_malformed_input_naming_the_problem() {
    let good = repomd_xml(7, &records());
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "no root element"),
        ("not xml".into(), "no root element"),
        (good.replace("</repomd>", ""), "<repomd> is not closed"),
        (
            good.replace("<repomd ", "<metadata "),
            "</repomd> closes <metadata>",
        ),
        (
            good.replace("repomd", "other"),
            "the root element is <other>, not <repomd>",
        ),
        (
            good.replace("</data>\n</repomd>", "</data>\n</repomd><x/>"),
            "content after the root element",
        ),
        (
            format!("<!DOCTYPE x [<!ENTITY a 'b'>]>{good}").replacen(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                "",
                1,
            ),
            "DOCTYPE",
        ),
        (
            good.replacen("<revision>7", "<revision>&bogus;", 1),
            "unknown entity &bogus;",
        ),
        (
            good.replacen("<revision>7", "<revision>&#1;", 1),
            "invalid character reference &#1;",
        ),
        (
            good.replacen("<revision>7", "<revision>\u{1}", 1),
            "is not allowed in XML",
        ),
        (
            good.replacen("<revision>7", "<revision>a & b", 1),
            "`&` without `;`",
        ),
        (
            good.replacen("type=\"primary\"", "type=primary", 1),
            "is not quoted",
        ),
        (
            good.replacen("type=\"primary\"", "type=\"primary\" type=\"x\"", 1),
            "attribute type repeated",
        ),
        (
            good.replacen("type=\"primary\"", "", 1),
            "a <data> record without a type",
        ),
        (
            good.replacen("type=\"filelists\"", "type=\"primary\"", 1),
            "two <data type=\"primary\"> records",
        ),
        (
            good.replacen("type=\"sha256\"", "type=\"sha1\"", 1),
            "of type \"sha1\" (only sha256 is supported)",
        ),
        (
            good.replacen(&"0".repeat(64), "0", 1),
            "is not a SHA-256 in hex",
        ),
        (
            good.replacen("<size>100</size>", "<size>-1</size>", 1),
            "<size> \"-1\" is not a number",
        ),
        (
            good.replacen("<size>100</size>", "", 1),
            "<data type=\"primary\"> has no <size>",
        ),
        (
            good.replacen("<timestamp>1700000000</timestamp>", "", 1),
            "has no <timestamp>",
        ),
        (
            good.replacen("    <location href=", "    <nowhere href=", 1),
            "has no <location>",
        ),
        (
            good.replacen("href=\"repodata/", "href=\"../", 1),
            "is not a plain relative path",
        ),
        (
            good.replacen("href=\"repodata/", "href=\"/repodata/", 1),
            "is not a plain relative path",
        ),
        (
            good.replacen("href=\"repodata/", "href=\"https://evil.invalid/", 1),
            "is not a plain relative path",
        ),
        (
            good.replacen("<location ", "<location xml:base=\"http://x/\" ", 1),
            "xml:base",
        ),
        (
            "<a>".repeat(40) + &"</a>".repeat(40),
            "nested deeper than 32",
        ),
    ];
    for (text, problem) in cases {
        let err = parse_repomd(&text).expect_err(problem).to_string();
        assert!(err.contains(problem), "{problem:?} not in {err:?}");
    }
}
