#!/usr/bin/env bash
# The SIP edge's cost per decision (issue 24): callguard (release build) serving a
# 100,000-number blacklist with its decision log, as shipped, and `examples/edge_load.rs`
# posting POST /api/v1/edge/decide over CONC keep-alive connections, N decisions in all.
# Reports server CPU per decision from /proc/PID/stat (utime+stime delta / N): the goal is
# at most 50 µs (20,000 decisions per second of one core). The load generator shares the
# machine; the CPU figure is the server's own.
#
#   bench/edge.sh                    # N=20000 CONC=8
#   N=50000 CONC=16 bench/edge.sh
#   NO_BUILD=1 bench/edge.sh         # use target/release as it is
#
# Loopback only, a free port; every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
CONC=${CONC:-8}
if [ -z "${NO_BUILD:-}" ]; then
    nice -n 10 cargo build --release --quiet --bin callguard --example edge_load
fi
dir=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
mkdir -p "$dir/lists"
echo "rule_name,pattern,match_type,action,enabled,notes" > "$dir/lists/spam.csv"
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "Spam-%d,+1555%07d,exact,decline,true,\n", i, i * 2 }' >> "$dir/lists/spam.csv"
cat > "$dir/callguard.yaml" <<YAML
default_trunk: main
actions:
  decline: { kind: reject, sip_code: 603 }
lists:
  - { path: lists/spam.csv, as: blacklist, name: spam }
trunks:
  main:
    dids: ["+18005550100"]
    blocked_action: decline
listen: { agi: 127.0.0.1:0, esl: 127.0.0.1:0, http: 127.0.0.1:0 }
log: { path: calls.db }
YAML
target/release/callguard serve --config "$dir/callguard.yaml" > "$dir/out" 2> "$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q 'http=' "$dir/out" 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o 'http=[0-9.:]*' "$dir/out" | head -n 1 | cut -d= -f2)
[ -n "$addr" ] || { cat "$dir/err" >&2; echo "callguard did not start" >&2; exit 1; }
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
# Warm up (connections, lazily resolved metric handles), then measure.
target/release/examples/edge_load "$addr" 2000 "$CONC" > /dev/null
t0=$(ticks)
result=$(target/release/examples/edge_load "$addr" "$N" "$CONC")
t1=$(ticks)
echo "$result"
case $result in *" errors=0"*) ;; *) echo "warning: some decisions failed; the CPU figure counts them too" >&2 ;; esac
secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$result")
awk -v d="$((t1 - t0))" -v hz="$hz" -v n="$N" -v s="$secs" -v c="$CONC" 'BEGIN {
    us = d / hz * 1e6 / n
    printf "server CPU per decision: %.1f µs (%d ticks of 1/%d s over %d decisions; goal <= 50 µs)\n", us, d, hz, n
    if (s > 0) printf "decisions per second: %.0f (%d keep-alive connections, closed loop)\n", n / s, c
}'
