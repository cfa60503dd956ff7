#!/usr/bin/env bash
# The tool RPM users pick instead of us, timed on adding one .rpm to a repository of N.
#
#   scripts/rpm-baselines.sh [N] [CACHE_DIR]     (N default 10000, CACHE_DIR default
#                                                 ~/.cache/packages-bench)
#
# 1. makes N synthetic .rpms once with gen.py (../shared/bench/gen.py, or $PACKAGES_BENCH_GEN)
#    into CACHE_DIR/rpm-N, plus one more (synth-<N+1>) into CACHE_DIR/rpm-extra-N; later runs
#    reuse them (10,000 take ~6 min to make on 2 cores);
# 2. in a temp dir: a throwaway signing key (GNUPGHOME, RSA 3072) and a createrepo_c
#    repository of the N (packages hard-linked from the cache, default options: sqlite
#    databases too, as `createrepo_c DIR` makes them);
# 3. times, RUNS times (default 5, $RUNS), each on a fresh copy:
#      createrepo_c COPY                            (full run over the N, no old metadata)
#      createrepo_c --update COPY                   (after adding EXTRA.rpm to the N)
#      createrepo_c --update --no-database COPY     (the same without the sqlite databases,
#                                                    which we do not publish either)
#      rpmsign --addsign EXTRA.rpm && createrepo_c --update COPY &&
#        gpg --detach-sign --armor repodata/repomd.xml   (like for like with our default
#                                                    add: package and metadata signed)
#    (copies hard-link the packages and copy repodata/, see fresh_copy) and prints the median
#    of each, one line per command:
#      createrepo_c full N: <median> s
#      createrepo_c --update +1 into N: <median> s
#      createrepo_c --update --no-database +1 into N: <median> s
#      rpmsign + createrepo_c --update + gpg repomd.xml.asc +1 into N: <median> s
#    (every sample goes to stderr).
#
# Needs rpm (rpmbuild, rpmsign), createrepo-c, gnupg (apt-get install rpm createrepo-c gnupg).
# Compare with our figure from the same run on the same machine (cargo bench --bench rpm):
# absolute times from another day do not compare.
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
die() { printf 'rpm-baselines: error: %s\n' "$*" >&2; exit 1; }

[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, not '$N'"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number, not '$RUNS'"
for cmd in python3 rpmbuild rpmsign createrepo_c gpg; do
  command -v "$cmd" >/dev/null || die "$cmd is missing (apt-get install rpm createrepo-c gnupg)"
done
[ -f "$GEN" ] || die "gen.py not found at $GEN (set PACKAGES_BENCH_GEN)"

# ---- 1. packages, made once

make_rpms() { # count dir start
  local count=$1 dir=$2 start=$3
  if [ -d "$dir" ]; then
    local have
    have=$(find "$dir" -maxdepth 1 -name '*.rpm' | wc -l)
    [ "$have" -eq "$count" ] && return 0
    die "$dir holds $have .rpms, not $count: remove it and run again"
  fi
  say "making $count synthetic .rpms into $dir (once)"
  rm -rf -- "$dir.partial"
  python3 "$GEN" rpm "$count" "$dir.partial" --start "$start" >&2
  mv -- "$dir.partial" "$dir"
}
mkdir -p "$CACHE"
RPMS="$CACHE/rpm-$N"
EXTRA_DIR="$CACHE/rpm-extra-$N"
make_rpms "$N" "$RPMS" 1
make_rpms 1 "$EXTRA_DIR" $((N + 1))
EXTRA=$(find "$EXTRA_DIR" -maxdepth 1 -name '*.rpm' | head -n 1)
EXTRA_FILE=$(basename "$EXTRA")

# ---- 2. key and the N-package repository

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f\n", b - a}'; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rpm-baselines.XXXXXX")
export GNUPGHOME="$WORK/gnupg"
cleanup() {
  gpgconf --kill gpg-agent 2>/dev/null || true
  rm -rf -- "$WORK"
}
trap cleanup EXIT
mkdir -m 700 "$GNUPGHOME"
gpg --batch --passphrase '' --quick-gen-key 'Baseline Repo <baseline@example.invalid>' \
  rsa3072 sign never 2>/dev/null
GPG=$(command -v gpg)
KEYID=$(gpg --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '/^fpr:/{print $10; exit}')
[ -n "$KEYID" ] || die "no key generated"

# The N packages, hard-linked (createrepo_c only reads them).
packages_only() { # dst
  mkdir -p "$1"
  find "$RPMS" -maxdepth 1 -name '*.rpm' -exec cp -l -t "$1" {} +
}

say "createrepo_c: base repo with $N packages"
BASE="$WORK/base"
packages_only "$BASE"
t0=$EPOCHREALTIME
createrepo_c "$BASE" >/dev/null
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

# A fresh copy of the base repository at DST with EXTRA added (a real copy: rpmsign rewrites
# it): packages hard-linked (`cp -al`; createrepo_c --update goes by size and mtime, which
# links keep), repodata/ replaced by a real copy, since createrepo_c swaps it.
fresh_copy() { # dst
  cp -al "$BASE" "$1"
  rm -rf -- "${1:?}/repodata"
  cp -a "$BASE/repodata" "$1/repodata"
  cp -- "$EXTRA" "$1/$EXTRA_FILE"
}
EXTRA_NAME="synth-$(printf '%05d' $((N + 1)))"
# Whether the primary metadata of repository DIR lists the extra package.
lists_extra() { # dir
  local primary
  primary=$(find "$1/repodata" -name '*-primary.xml.*' | head -n 1)
  [ -n "$primary" ] || return 1
  grep -q "<name>$EXTRA_NAME</name>" <(createrepo_c_cat "$primary")
}
createrepo_c_cat() { # compressed file
  case "$1" in
    *.gz) gzip -dc "$1" ;;
    *.xz) xz -dc "$1" ;;
    *.zst) zstd -dcq "$1" ;;
    *.bz2) bzip2 -dc "$1" ;;
    *) cat "$1" ;;
  esac
}

full() { createrepo_c "$1"; }
update() { createrepo_c --update "$1"; }
update_nodb() { createrepo_c --update --no-database "$1"; }
signed_update() {
  rpmsign --define "__gpg $GPG" --define "_gpg_name $KEYID" --define "_gpg_path $GNUPGHOME" \
    --addsign "$1/$EXTRA_FILE" &&
    createrepo_c --update "$1" &&
    gpg --batch --yes --local-user "$KEYID" --detach-sign --armor "$1/repodata/repomd.xml"
}

samples_f=()
samples_u=()
samples_n=()
samples_s=()
for i in $(seq 1 "$RUNS"); do
  F="$WORK/full-$i"
  packages_only "$F"
  samples_f+=("$(timed full "$F")")
  [ -s "$F/repodata/repomd.xml" ] || die "createrepo_c wrote no repomd.xml"
  rm -rf -- "$F"

  C="$WORK/update-$i"
  fresh_copy "$C"
  samples_u+=("$(timed update "$C")")
  lists_extra "$C" || die "createrepo_c --update did not list the extra package"
  rm -rf -- "$C"

  C="$WORK/update-nodb-$i"
  fresh_copy "$C"
  samples_n+=("$(timed update_nodb "$C")")
  lists_extra "$C" || die "createrepo_c --update --no-database did not list the extra package"
  rm -rf -- "$C"

  C="$WORK/signed-$i"
  fresh_copy "$C"
  samples_s+=("$(timed signed_update "$C")")
  lists_extra "$C" || die "the signed update did not list the extra package"
  [ -s "$C/repodata/repomd.xml.asc" ] || die "gpg wrote no repomd.xml.asc"
  rpm -qp --qf '%{RSAHEADER:pgpsig}' "$C/$EXTRA_FILE" 2>/dev/null | grep -q "Key ID" ||
    die "rpmsign did not sign the extra package"
  rm -rf -- "$C"

  ! lists_extra "$BASE" || die "the base repository changed"
  say "run $i: full ${samples_f[-1]} s, --update ${samples_u[-1]} s, --update --no-database ${samples_n[-1]} s, signed ${samples_s[-1]} s"
done

echo "createrepo_c full $N: $(printf '%s\n' "${samples_f[@]}" | median) s"
echo "createrepo_c --update +1 into $N: $(printf '%s\n' "${samples_u[@]}" | median) s"
echo "createrepo_c --update --no-database +1 into $N: $(printf '%s\n' "${samples_n[@]}" | median) s"
echo "rpmsign + createrepo_c --update + gpg repomd.xml.asc +1 into $N: $(printf '%s\n' "${samples_s[@]}" | median) s"
