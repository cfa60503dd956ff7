//! The `APKBUILD` reader: mutated recipes are read or refused, never hang or
//! blow up, and whatever is read names a valid package file.

use packages::apkbuild::{self, MAX_VALUE_BYTES};
use packages::formats::apk::{MAX_FILE_NAME, is_valid_pkgname, is_valid_version};
use rand::Rng as _;
use rand::seq::SliceRandom as _;

use crate::mutate;

const SEEDS: [&str; 3] = [
    r#"# Maintainer: someone <a@b>
_pkgname=hello
pkgname=$_pkgname-tools
_ver=2.12
pkgver=${_ver}.1
pkgrel=3 # bumped
pkgdesc="Says \"hello\" (version $pkgver)"
url="https://example.org/$pkgname"
arch="x86_64 aarch64"
license="MIT"
depends="
	musl
	"
source="https://example.org/$_pkgname-$pkgver.tar.gz"

build() {
	pkgver=9.9.9
	make
}

package() {
	make DESTDIR="$pkgdir" install
}
"#,
    "pkgname='quoted'\npkgver=1.0_rc2\npkgrel=0; arch=noarch\n",
    "a=x\nb=$a$a\nc=\"$b$b\"\npkgname=p$c\npkgver=1\npkgrel=0\nf() { echo }\n",
];

fn check(input: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok(());
    };
    let started = std::time::Instant::now();
    let result = apkbuild::parse(text);
    if started.elapsed() > std::time::Duration::from_secs(2) {
        return Err(format!("took {:?}", started.elapsed()));
    }
    if let Ok(parsed) = result {
        if !is_valid_pkgname(&parsed.pkgname) || !is_valid_version(&parsed.version()) {
            return Err(format!("accepted an invalid name or version: {parsed:?}"));
        }
        if parsed.file_name().len() > MAX_FILE_NAME || parsed.pkgver.len() > MAX_VALUE_BYTES {
            return Err("a name over the caps".to_owned());
        }
        let file = parsed.file_name();
        if file.contains('/') || !file.ends_with(".apk") {
            return Err(format!("file name {file:?}"));
        }
    }
    Ok(())
}

#[test]
fn fuzz_apkbuild_reader() {
    for seed in SEEDS {
        apkbuild::parse(seed).unwrap_or_else(|e| panic!("{seed}: {e}"));
    }
    crate::run(
        "apkbuild",
        |rng| {
            let mut text = SEEDS.choose(rng).expect("seeds").as_bytes().to_vec();
            mutate::bytes(rng, &mut text);
            if rng.gen_bool(0.2) {
                // Doubling chains: the exponential case.
                let n = rng.gen_range(1..40);
                let mut chain = String::from("v0=ab\n");
                for i in 1..n {
                    chain.push_str(&format!("v{i}=$v{}$v{}\n", i - 1, i - 1));
                }
                text.splice(0..0, chain.into_bytes());
            }
            text
        },
        check,
    );
}
