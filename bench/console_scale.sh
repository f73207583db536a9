#!/usr/bin/env bash
# Issue 23's acceptance row on a generated list of ENTRIES entries (default 1,000,000): one
# `callguard serve` (release build) with one trunk whose blacklist file holds them all, and
# curl against its API:
#   - start: from `serve` until it says "callguard listening" (the list parsed and compiled);
#   - `/api/v1/trunks`: answer time and size (goal: the console's screen ready < 1 s; what the
#     screen fetches first);
#   - one search and one page of `GET /api/v1/lists/NAME/entries?q=…&limit=50` (goals: search
#     < 300 ms, page < 100 KB), or "not available" while that endpoint is not built;
#   - one entry added and in effect: from `POST /api/v1/lists/NAME/entries` until a simulated
#     call (`callguard call`, FastAGI as Asterisk plays it) from that number is blocked (goal
#     < 1 s); the POST's own answer time beside it (it answers once its reload is installed);
#   - the reloads that one POST caused (`callguard_config_reloads_total`, after the watcher's
#     quiet period): exactly 1 is the goal.
#
#   bench/console_scale.sh                  # 1,000,000 entries, release build
#   ENTRIES=100000 bench/console_scale.sh   # smaller
#   PROFILE=debug NO_BUILD=1 bench/console_scale.sh
#
# Loopback only; the temporary directory and every process it starts are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-1000000}
PROFILE=${PROFILE:-release}
if [ -z "${NO_BUILD:-}" ]; then
    if [ "$PROFILE" = release ]; then
        nice -n 10 cargo build --release --quiet --bin callguard
    else
        nice -n 10 cargo build --quiet --bin callguard
    fi
fi
BIN=target/$PROFILE/callguard
dir=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    rm -rf "$dir"
}
trap cleanup EXIT
now() { date +%s.%N; }
ms() { python3 -c 'import sys; print(f"{(float(sys.argv[2])-float(sys.argv[1]))*1000:.0f}")' "$1" "$2"; }

# +1555NNNNNNN for N below ENTRIES, all exact, the bench's blacklist.
{
    echo "rule_name,pattern,match_type,action,enabled,notes"
    seq 0 $((ENTRIES - 1)) | awk '{ printf "B%d,+1555%07d,exact,reject,true,bench entry %d\n", $1, $1, $1 }'
} >"$dir/blocked.csv"
export CG_BENCH_TOKEN=bench-token-0123456789
cat >"$dir/callguard.yaml" <<YAML
normalize: { default_region: US }
default_trunk: support
http:
  tokens:
    - { name: bench, token_env: CG_BENCH_TOKEN }
trunks:
  support:
    dids: ["+18005550100"]
    lists:
      - { path: blocked.csv, as: blacklist, name: spam }
listen: { agi: 127.0.0.1:0, esl: 127.0.0.1:0, http: 127.0.0.1:0 }
log: { path: calls.db }
YAML

t0=$(now)
RUST_LOG=warn "$BIN" serve --config "$dir/callguard.yaml" >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 3000); do grep -q "^callguard listening" "$dir/out" 2>/dev/null && break; sleep 0.05; done
t1=$(now)
line=$(head -n1 "$dir/out")
[[ $line == "callguard listening"* ]] || { echo "callguard did not start:"; cat "$dir/err"; exit 1; }
AGI=$(sed -n 's/.* agi=\([^ ]*\).*/\1/p' <<<"$line")
HTTP=$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$line")
get() { curl -s -o "$dir/body" -w '%{http_code} %{time_total} %{size_download}' \
    -H "authorization: Bearer $CG_BENCH_TOKEN" "http://$HTTP$1"; }
reloads() { curl -s "http://$HTTP/metrics" | awk '/^callguard_config_reloads_total\{result="success"\}/ { print $2 }'; }
fmt() { python3 -c 'import sys; c,t,s=sys.argv[1:4]; print(f"{float(t)*1000:.0f} ms, {int(s):,} bytes (HTTP {c})")' $1; }

echo "# bench/console_scale.sh — $(date -u +%Y-%m-%dT%H:%MZ), $PROFILE build, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| step | result | goal |"
echo "|---|---|---|"
printf '| list of %s entries: serve started (parse + compile) | %s ms | |\n' "$(printf "%'d" "$ENTRIES")" "$(ms "$t0" "$t1")"
echo "| \`GET /api/v1/trunks\` | $(fmt "$(get /api/v1/trunks)") | screen < 1 s |"
probe=$(printf '+1555%07d' $((ENTRIES / 2)))
r=$(get "/api/v1/lists/spam/entries?q=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$probe")&limit=50")
if [ "${r%% *}" = 200 ]; then
    echo "| one search \`entries?q=$probe\` | $(fmt "$r") | < 300 ms |"
    echo "| one page \`entries?offset=500000&limit=50\` | $(fmt "$(get "/api/v1/lists/spam/entries?offset=$((ENTRIES / 2))&limit=50")") | < 100 KB |"
else
    echo "| search and page \`GET /api/v1/lists/spam/entries?q=…\` | not available (HTTP ${r%% *}) | |"
fi

# One entry added, then calls from that number until one is blocked.
caller=+19995550123
blocked() { "$BIN" call "$caller" --did +18005550100 --server "$AGI" --timeout 5 2>/dev/null | grep -qi 'verdict=block\|CALLGUARD_VERDICT.*block\|busy\|congestion\|hang up'; }
if blocked; then echo "the probe caller is blocked before it was added" >&2; exit 1; fi
before=$(reloads)
ta=$(now)
code=$(curl -s -o "$dir/post" -w '%{http_code}' -H "authorization: Bearer $CG_BENCH_TOKEN" \
    -H 'content-type: application/json' --max-time 120 \
    -d "{\"rule_name\":\"Bench-added\",\"pattern\":\"$caller\",\"match_type\":\"exact\",\"action\":\"reject\"}" \
    "http://$HTTP/api/v1/lists/spam/entries")
tb=$(now)
[ "$code" = 200 ] || { echo "POST answered $code: $(cat "$dir/post")" >&2; exit 1; }
for _ in $(seq 600); do blocked && break; done
tc=$(now)
echo "| \`POST …/entries\` answered (its reload installed) | $(ms "$ta" "$tb") ms | |"
echo "| one entry added and in effect (POST until a call from it is blocked) | $(ms "$ta" "$tc") ms | < 1 s |"
# The watcher's quiet period (200 ms) and any reload it would start: 5 s is ample.
sleep 5
echo "| reloads caused by that POST | $(python3 -c 'import sys; print(int(float(sys.argv[2]) - float(sys.argv[1])))' "$before" "$(reloads)") | 1 |"
echo "| resident memory after | $(awk '/VmRSS/ { printf "%d MB", $2/1024 }' /proc/"$pid"/status) | |"
