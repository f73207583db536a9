#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) each, two at a time, at the
# lowest CPU priority, on the stable toolchain. Logs: fuzz/logs/TARGET.log;
# the last libFuzzer status line and the final stats of each run are the
# figures recorded in docs/fuzzing.md.
#
#   bash fuzz/run-all.sh [SECONDS] [TARGET...]
set -u
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(agi_decoder esl_decoder wildcard list_csv list_json list_xml config_load)
fi
export RUSTC_BOOTSTRAP=1
mkdir -p logs
RUSTC_BOOTSTRAP=1 cargo fuzz build || exit 1

run() {
    local t=$1
    # -timeout: one input taking 60 s is a finding (a hang), not a slow case. Not less: the
    # first input of config_load also pays the one-time build of libphonenumber's metadata
    # (every region's regexes), which under ASan on a busy machine took over 10 s.
    nice -n 19 cargo fuzz run "$t" -- -max_total_time="$secs" -timeout=60 \
        -rss_limit_mb=2048 -print_final_stats=1 >"logs/$t.log" 2>&1
    echo "$(date -u +%FT%TZ) $t exit $?" >>logs/summary
}

i=0
while [ $i -lt ${#targets[@]} ]; do
    run "${targets[$i]}" &
    if [ $((i + 1)) -lt ${#targets[@]} ]; then
        run "${targets[$((i + 1))]}" &
    fi
    wait
    i=$((i + 2))
done
