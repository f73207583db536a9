#!/usr/bin/env bash
# Issue 15's side-by-side table, in one sitting: callguard (both set_vars modes), the bare
# tokio baseline (bench/peers/bare.rs: one command / the same commands / one command per
# variable) and the same screening job on the peer libraries (bench/peers/: panoramisk,
# ding-dong, asterisk-rs-agi for FastAGI; greenswitch, modesl, freeswitch-esl-tokio for ESL),
# driven by callguard-loadgen (closed loop); then callguard in open loop at the goal's rates.
# Every server gets the same 100,000-number blacklist (callguard: a list file, with its
# decision log, as shipped; the peers: a hash map from the same CSV) and the same load.
#
#   bench/compare.sh                                    # rows of 20,000 calls or 30 s, 50 concurrent
#   CALLS=5000 CONC=20 ROW_SECONDS=15 bench/compare.sh  # shorter
#   INSTALL=0 bench/compare.sh                          # skip bench/peers/install.sh
#
# Columns: calls/s and p50/p99 connect->close from the load generator; CPU per call from the
# server's /proc/PID/stat (utime+stime delta over the row / calls); RSS = the server's peak
# (VmHWM) so far. The load generator shares the machine: compare rows within one run only.
# The ESL simulator sends an app's events about 20 ms after its +OK unless another command
# comes first (as FreeSWITCH's parked channel does), so every execute waited for costs a
# closed-loop caller 20 ms: ESL calls/s are bounded by CONC / (0.02 s x executes per call).
# A peer that cannot be started stays in the table with the reason.
# Loopback only; every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${CALLS:-20000}
CONC=${CONC:-50}
# A row stops at CALLS calls or ROW_SECONDS seconds, whichever comes first (the slow peers).
ROW_SECONDS=${ROW_SECONDS:-30}
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

# A server that died reads as 0 (its row then shows the load generator's errors).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm_mb() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }

row() { # NAME PID PBX TARGET
    local before after json
    before=$(cpu_ticks "$2")
    json=$(target/release/callguard-loadgen --pbx "$3" --target "$4" --calls "$CALLS" \
        --duration "$ROW_SECONDS" --concurrency "$CONC" --json) || true
    after=$(cpu_ticks "$2")
    python3 - "$1" "$json" "$before" "$after" "$TCK" "$(hwm_mb "$2")" <<'PY'
import json, sys
name, raw, b, a, tck, rss = sys.argv[1:7]
try:
    r = json.loads(raw)
except ValueError:
    print(f'| {name} | failed: the load generator printed no result | | | | |')
    sys.exit()
calls = max(r["calls"], 1)
cpu_us = (int(a) - int(b)) / int(tck) / calls * 1e6
c = r["connect_to_close"]
err = f' ({r["errors"]} errors)' if r["errors"] else ""
print(f'| {name} | {r["calls_per_second"]:,.0f}{err} | {c["p50_ms"]:.2f} | {c["p99_ms"]:.2f} | {cpu_us:.0f} | {rss} |')
PY
}

echo "# bench/compare.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $CONC concurrent, rows of $CALLS calls or ${ROW_SECONDS} s"
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
# The peers: the same screening job on the libraries users would otherwise pick
# (bench/peers/{python,node,rust}, installed by bench/peers/install.sh).
peer_cmd() { # NAME ADDR -> the command line
    local p=bench/peers csv=$dir/blocked.csv
    case $1 in
    panoramisk) echo "$p/.venv/bin/python $p/python/panoramisk_peer.py $2 $csv" ;;
    greenswitch) echo "$p/.venv/bin/python $p/python/greenswitch_peer.py $2 $csv" ;;
    ding-dong) echo "node $p/node/ding-dong-peer.js $2 $csv" ;;
    modesl) echo "node $p/node/modesl-peer.js $2 $csv" ;;
    asterisk-rs-agi) echo "$p/rust/target/release/asterisk-rs-agi-peer $2 $csv" ;;
    freeswitch-esl-tokio) echo "$p/rust/target/release/freeswitch-esl-tokio-peer $2 $csv" ;;
    esac
}
if [[ ${INSTALL:-1} == 1 ]]; then
    bash bench/peers/install.sh >"$dir/install.log" 2>&1 || true
fi
port=24600
for spec in "panoramisk|Python|agi" "ding-dong|Node|agi" "asterisk-rs-agi|Rust|agi" \
    "greenswitch|Python|esl" "modesl|Node|esl" "freeswitch-esl-tokio|Rust|esl"; do
    IFS='|' read -r peer lang pbx <<<"$spec"
    name="$peer ($lang, $([[ $pbx == agi ]] && echo FastAGI || echo ESL))"
    addr=127.0.0.1:$port
    port=$((port + 1))
    # shellcheck disable=SC2046
    $(peer_cmd "$peer" "$addr") >"$dir/$peer.out" 2>"$dir/$peer.err" &
    pid=$!
    pids+=("$pid")
    up=0
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then up=1; break; fi
        sleep 0.1
    done
    if [[ $up == 1 ]]; then
        row "$name" "$pid" "$pbx" "$addr"
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    else
        why=$(tail -n1 "$dir/$peer.err" | tr '|' '/' | cut -c1-120)
        echo "| $name | not run: did not start (${why:-no output}; bench/peers/install.sh installs it) | | | | |"
    fi
done

# Open loop: calls due at a fixed rate whatever the server does (no coordinated omission);
# the goal is p99 connect->verdict < 2 ms at 2,000 calls/s FastAGI and 1,500 calls/s ESL.
OPEN_SECONDS=${OPEN_SECONDS:-10}
echo
echo "Open loop, callguard (one_command), ${OPEN_SECONDS} s per row, at most 500 calls in flight:"
echo
echo "| protocol | rate calls/s | calls | errors | verdict p50 ms | p90 | p99 | p99.9 | max |"
echo "|---|---|---|---|---|---|---|---|---|"
start_callguard one_command
for spec in "agi|2000|$CG_AGI" "esl|1500|$CG_ESL"; do
    IFS='|' read -r pbx rate target <<<"$spec"
    json=$(target/release/callguard-loadgen --pbx "$pbx" --target "$target" --rate "$rate" \
        --duration "$OPEN_SECONDS" --concurrency 500 --json) || true
    python3 - "$pbx" "$rate" "$json" <<'PY'
import json, sys
pbx, rate, raw = sys.argv[1:4]
r = json.loads(raw)
v = r["connect_to_verdict"]
print(f'| {"FastAGI" if pbx == "agi" else "ESL"} | {int(rate):,} | {r["calls"]:,} | {r["errors"]} | '
      f'{v["p50_ms"]:.2f} | {v["p90_ms"]:.2f} | {v["p99_ms"]:.2f} | {v["p99_9_ms"]:.2f} | {v["max_ms"]:.2f} |')
PY
done
kill -TERM "$CG_PID"; wait "$CG_PID" 2>/dev/null || true

# Peak RSS with the shipped config (config/callguard.yaml and its lists, loopback ports, the
# decision log beside it) after SHIPPED_CALLS FastAGI and as many ESL calls.
SHIPPED_CALLS=${SHIPPED_CALLS:-5000}
mkdir -p "$dir/shipped"
cp -r config/lists "$dir/shipped/"
sed -e 's/127\.0\.0\.1:[0-9]*/127.0.0.1:0/' -e 's#\.\./data/callguard\.db#calls.db#' \
    config/callguard.yaml >"$dir/shipped/callguard.yaml"
RUST_LOG=error target/release/callguard serve --config "$dir/shipped/callguard.yaml" \
    >"$dir/out-shipped" 2>"$dir/err-shipped" &
SH_PID=$!
pids+=("$SH_PID")
for _ in $(seq 600); do grep -q '^callguard listening' "$dir/out-shipped" && break; sleep 0.1; done
line=$(head -n1 "$dir/out-shipped")
if [[ $line == "callguard listening"* ]]; then
    for pbx in agi esl; do
        target=$(sed -n "s/.* $pbx=\([^ ]*\).*/\1/p" <<<"$line")
        target/release/callguard-loadgen --pbx "$pbx" --target "$target" --calls "$SHIPPED_CALLS" \
            --concurrency "$CONC" --json >/dev/null || true
    done
    echo
    echo "callguard with the shipped config: peak RSS $(hwm_mb "$SH_PID") MB after $SHIPPED_CALLS FastAGI + $SHIPPED_CALLS ESL calls"
else
    echo "callguard with the shipped config did not start: $(tail -n1 "$dir/err-shipped")"
fi
kill -TERM "$SH_PID"; wait "$SH_PID" 2>/dev/null || true
