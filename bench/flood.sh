#!/usr/bin/env bash
# Floods and slow peers against the release `callguard serve`, both listeners,
# loopback only: a connection storm past max_connections, slowloris peers,
# half-open peers and peers that never read (examples/flood.rs is the
# attacker). Prints the server's RSS and open fds (/proc/PID) before, during
# and after each phase, and whether real calls are still decided after it.
#
#   bench/flood.sh                       # 2000-connection storm, 200 of each slow kind
#   bench/flood.sh --storm 500 --slow 50 # smaller
# Any option of `cargo run --example flood -- --help` is passed through.
set -euo pipefail
cd "$(dirname "$0")/.."

nice -n 10 cargo build --release --quiet --bin callguard --example flood
# The attacker holds up to 2 × storm sockets at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

dir=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/callguard.yaml" <<'YAML'
normalize: { default_region: US }
default_trunk: support
trunks:
  support:
    dids: ["+18005550100"]
    blacklist:
      - { name: Static, pattern: "+15550000001" }
# Small limits so the storm overflows them and the slow peers time out soon.
agi: { max_connections: 200, env_timeout: 2s, reply_timeout: 2s }
esl: { max_connections: 200, connect_timeout: 2s, reply_timeout: 2s }
listen: { agi: 127.0.0.1:0, esl: 127.0.0.1:0, http: 127.0.0.1:0 }
log: { path: calls.db }
YAML

RUST_LOG=error target/release/callguard serve --config "$dir/callguard.yaml" >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 300); do grep -q '^callguard listening' "$dir/out" && break; sleep 0.1; done
line=$(head -n1 "$dir/out")
[[ $line == "callguard listening"* ]] || { echo "callguard did not start:"; cat "$dir/err"; exit 1; }
addr() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }

echo "# bench/flood.sh — $(date -u +%Y-%m-%dT%H:%MZ), callguard pid $pid, $(nproc) cores"
echo "# limits: max_connections 200 per listener, env/connect/reply timeouts 2 s"
echo
target/release/examples/flood --agi "$(addr agi)" --esl "$(addr esl)" --http "$(addr http)" --pid "$pid" "$@"
