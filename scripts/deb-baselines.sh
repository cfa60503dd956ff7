#!/usr/bin/env bash
# The tools Debian users pick instead of us, timed on adding one .deb to a suite of N.
#
#   scripts/deb-baselines.sh [N] [CACHE_DIR]     (N default 10000, CACHE_DIR default
#                                                 ~/.cache/packages-bench)
#
# 1. makes N synthetic .debs once with gen.py (../shared/bench/gen.py, or $PACKAGES_BENCH_GEN)
#    into CACHE_DIR/deb-N, plus one more (synth-<N+1>) into CACHE_DIR/deb-extra-N; later runs
#    reuse them (10,000 take ~3 min to make on 2 cores);
# 2. in a temp dir: a throwaway signing key (GNUPGHOME, RSA 3072), a reprepro repo and an aptly
#    repo (published to its filesystem root) already holding the N, both signed;
# 3. times, RUNS times (default 5, $RUNS) each on a fresh copy of the N-package repo:
#      reprepro -b COPY includedeb stable EXTRA.deb            (adds, exports and signs)
#      aptly repo add synth EXTRA.deb && aptly publish update stable   (one timing for both)
#    (copies hard-link the pool, see fresh_copy) and prints the median of each, one line per tool:
#      reprepro +1 into N: <median> s
#      aptly +1 (repo add + publish update) into N: <median> s
#    (every sample goes to stderr).
#
# Needs dpkg-dev, reprepro, aptly, gnupg (scripts/test installs them). Compare with our
# figure from the same run on the same machine: absolute times from another day do not compare.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

case "${1:-}" in
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
N="${1:-10000}"
CACHE="${2:-${HOME:-$(cd ~ && pwd)}/.cache/packages-bench}"
RUNS="${RUNS:-5}"
GEN="${PACKAGES_BENCH_GEN:-$ROOT/../shared/bench/gen.py}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'deb-baselines: error: %s\n' "$*" >&2; exit 1; }

[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, not '$N'"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, not '$RUNS'"
for cmd in python3 dpkg-deb reprepro aptly gpg; do
  command -v "$cmd" >/dev/null || die "$cmd is missing (apt-get install dpkg-dev reprepro aptly gnupg)"
done
[ -f "$GEN" ] || die "gen.py not found at $GEN (set PACKAGES_BENCH_GEN)"

# ---- 1. packages, made once

make_debs() { # count dir start
  local count=$1 dir=$2 start=$3
  if [ -d "$dir" ]; then
    local have
    have=$(find "$dir" -maxdepth 1 -name '*.deb' | wc -l)
    [ "$have" -eq "$count" ] && return 0
    die "$dir holds $have .debs, not $count: remove it and run again"
  fi
  say "making $count synthetic .debs into $dir (once)"
  rm -rf -- "$dir.partial"
  python3 "$GEN" deb "$count" "$dir.partial" --start "$start" >&2
  mv -- "$dir.partial" "$dir"
}
mkdir -p "$CACHE"
DEBS="$CACHE/deb-$N"
EXTRA_DIR="$CACHE/deb-extra-$N"
make_debs "$N" "$DEBS" 1
make_debs 1 "$EXTRA_DIR" $((N + 1))
EXTRA=$(find "$EXTRA_DIR" -maxdepth 1 -name '*.deb' | head -n 1)

# ---- 2. key and the N-package repositories

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f\n", b - a}'; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/deb-baselines.XXXXXX")
export GNUPGHOME="$WORK/gnupg"
cleanup() {
  gpgconf --kill gpg-agent 2>/dev/null || true
  rm -rf -- "$WORK"
}
trap cleanup EXIT
mkdir -m 700 "$GNUPGHOME"
gpg --batch --passphrase '' --quick-gen-key 'Baseline Repo <baseline@example.invalid>' \
  rsa3072 sign never 2>/dev/null
KEYID=$(gpg --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '/^fpr:/{print $10; exit}')
[ -n "$KEYID" ] || die "no key generated"

say "reprepro: base repo with $N packages"
RBASE="$WORK/reprepro-base"
mkdir -p "$RBASE/conf"
printf 'Origin: Synth\nLabel: Synth\nCodename: stable\nSuite: stable\nArchitectures: amd64\nComponents: main\nSignWith: %s\n' \
  "$KEYID" > "$RBASE/conf/distributions"
t0=$EPOCHREALTIME
find "$DEBS" -maxdepth 1 -name '*.deb' -print0 | sort -z |
  xargs -0 reprepro -b "$RBASE" --silent includedeb stable >/dev/null
say "    ($(since "$t0") s)"

aptly_conf() { # root
  printf '{"rootDir": "%s", "gpgProvider": "gpg", "downloadConcurrency": 1}\n' "$1" > "$1/aptly.conf"
}
say "aptly: base repo with $N packages, published"
ABASE="$WORK/aptly-base"
mkdir -p "$ABASE"
aptly_conf "$ABASE"
t0=$EPOCHREALTIME
aptly -config="$ABASE/aptly.conf" repo create -distribution=stable -component=main synth >/dev/null
aptly -config="$ABASE/aptly.conf" repo add synth "$DEBS" >/dev/null 2>&1
aptly -config="$ABASE/aptly.conf" publish repo -batch -gpg-key="$KEYID" -architectures=amd64 synth >/dev/null 2>&1
say "    ($(since "$t0") s)"

# ---- 3. timings

median() { sort -g | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }

# seconds, 3 decimals, of running "$@" (output to $WORK/last.log; failure is fatal)
timed() {
  sync
  local t0=$EPOCHREALTIME
  "$@" > "$WORK/last.log" 2>&1 || { cat "$WORK/last.log" >&2; die "failed: $*"; }
  since "$t0"
}

reprepro_plus1() { reprepro -b "$1" includedeb stable "$EXTRA"; }
aptly_plus1() {
  aptly -config="$1/aptly.conf" repo add synth "$EXTRA" &&
    aptly -config="$1/aptly.conf" publish update -batch -gpg-key="$KEYID" stable
}

# A fresh copy of repo SRC at DST, quickly: everything hard-linked (`cp -al`), then the parts
# a tool changes in place (databases, dists, config) replaced by real copies. Pool files are
# written once and never changed in place by either tool, so sharing them is safe; the base
# is checked after every run all the same.
fresh_copy() { # src dst mutable-path...
  local src=$1 dst=$2 p; shift 2
  cp -al "$src" "$dst"
  for p in "$@"; do
    rm -rf -- "${dst:?}/$p"
    [ ! -e "$src/$p" ] || cp -a "$src/$p" "$dst/$p"
  done
}
EXTRA_NAME="synth-$(printf '%05d' $((N + 1)))"
base_untouched() {
  ! grep -q "^Package: $EXTRA_NAME\$" "$RBASE/dists/stable/main/binary-amd64/Packages" ||
    die "the reprepro base repo changed"
  ! grep -q "^Package: $EXTRA_NAME\$" <(gzip -dc "$ABASE/public/dists/stable/main/binary-amd64/Packages.gz") ||
    die "the aptly base repo changed"
}

samples_r=()
samples_a=()
for i in $(seq 1 "$RUNS"); do
  R="$WORK/reprepro-$i"
  fresh_copy "$RBASE" "$R" conf db dists
  samples_r+=("$(timed reprepro_plus1 "$R")")
  grep -q "^Package: $EXTRA_NAME\$" "$R/dists/stable/main/binary-amd64/Packages" ||
    die "reprepro did not add the extra package"
  [ -s "$R/dists/stable/InRelease" ] || die "reprepro wrote no InRelease"
  rm -rf -- "$R"

  A="$WORK/aptly-$i"
  fresh_copy "$ABASE" "$A" db public/dists aptly.conf
  aptly_conf "$A"
  samples_a+=("$(timed aptly_plus1 "$A")")
  grep -q "^Package: $EXTRA_NAME\$" <(gzip -dc "$A/public/dists/stable/main/binary-amd64/Packages.gz") ||
    die "aptly did not publish the extra package"
  [ -s "$A/public/dists/stable/InRelease" ] || die "aptly wrote no InRelease"
  rm -rf -- "$A"
  base_untouched
  say "run $i: reprepro ${samples_r[-1]} s, aptly ${samples_a[-1]} s"
done

echo "reprepro +1 into $N: $(printf '%s\n' "${samples_r[@]}" | median) s"
echo "aptly +1 (repo add + publish update) into $N: $(printf '%s\n' "${samples_a[@]}" | median) s"
