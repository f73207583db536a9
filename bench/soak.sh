#!/usr/bin/env bash
# Soak, reload and shutdown under load, against the release `callguard serve`
# on loopback (examples/soak.rs is the load driver):
#  1. steady calls through FastAGI and ESL for N minutes (default 10) while the
#     `churn` list is replaced through the admin API every second and the config
#     file is edited (renamed over) every 10 s; every call must be decided and,
#     where no list change overlapped it, get the verdict the list gives;
#     RSS and open fds of the server are sampled at start, middle and end;
#  2. SIGTERM under load: the calls in progress must finish with a verdict, new
#     connections must be refused (the PBX fails over), the process must exit 0.
#
#   bench/soak.sh                 # 10 minutes
#   bench/soak.sh --minutes 1     # or SOAK_MINUTES=1 bench/soak.sh
#   bench/soak.sh --lanes 8       # concurrent callers per protocol (default 8)
#   bench/soak.sh --rate 100      # at most this many calls/s per protocol (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${SOAK_MINUTES:-10}
lanes=${SOAK_LANES:-8}
rate=${SOAK_RATE:-100}
while [ $# -gt 0 ]; do
    case $1 in
        --minutes) minutes=$2; shift 2 ;;
        --lanes) lanes=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        *) echo "usage: $0 [--minutes N] [--lanes N] [--rate CALLS_PER_S]" >&2; exit 2 ;;
    esac
done

nice -n 10 cargo build --release --quiet --bin callguard --example soak
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

dir=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT

export CALLGUARD_SOAK_TOKEN="soak-$RANDOM-$RANDOM-$$"
config=$(target/release/examples/soak init "$dir" \
    --extra $'listen: { agi: 127.0.0.1:0, esl: 127.0.0.1:0, http: 127.0.0.1:0 }\nlog: { path: calls.db }\n')

NO_COLOR=1 RUST_LOG=warn target/release/callguard serve --config "$config" >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 300); do grep -q '^callguard listening' "$dir/out" && break; sleep 0.1; done
line=$(head -n1 "$dir/out")
[[ $line == "callguard listening"* ]] || { echo "callguard did not start:"; cat "$dir/err"; exit 1; }
addr() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
agi=$(addr agi) esl=$(addr esl) http=$(addr http)

echo "# bench/soak.sh --minutes $minutes --lanes $lanes --rate $rate — started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "# callguard pid $pid ($agi FastAGI, $esl ESL), $(nproc) cores, list PUT every 1 s, config edit every 10 s"
echo
status=0
target/release/examples/soak run --agi "$agi" --esl "$esl" --http "$http" \
    --config "$config" --pid "$pid" --minutes "$minutes" --lanes "$lanes" --rate "$rate" || status=1
echo
target/release/examples/soak sigterm --agi "$agi" --esl "$esl" --http "$http" --pid "$pid" --lanes "$lanes" || status=1
rc=0
wait "$pid" || rc=$?
pid=
echo "| callguard exit status after SIGTERM | $rc |"
[ "$rc" -eq 0 ] || status=1
sed -i 's/\x1b\[[0-9;]*m//g' "$dir/err"
warnings=$(grep -c -E ' (WARN|ERROR) ' "$dir/err" || true)
echo
echo "# finished $(date -u +%Y-%m-%dT%H:%M:%SZ); server log: $warnings warning/error line(s)"
# The distinct messages, without their timestamps.
grep -E ' (WARN|ERROR) ' "$dir/err" | cut -d' ' -f2- | sort | uniq -c | sort -rn | head -n 10 | sed 's/^/#   /' || true
if [ "$status" -eq 0 ]; then echo "SOAK PASSED"; else echo "SOAK FAILED"; fi
exit "$status"
