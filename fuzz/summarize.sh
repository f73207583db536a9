#!/usr/bin/env bash
# Prints the Markdown table of docs/fuzzing.md from fuzz/logs/*.log (run-all.sh).
cd "$(dirname "$0")"
echo "| target | duration | executions | exec/s | coverage (cov / ft) | corpus | peak RSS | result |"
echo "|---|---|---|---|---|---|---|---|"
for t in "$@"; do
    log=logs/$t.log
    [ -f "$log" ] || continue
    execs=$(grep -o 'stat::number_of_executed_units:[[:space:]]*[0-9]*' "$log" | awk '{print $2}')
    rate=$(grep -o 'stat::average_exec_per_sec:[[:space:]]*[0-9]*' "$log" | awk '{print $2}')
    rss=$(grep -o 'stat::peak_rss_mb:[[:space:]]*[0-9]*' "$log" | awk '{print $2}')
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | grep -o 'cov: [0-9]*' | awk '{print $2}')
    ft=$(echo "$last" | grep -o 'ft: [0-9]*' | awk '{print $2}')
    corp=$(echo "$last" | grep -o 'corp: [^ ]*' | awk '{print $2}')
    secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}')
    if grep -qE '^==[0-9]+==ERROR|SUMMARY: libFuzzer|panicked at|deadly signal' "$log"; then
        result="FINDING: $(grep -oE 'artifact_prefix=[^;]*; Test unit written to [^ ]*' "$log" | sed 's/.*written to //' | head -n 1)"
    elif [ -n "$secs" ]; then
        result="no finding"
    else
        result="running / incomplete"
    fi
    echo "| \`$t\` | ${secs:-?} s | ${execs:-?} | ${rate:-?} | $cov / $ft | $corp | ${rss:-?} MB | $result |"
done
