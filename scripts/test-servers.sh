#!/usr/bin/env bash
# Start/stop the S3-compatible servers the test suite runs against.
#
#   scripts/test-servers.sh install [garage|moto]  install both (or one) into the cache if missing
#   eval "$(scripts/test-servers.sh start)" start both servers, export PACKAGES_TEST_* variables
#   scripts/test-servers.sh stop [DIR]     stop them and remove DIR (default: $PACKAGES_TEST_SERVERS_DIR)
#
# Garage 2.5.0 (real S3 server: signatures checked, website endpoint, but NO conditional
# writes) and moto server 5.2.5 (in-memory mock: conditional writes honoured, signatures not
# checked). Everything binds to 127.0.0.1 on free ports; state lives in a fresh temp dir.
#
# Tools are cached outside the repository in
#   ${PACKAGES_TEST_CACHE:-$HOME/.cache/packages-test}/garage-2.5.0/bin/garage
#   ${PACKAGES_TEST_CACHE:-$HOME/.cache/packages-test}/moto-venv/
# A cold Garage build takes ~5 minutes on 2 cores (S3 + sqlite only); later runs skip it.
#
# `start` prints `export VAR=value` lines on stdout (everything else goes to stderr) and
# writes the same lines to "$PACKAGES_TEST_SERVERS_DIR/env". See docs/testing.md.
set -euo pipefail

GARAGE_VERSION=2.5.0
MOTO_VERSION=5.2.5
CACHE="${PACKAGES_TEST_CACHE:-${HOME:-$(cd ~ && pwd)}/.cache/packages-test}"
GARAGE_ROOT="$CACHE/garage-$GARAGE_VERSION"
GARAGE_BIN="$GARAGE_ROOT/bin/garage"
MOTO_VENV="$CACHE/moto-venv"
MOTO_MARKER="$MOTO_VENV/.packages-test-complete"
MOTO_SPEC="moto[server]==$MOTO_VERSION openapi-spec-validator"
MAIN_BUCKET=repo
PRIVATE_BUCKET=private
REGION=us-east-1
WEB_ROOT_DOMAIN=.web.garage.localhost
DIR_MARKER=.packages-test-servers

log() { printf 'test-servers: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# install

garage_ok() {
  [ -x "$GARAGE_BIN" ] && "$GARAGE_BIN" --version 2>/dev/null | grep -qF "$GARAGE_VERSION "
}

moto_ok() {
  [ -f "$MOTO_MARKER" ] && [ -x "$MOTO_VENV/bin/moto_server" ] && [ -x "$MOTO_VENV/bin/python" ] &&
    "$MOTO_VENV/bin/python" -c 'import moto, openapi_spec_validator, sys; sys.exit(moto.__version__ != sys.argv[1])' \
      "$MOTO_VERSION" 2>/dev/null
}

install_garage() {
  garage_ok && return 0
  command -v cargo >/dev/null || die "cargo is needed to build Garage $GARAGE_VERSION"
  local build_dir="$CACHE/garage-build"
  log "building Garage $GARAGE_VERSION into $GARAGE_ROOT (S3 + sqlite only, opt-level 1: ~5 min on 2 cores)"
  local start=$SECONDS
  # cd away from the repository so its toolchain/config files do not apply; build dir in the
  # cache (not the project's target/), deleted afterwards (~0.8 GB).
  # Only what a single-node S3 test server needs (no lmdb, k2v, metrics), optimised lightly:
  # its speed here is bound by fsync, not by the optimiser (../shared measurements: 272 s vs
  # 1248 s for the default build, same publish figures).
  if ! (cd "$CACHE" && CARGO_TARGET_DIR="$build_dir" nice -n 10 \
      env CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0 \
      CARGO_PROFILE_RELEASE_CODEGEN_UNITS=64 \
      cargo install --locked garage --version "$GARAGE_VERSION" --root "$GARAGE_ROOT" \
      --no-default-features --features bundled-libs,sqlite >&2); then
    rm -rf -- "$build_dir"
    die "cargo install garage $GARAGE_VERSION failed"
  fi
  rm -rf -- "$build_dir"
  garage_ok || die "$GARAGE_BIN does not report version $GARAGE_VERSION"
  log "Garage $GARAGE_VERSION built in $((SECONDS - start)) s"
}

install_moto() {
  moto_ok && return 0
  local py
  py="$(command -v python3 || true)"
  [ -n "$py" ] || die "python3 is needed for moto server"
  log "installing moto $MOTO_VERSION into $MOTO_VENV"
  local start=$SECONDS
  rm -rf -- "$MOTO_VENV"
  "$py" -m venv "$MOTO_VENV" >&2 || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  # shellcheck disable=SC2086 # word splitting of the spec list is intended
  nice -n 10 "$MOTO_VENV/bin/pip" install -q $MOTO_SPEC >&2 || die "pip install $MOTO_SPEC failed"
  touch "$MOTO_MARKER"
  moto_ok || die "moto in $MOTO_VENV is not version $MOTO_VERSION"
  log "moto installed in $((SECONDS - start)) s"
}

do_install() {
  local what=${1:-all}
  mkdir -p "$CACHE"
  # Serialise concurrent installs (two `start`s on a fresh machine) on a lock file.
  exec 8>"$CACHE/install.lock"
  flock 8
  case "$what" in
    all) install_moto; install_garage ;;
    moto) install_moto ;;
    garage) install_garage ;;
    *) die "unknown tool '$what' (garage or moto)" ;;
  esac
  flock -u 8
  exec 8>&-
}

# ---------------------------------------------------------------------------------------------
# helpers

# N distinct free TCP ports on 127.0.0.1 (all held open together, so they differ).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" || true; }

# Does pid $1 still run a command line containing $2? (guards against pid reuse)
pid_is() {
  local pid=$1 what=$2
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$what"
}

stop_pid() {
  local pid=$1 what=$2
  pid_is "$pid" "$what" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    pid_is "$pid" "$what" || return 0
    sleep 0.2
  done
  log "pid $pid ($what) did not stop on TERM; killing"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 25); do
    pid_is "$pid" "$what" || return 0
    sleep 0.2
  done
}

show_log() {
  local f=$1
  if [ -f "$f" ]; then
    log "---- $f (last 80 lines) ----"
    tail -n 80 "$f" >&2
    log "---- end of $f ----"
  fi
}

# ---------------------------------------------------------------------------------------------
# Garage

start_garage_once() {
  local dir=$1 gdir="$1/garage"
  local ports s3 rpc admin web
  ports="$(free_ports 4)"
  read -r s3 rpc admin web <<<"$ports"
  rm -rf -- "$gdir"
  mkdir -p "$gdir/meta" "$gdir/data"
  GARAGE_ADMIN_TOKEN="$(rand_hex 16)"
  GARAGE_ACCESS_KEY="GK$(rand_hex 12)"
  GARAGE_SECRET_KEY="$(rand_hex 32)"
  GARAGE_CONFIG="$gdir/garage.toml"
  cat >"$GARAGE_CONFIG" <<EOF
metadata_dir = "$gdir/meta"
data_dir = "$gdir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(rand_hex 32)"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[s3_web]
bind_addr = "127.0.0.1:$web"
root_domain = "$WEB_ROOT_DOMAIN"

[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "$GARAGE_ADMIN_TOKEN"
EOF
  GARAGE_S3_PORT=$s3 GARAGE_ADMIN_PORT=$admin GARAGE_WEB_PORT=$web

  # Not the caller's RUST_LOG: keep the server log readable.
  env RUST_LOG=garage=info \
    GARAGE_DEFAULT_ACCESS_KEY="$GARAGE_ACCESS_KEY" \
    GARAGE_DEFAULT_SECRET_KEY="$GARAGE_SECRET_KEY" \
    GARAGE_DEFAULT_BUCKET="$MAIN_BUCKET" \
    "$GARAGE_BIN" -c "$GARAGE_CONFIG" server --single-node --default-bucket \
    >"$dir/garage.log" 2>&1 </dev/null &
  GARAGE_PID=$!
  echo "$GARAGE_PID" >"$dir/garage.pid"

  # Ready = our instance answers its authenticated admin API (unique token, so a port clash
  # with another instance cannot fool us) and the S3 port answers. --default-bucket creates
  # the key and bucket before the API listeners open.
  local ready=no
  for _ in $(seq 1 150); do
    kill -0 "$GARAGE_PID" 2>/dev/null || break
    if [ "$(http_code -H "Authorization: Bearer $GARAGE_ADMIN_TOKEN" \
            "http://127.0.0.1:$admin/v2/GetClusterHealth")" = 200 ] &&
       [ "$(http_code "http://127.0.0.1:$s3/")" != 000 ]; then
      ready=yes
      break
    fi
    sleep 0.2
  done
  if [ "$ready" != yes ]; then
    log "Garage did not become ready"
    return 1
  fi

  local g=("$GARAGE_BIN" -c "$GARAGE_CONFIG")
  {
    "${g[@]}" bucket create "$PRIVATE_BUCKET" &&
    "${g[@]}" bucket allow --read --write --owner "$PRIVATE_BUCKET" --key "$GARAGE_ACCESS_KEY" &&
    "${g[@]}" bucket website --allow "$MAIN_BUCKET" &&
    "${g[@]}" bucket alias "$MAIN_BUCKET" localhost
  } >>"$dir/garage-cli.log" 2>&1 || { log "garage bucket setup failed"; show_log "$dir/garage-cli.log"; return 1; }

  # Website endpoint ready = a missing key of the bucket gives 404 NoSuchKey (not "no such
  # bucket"), when addressed as http://localhost:PORT/.
  ready=no
  local body
  for _ in $(seq 1 100); do
    body="$(curl -s --max-time 5 -H "Host: localhost:$web" \
              "http://127.0.0.1:$web/.packages-test-servers-probe" || true)"
    if printf '%s' "$body" | grep -q NoSuchKey; then
      ready=yes
      break
    fi
    sleep 0.2
  done
  if [ "$ready" != yes ]; then
    log "Garage website endpoint did not serve bucket $MAIN_BUCKET (last answer: $body)"
    return 1
  fi
  kill -0 "$GARAGE_PID" 2>/dev/null || { log "Garage exited"; return 1; }
}

start_garage() {
  local dir=$1 attempt
  for attempt in 1 2 3; do
    if start_garage_once "$dir"; then
      return 0
    fi
    show_log "$dir/garage.log"
    stop_pid "${GARAGE_PID:-}" "$GARAGE_BIN"
    mv -f "$dir/garage.log" "$dir/garage.log.failed-$attempt" 2>/dev/null || true
    log "Garage start attempt $attempt failed"
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# moto

start_moto_once() {
  local dir=$1 port
  port="$(free_ports 1)"
  "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 </dev/null &
  MOTO_PID=$!
  echo "$MOTO_PID" >"$dir/moto.pid"
  local ready=no
  for _ in $(seq 1 150); do
    kill -0 "$MOTO_PID" 2>/dev/null || break
    if [ "$(http_code "http://127.0.0.1:$port/")" = 200 ]; then
      ready=yes
      break
    fi
    sleep 0.2
  done
  [ "$ready" = yes ] || { log "moto did not become ready"; return 1; }
  # A fresh moto has no buckets; any bucket listed means we reached someone else's server
  # (moto answers 200 to CreateBucket of an existing bucket in us-east-1, so check first).
  local listing
  listing="$(curl -s --max-time 5 "http://127.0.0.1:$port/" || true)"
  printf '%s' "$listing" | grep -qF '<Buckets/>' ||
    { log "moto on port $port is not fresh: $listing"; return 1; }
  # Path-style CreateBucket; moto does not check signatures, so no auth header is needed.
  local b code
  for b in "$MAIN_BUCKET" "$PRIVATE_BUCKET"; do
    code="$(http_code -X PUT "http://127.0.0.1:$port/$b")"
    [ "$code" = 200 ] || { log "moto CreateBucket $b answered HTTP $code"; return 1; }
  done
  kill -0 "$MOTO_PID" 2>/dev/null || { log "moto exited"; return 1; }
  MOTO_PORT=$port
}

start_moto() {
  local dir=$1 attempt
  for attempt in 1 2 3; do
    if start_moto_once "$dir"; then
      return 0
    fi
    show_log "$dir/moto.log"
    stop_pid "${MOTO_PID:-}" moto_server
    mv -f "$dir/moto.log" "$dir/moto.log.failed-$attempt" 2>/dev/null || true
    log "moto start attempt $attempt failed"
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# start / stop

do_stop() {
  local dir=${1:-${PACKAGES_TEST_SERVERS_DIR:-}}
  [ -n "$dir" ] || die "usage: $0 stop DIR (or set PACKAGES_TEST_SERVERS_DIR)"
  [ -d "$dir" ] || { log "$dir does not exist; nothing to stop"; return 0; }
  [ -f "$dir/$DIR_MARKER" ] || die "$dir was not made by $0 start; not touching it"
  local pid
  if [ -f "$dir/garage.pid" ]; then
    pid="$(cat "$dir/garage.pid")"
    stop_pid "$pid" "$dir/garage/garage.toml"
  fi
  if [ -f "$dir/moto.pid" ]; then
    pid="$(cat "$dir/moto.pid")"
    stop_pid "$pid" moto_server
  fi
  rm -rf -- "$dir"
  log "stopped; removed $dir"
}

on_start_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -n "${START_DIR:-}" ]; then
    log "start failed; cleaning up"
    do_stop "$START_DIR" || true
  fi
}

do_start() {
  do_install
  command -v curl >/dev/null || die "curl is needed"
  local dir started=$SECONDS
  dir="$(mktemp -d "${TMPDIR:-/tmp}/packages-test-servers.XXXXXX")"
  touch "$dir/$DIR_MARKER"
  # On any failure below: stop what was started and remove the dir.
  START_DIR=$dir
  trap on_start_exit EXIT

  # Serialise port picking + start-up across concurrent `start`s, so one instance's ports
  # are bound before the next picks its own.
  exec 9>"$CACHE/ports.lock"
  flock 9
  start_garage "$dir" || die "could not start Garage (logs above)"
  start_moto "$dir" || die "could not start moto (logs above)"
  flock -u 9
  exec 9>&-

  q() { printf '%q' "$1"; }
  {
    echo "export PACKAGES_TEST_SERVERS_DIR=$(q "$dir")"
    echo "export PACKAGES_TEST_GARAGE_ENDPOINT=http://127.0.0.1:$GARAGE_S3_PORT"
    echo "export PACKAGES_TEST_GARAGE_REGION=$REGION"
    echo "export PACKAGES_TEST_GARAGE_BUCKET=$MAIN_BUCKET"
    echo "export PACKAGES_TEST_GARAGE_PRIVATE_BUCKET=$PRIVATE_BUCKET"
    echo "export PACKAGES_TEST_GARAGE_ACCESS_KEY=$GARAGE_ACCESS_KEY"
    echo "export PACKAGES_TEST_GARAGE_SECRET_KEY=$GARAGE_SECRET_KEY"
    echo "export PACKAGES_TEST_GARAGE_WEB=http://localhost:$GARAGE_WEB_PORT"
    echo "export PACKAGES_TEST_GARAGE_ADMIN_ENDPOINT=http://127.0.0.1:$GARAGE_ADMIN_PORT"
    echo "export PACKAGES_TEST_GARAGE_ADMIN_TOKEN=$GARAGE_ADMIN_TOKEN"
    echo "export PACKAGES_TEST_GARAGE_BIN=$(q "$GARAGE_BIN")"
    echo "export PACKAGES_TEST_GARAGE_CONFIG=$(q "$GARAGE_CONFIG")"
    echo "export PACKAGES_TEST_GARAGE_DATA_DIR=$(q "$dir/garage")"
    echo "export PACKAGES_TEST_GARAGE_PID=$GARAGE_PID"
    echo "export PACKAGES_TEST_MOTO_ENDPOINT=http://127.0.0.1:$MOTO_PORT"
    echo "export PACKAGES_TEST_MOTO_REGION=$REGION"
    echo "export PACKAGES_TEST_MOTO_BUCKET=$MAIN_BUCKET"
    echo "export PACKAGES_TEST_MOTO_PRIVATE_BUCKET=$PRIVATE_BUCKET"
  } >"$dir/env"
  cat "$dir/env"
  trap - EXIT
  log "Garage (pid $GARAGE_PID) and moto (pid $MOTO_PID) ready in $((SECONDS - started)) s; state in $dir"
}

case "${1:-}" in
  install) shift; do_install "${1:-all}" ;;
  start) do_start ;;
  stop) shift; do_stop "${1:-}" ;;
  *)
    echo "usage: $0 install [garage|moto] | start | stop [DIR]" >&2
    exit 2
    ;;
esac
