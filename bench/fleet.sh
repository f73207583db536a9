#!/usr/bin/env bash
# docs/scaling.md's table: one callguard instance, then two instances side by side, each
# driven by its own callguard-loadgen (FastAGI, closed loop), with the decision log in the
# instance's own SQLite file, then in one shared PostgreSQL (`log.postgres`), then two instances
# with a velocity rule counting every call, in memory and then shared in Redis
# (`velocity_limits.redis`): what a Redis round trip per call costs. Last, the fleet of issue 21:
# three instances with PostgreSQL as the store of record for the lists (`log.postgres`, lists
# imported with `callguard store import`) and the velocity counters in Redis, load through all
# three, and the lag of a list edit: LAG_EDITS entries (default 10) added one at a time through
# instance 1's API (with a token), each timed from the request until instances 2 and 3 report
# the new rules version in `/api/v1/status` (`store.applied_version`, polled every 5 ms), once
# with the instances idle and once while a load generator drives each of them.
#
#   bench/fleet.sh                        # 20,000 calls per instance and row, 50 concurrent
#   CALLS=5000 CONC=20 bench/fleet.sh     # shorter
#   PROFILE=debug bench/fleet.sh          # the debug build (no release build at hand)
#   FLEET_ONLY=1 bench/fleet.sh           # only the three-instance fleet rows and the lag
#
# Columns: the calls/s of all load generators together, the worst p50/p99 connect->close,
# the rows the log holds afterwards (every call must be there), and the load average: the
# load generators and any other work share the machine, so rows compare within one run only.
# PostgreSQL rows need Debian's server binaries (.ci/install-deps): a throwaway cluster in a
# temporary directory on a free loopback port (as `nobody` when run as root). Loopback only;
# every process it starts is stopped on exit. The Redis rows need Debian's `redis-server`
# (.ci/install-deps): a throwaway server on a free loopback port, nothing saved.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${CALLS:-20000}
CONC=${CONC:-50}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PROFILE=${PROFILE:-release}
if [ -n "${NO_BUILD:-}" ]; then
    : # use the binaries in target/$PROFILE as they are
elif [ "$PROFILE" = release ]; then
    nice -n 10 cargo build --release --quiet --bin callguard
    nice -n 10 cargo build --release --quiet -p callguard-sim --bin callguard-loadgen
else
    nice -n 10 cargo build --quiet --bin callguard
    nice -n 10 cargo build --quiet -p callguard-sim --bin callguard-loadgen
fi
BIN=target/$PROFILE
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
dir=$(mktemp -d)
chmod 755 "$dir"
pids=()
pg_data=""
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "$pg_data" ] && as_pg "$PG_BIN/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT

# The blacklist of bench/compare.sh: +15550000000 .. +15550099999; the load generator's
# built-in mix calls +1555000NNNN (listed) and +1415555NNNN (not listed).
{
    echo "rule_name,pattern,match_type,action,enabled,notes"
    seq 0 99999 | awk '{ printf "B%d,+1555%07d,exact,reject,true,\n", $1, $1 }'
} >"$dir/blocked.csv"

start_pg() { # -> PG_URL
    [ -x "$PG_BIN/initdb" ] || return 1
    mkdir -p "$dir/pg"
    [ "$(id -u)" -eq 0 ] && chown nobody: "$dir/pg"
    pg_data="$dir/pg/data"
    as_pg "$PG_BIN/initdb" -D "$pg_data" -U callguard --auth=trust --no-sync >/dev/null
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$PG_BIN/pg_ctl" -D "$pg_data" -l "$dir/pg/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/pg" start >/dev/null
    "$PG_BIN/createdb" -h "$dir/pg" -p "$port" -U callguard callguard
    PG_PORT=$port
    PG_URL="postgres://callguard@127.0.0.1:$port/callguard"
}

start_redis() { # -> REDIS_URL
    command -v redis-server >/dev/null 2>&1 || return 1
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --dir "$dir" >"$dir/redis.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 100); do
        python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),1); s.sendall(b"PING\r\n"); sys.exit(0 if s.recv(7)==b"+PONG\r\n" else 1)' "$port" 2>/dev/null && break
        sleep 0.1
    done
    REDIS_URL="redis://127.0.0.1:$port/0"
}

start_callguard() { # NAME LOG_YAML [EXTRA_YAML] -> appends to CG_AGIS, CG_HTTPS, CG_PIDS
    cat >"$dir/$1.yaml" <<YAML
normalize: { default_region: US }
default_trunk: support
trunks:
  support:
    dids: ["+18005550100"]
    lists:
      - { path: blocked.csv, as: blacklist, name: blocked }
listen: { agi: 127.0.0.1:0, esl: 127.0.0.1:0, http: 127.0.0.1:0 }
log: $2
${3:-}
YAML
    RUST_LOG=error "$BIN/callguard" serve --config "$dir/$1.yaml" >"$dir/out-$1" 2>"$dir/err-$1" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 600); do grep -q "^callguard listening" "$dir/out-$1" 2>/dev/null && break; sleep 0.1; done
    local line
    line=$(head -n1 "$dir/out-$1")
    [[ $line == "callguard listening"* ]] || { echo "callguard did not start:"; cat "$dir/err-$1"; exit 1; }
    CG_AGIS+=("$(sed -n 's/.* agi=\([^ ]*\).*/\1/p' <<<"$line")")
    CG_HTTPS+=("$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$line")")
    CG_PIDS+=("$pid")
}

stop_all() {
    for p in "${CG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    CG_PIDS=()
    CG_AGIS=()
    CG_HTTPS=()
}

row() { # NAME ROWS_COMMAND: one load generator per instance, all at once
    local name="$1" count_rows="$2" i
    local outs=()
    for i in "${!CG_AGIS[@]}"; do
        "$BIN/callguard-loadgen" --pbx agi --target "${CG_AGIS[$i]}" --calls "$CALLS" \
            --concurrency "$CONC" --json >"$dir/gen-$i.json" &
        outs+=("$!")
    done
    for p in "${outs[@]}"; do wait "$p" || true; done
    # One row per answered call: wait for the writers' last batches (30 s at most).
    local rows want
    want=$(python3 -c 'import json,sys; print(sum(json.load(open(f))["calls"] - json.load(open(f))["errors"] for f in sys.argv[1:]))' "$dir"/gen-*.json)
    for _ in $(seq 60); do
        rows=$(eval "$count_rows")
        [ "$rows" -ge "$want" ] && break
        sleep 0.5
    done
    if grep -h "call log" "$dir"/err-* 2>/dev/null | head -n 3 | grep -q .; then
        grep -h "call log" "$dir"/err-* | head -n 3 >&2
    fi
    python3 - "$name" "$rows" "$(cut -d' ' -f1 /proc/loadavg)" "$dir"/gen-*.json <<'PY'
import json, sys
name, rows, load, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rs = [json.load(open(f)) for f in files]
cps = sum(r["calls_per_second"] for r in rs)
calls = sum(r["calls"] for r in rs)
errors = sum(r["errors"] for r in rs)
p50 = max(r["connect_to_close"]["p50_ms"] for r in rs)
p99 = max(r["connect_to_close"]["p99_ms"] for r in rs)
err = f" ({errors} errors)" if errors else ""
print(f"| {name} | {calls:,}{err} | {cps:,.0f} | {p50:.2f} | {p99:.2f} | {rows} | {load} |")
PY
    rm -f "$dir"/gen-*.json
}

CG_AGIS=()
CG_HTTPS=()
CG_PIDS=()
echo "# bench/fleet.sh — $(date -u +%Y-%m-%dT%H:%MZ), $PROFILE build, $(nproc) cores, $CALLS calls per instance, $CONC concurrent each"
echo
echo "| setup | calls | calls/s (all) | p50 ms (worst) | p99 ms (worst) | rows logged | load avg |"
echo "|---|---|---|---|---|---|---|"
pg_rows() { "$PG_BIN/psql" -h "$dir/pg" -p "$PG_PORT" -U callguard -d callguard -X -A -t \
    -c "SELECT count(*) FROM callguard_calls"; }
pg_reset() { "$PG_BIN/psql" -h "$dir/pg" -p "$PG_PORT" -U callguard -d callguard -X -q \
    -c "TRUNCATE callguard_calls" 2>/dev/null || true; }
# Velocity: one rule counting every call (the load generator's callers never reach its max),
# in each instance's memory, then shared in Redis.
VELOCITY='velocity: [{ name: count-all, scope: caller, max: 10000, per: 1s }]'
# The rows of one and two instances (FLEET_ONLY=1 skips them).
if [ -z "${FLEET_ONLY:-}" ]; then
    sqlite_rows() { local n=0 f; for f in "$dir"/calls-*.db; do n=$((n + $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from calls').fetchone()[0])" "$f"))); done; echo "$n"; }

    start_callguard one "{ path: calls-one.db }"
    row "1 instance, SQLite log" sqlite_rows
    stop_all
    rm -f "$dir"/calls-*.db*

    start_callguard one "{ path: calls-one.db }"
    start_callguard two "{ path: calls-two.db }"
    row "2 instances, SQLite log each" sqlite_rows
    stop_all

    if start_pg; then
        start_callguard one "{ path: h-one.db, postgres: \"$PG_URL\" }"
        row "1 instance, PostgreSQL log" pg_rows
        stop_all
        pg_reset
        start_callguard one "{ path: h-one.db, postgres: \"$PG_URL\" }"
        start_callguard two "{ path: h-two.db, postgres: \"$PG_URL\" }"
        row "2 instances, one PostgreSQL log" pg_rows
        stop_all
    else
        echo "| PostgreSQL rows | not run: no $PG_BIN/initdb (.ci/install-deps) | | | | | |"
    fi

    start_callguard one "{ path: v-one.db }" "$VELOCITY"
    start_callguard two "{ path: v-two.db }" "$VELOCITY"
    v_rows() { local n=0 f; for f in "$dir"/v-*.db; do n=$((n + $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from calls').fetchone()[0])" "$f"))); done; echo "$n"; }
    row "2 instances, velocity counted in memory" v_rows
    stop_all
    rm -f "$dir"/v-*.db*
    if start_redis; then
        SHARED="$VELOCITY
velocity_limits: { redis: \"$REDIS_URL\" }"
        start_callguard one "{ path: v-one.db }" "$SHARED"
        start_callguard two "{ path: v-two.db }" "$SHARED"
        row "2 instances, velocity shared in Redis" v_rows
        stop_all
    else
        echo "| Redis row | not run: no redis-server (.ci/install-deps) | | | | | |"
    fi
fi

# The fleet of issue 21: three instances, PostgreSQL the store of record for the lists (and
# the decision log), Redis the velocity counters; the lists moved into the store first. Then
# the lag of an edit on instance 1 until instances 2 and 3 apply it.
LAG_EDITS=${LAG_EDITS:-10}
lag() { # LABEL: LAG_EDITS entries added through instance 1, timed until 2 and 3 apply them
    python3 - "$1" "$LAG_EDITS" "${CG_HTTPS[@]}" <<'PY'
import json, os, statistics, sys, threading, time, urllib.request
label, edits, https = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
token = os.environ["CALLGUARD_BENCH_TOKEN"]

def applied(addr):
    with urllib.request.urlopen(f"http://{addr}/api/v1/status", timeout=10) as r:
        return json.load(r)["store"].get("applied_version") or 0

def settle():  # every instance on the same rules version
    end = time.monotonic() + 120
    while time.monotonic() < end:
        vs = [applied(a) for a in https]
        if len(set(vs)) == 1:
            return vs[0]
        time.sleep(0.05)
    sys.exit(f"instances never agreed on a rules version: {vs}")

for a in https:  # what the row ran on: the store of record and the shared counters
    with urllib.request.urlopen(f"http://{a}/api/v1/status", timeout=10) as r:
        st = json.load(r)
    if st["store"].get("backend") != "postgres" or st["velocity"].get("counters") != "redis":
        print(f"  warning: {a}: store {st['store'].get('backend')}, counters "
              f"{st['velocity'].get('counters')}", file=sys.stderr)

lags = {a: [] for a in https[1:]}
request = []
for n in range(edits):
    before = settle()
    t0 = [0.0]
    seen = {}
    go = threading.Event()

    def watch(addr):
        go.wait()
        end = time.monotonic() + 60
        while time.monotonic() < end:
            v = applied(addr)
            if v > before:
                seen[addr] = (time.perf_counter() - t0[0], v)
                return
            time.sleep(0.005)

    ts = [threading.Thread(target=watch, args=(a,)) for a in https[1:]]
    for t in ts:
        t.start()
    body = json.dumps({"rule_name": f"Lag-{label.split()[0]}-{n}",
                       "pattern": f"+1555888{n:04d}" if label.startswith("idle") else f"+1555889{n:04d}",
                       "match_type": "exact"}).encode()
    req = urllib.request.Request(f"http://{https[0]}/api/v1/lists/blocked/entries", data=body,
                                 method="POST", headers={"Authorization": f"Bearer {token}",
                                                         "Content-Type": "application/json"})
    t0[0] = time.perf_counter()
    go.set()
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
    request.append((time.perf_counter() - t0[0]) * 1000)
    for t in ts:
        t.join()
    writer = applied(https[0])
    for a in https[1:]:
        if a not in seen:
            sys.exit(f"edit {n}: {a} did not apply it within 60 s")
        if seen[a][1] != writer:
            print(f"edit {n}: {a} saw version {seen[a][1]}, the writer runs {writer}", file=sys.stderr)
        lags[a].append(seen[a][0] * 1000)

def cells(xs):
    return f"{statistics.median(xs):.0f} | {max(xs):.0f}"
i2, i3 = https[1], https[2]
print(f"| {label} | {edits} | {cells(request)} | {cells(lags[i2])} | {cells(lags[i3])} | "
      f"{open('/proc/loadavg').read().split()[0]} |")
for name, xs in (("instance 1 request", request), ("instance 2", lags[i2]), ("instance 3", lags[i3])):
    print(f"  {label}, {name} (ms, in order): {', '.join(f'{x:.0f}' for x in xs)}", file=sys.stderr)
PY
}

if [ -n "${PG_URL:-}" ] || start_pg; then
    if [ -n "${REDIS_URL:-}" ] || start_redis; then
        pg_reset
        CALLGUARD_BENCH_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
        export CALLGUARD_BENCH_TOKEN
        FLEET="$VELOCITY
velocity_limits: { redis: \"$REDIS_URL\" }
http: { tokens: [{ name: bench, token_env: CALLGUARD_BENCH_TOKEN }] }"
        for n in one two three; do
            start_callguard "$n" "{ path: f-$n.db, postgres: \"$PG_URL\" }" "$FLEET"
        done
        "$BIN/callguard" store import --config "$dir/one.yaml" >"$dir/import.out" 2>&1 ||
            { cat "$dir/import.out"; exit 1; }
        row "3 instances, PostgreSQL store of record + log, Redis counters" pg_rows
        echo
        echo "Lag of a list edit (\`POST /api/v1/lists/blocked/entries\` on instance 1, 100,000-row list) until instances 2 and 3 report it in \`store.applied_version\` (ms from the request; polled every 5 ms):"
        echo
        echo "| while | edits | instance 1 request median | max | instance 2 median | max | instance 3 median | max | load avg |"
        echo "|---|---|---|---|---|---|---|---|---|"
        lag "idle instances"
        gens=()
        for i in "${!CG_AGIS[@]}"; do
            "$BIN/callguard-loadgen" --pbx agi --target "${CG_AGIS[$i]}" --duration 600 \
                --concurrency "$CONC" --json >"$dir/bg-$i.json" 2>/dev/null &
            gens+=("$!")
            pids+=("$!")
        done
        sleep 2
        lag "load on all three ($CONC concurrent each)"
        for p in "${gens[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
        stop_all
    else
        echo "| 3-instance fleet | not run: no redis-server (.ci/install-deps) | | | | | |"
    fi
else
    echo "| 3-instance fleet | not run: no $PG_BIN/initdb (.ci/install-deps) | | | | | |"
fi
