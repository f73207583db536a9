#!/usr/bin/env bash
# Issue 15's side-by-side table, in one sitting: callguard (both set_vars modes) against the
# bare tokio baseline (bench/peers/bare.rs: one command / the same commands / one command
# per variable), FastAGI and outbound ESL, driven by callguard-loadgen (closed loop).
# callguard gets a 100,000-number blacklist file and its decision log, as shipped.
#
#   bench/compare.sh                       # 20,000 calls per row, 50 concurrent
#   CALLS=5000 CONC=20 bench/compare.sh    # shorter
#
# Columns: calls/s and p50/p99 connect->close from the load generator; CPU per call from the
# server's /proc/PID/stat (utime+stime delta over the row / calls); RSS = the server's peak
# (VmHWM) so far. The load generator shares the machine: compare rows within one run only.
# Loopback only; every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${CALLS:-20000}
CONC=${CONC:-50}
nice -n 10 cargo build --release --quiet --bin callguard --bin callguard-loadgen --example bare
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
TCK=$(getconf CLK_TCK)

# The blacklist: +15550000000 .. +15550099999; the load generator's built-in mix calls
# +1555000NNNN (listed) and +1415555NNNN (not listed).
{
    echo "rule_name,pattern,match_type,action,enabled,notes"
    seq 0 99999 | awk '{ printf "B%d,+1555%07d,exact,reject,true,\n", $1, $1 }'
} >"$dir/blocked.csv"

start_callguard() { # MODE -> sets CG_PID, CG_AGI, CG_ESL
    cat >"$dir/cg-$1.yaml" <<YAML
normalize: { default_region: US }
default_trunk: support
trunks:
  support:
    dids: ["+18005550100"]
    lists:
      - { path: blocked.csv, as: blacklist, name: blocked }
agi: { set_vars: $1 }
esl: { set_vars: $1 }
listen: { agi: 127.0.0.1:0, esl: 127.0.0.1:0, http: 127.0.0.1:0 }
log: { path: calls-$1.db }
YAML
    RUST_LOG=error target/release/callguard serve --config "$dir/cg-$1.yaml" >"$dir/out-$1" 2>"$dir/err-$1" &
    CG_PID=$!
    pids+=("$CG_PID")
    for _ in $(seq 600); do grep -q '^callguard listening' "$dir/out-$1" && break; sleep 0.1; done
    local line
    line=$(head -n1 "$dir/out-$1")
    [[ $line == "callguard listening"* ]] || { echo "callguard did not start:"; cat "$dir/err-$1"; exit 1; }
    CG_AGI=$(sed -n 's/.* agi=\([^ ]*\).*/\1/p' <<<"$line")
    CG_ESL=$(sed -n 's/.* esl=\([^ ]*\).*/\1/p' <<<"$line")
}

start_bare() { # MODE AGI ESL -> sets BARE_PID
    target/release/examples/bare --mode "$1" --agi "$2" --esl "$3" 2>"$dir/bare-$1.err" &
    BARE_PID=$!
    pids+=("$BARE_PID")
    for _ in $(seq 100); do grep -q listening "$dir/bare-$1.err" && break; sleep 0.1; done
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hwm_mb() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

row() { # NAME PID PBX TARGET
    local before after json
    before=$(cpu_ticks "$2")
    json=$(target/release/callguard-loadgen --pbx "$3" --target "$4" --calls "$CALLS" \
        --concurrency "$CONC" --json) || true
    after=$(cpu_ticks "$2")
    python3 - "$1" "$json" "$before" "$after" "$TCK" "$(hwm_mb "$2")" <<'PY'
import json, sys
name, raw, b, a, tck, rss = sys.argv[1:7]
r = json.loads(raw)
calls = max(r["calls"], 1)
cpu_us = (int(a) - int(b)) / int(tck) / calls * 1e6
c = r["connect_to_close"]
err = f' ({r["errors"]} errors)' if r["errors"] else ""
print(f'| {name} | {r["calls_per_second"]:,.0f}{err} | {c["p50_ms"]:.2f} | {c["p99_ms"]:.2f} | {cpu_us:.0f} | {rss} |')
PY
}

echo "# bench/compare.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $CALLS calls per row, $CONC concurrent"
echo
echo "| server | calls/s | p50 ms | p99 ms | server CPU µs/call | peak RSS MB |"
echo "|---|---|---|---|---|---|"
for mode in one_command per_variable; do
    start_callguard "$mode"
    row "callguard FastAGI ($mode)" "$CG_PID" agi "$CG_AGI"
    row "callguard ESL ($mode)" "$CG_PID" esl "$CG_ESL"
    kill -TERM "$CG_PID"; wait "$CG_PID" 2>/dev/null || true
done
port=24580
for mode in same per-variable one; do
    agi=127.0.0.1:$port esl=127.0.0.1:$((port + 1000))
    port=$((port + 1))
    start_bare "$mode" "$agi" "$esl"
    row "bare tokio FastAGI ($mode)" "$BARE_PID" agi "$agi"
    row "bare tokio ESL ($mode)" "$BARE_PID" esl "$esl"
    kill -TERM "$BARE_PID"; wait "$BARE_PID" 2>/dev/null || true
done
for peer in "panoramisk (Python, FastAGI)" "ding-dong (Node, FastAGI)" "asterisk-rs-agi (Rust, FastAGI)" \
    "greenswitch (Python, ESL)" "modesl (Node, ESL)" "freeswitch-esl-tokio (Rust, ESL)"; do
    echo "| $peer | not run: peer servers not written yet (issue 15 item 2) | | | | |"
done
