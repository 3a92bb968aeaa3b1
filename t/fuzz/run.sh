#!/bin/sh
# Runs libFuzzer targets for a while each and prints one line per target:
#   fuzz_json: 1234567 executions in 60 s, corpus 412, no crash
# Usage: t/fuzz/run.sh OBJDIR SECONDS target ...
# Exit status 1 when a target crashed (its input is in OBJDIR/artifacts/).

set -u

dir=$1
secs=$2
shift 2

here=$(cd "$(dirname "$0")" && pwd)
seeds="$dir/seeds"
failed=0

if ! [ "$seeds/.done" -nt "$here/seeds.pl" ]; then
    rm -rf "$seeds"
    perl "$here/seeds.pl" "$seeds" || exit 1
    touch "$seeds/.done"
fi
mkdir -p "$dir/artifacts"

for t in "$@"; do
    corpus="$dir/corpus/$t"
    mkdir -p "$corpus"
    [ -d "$seeds/$t" ] && cp -n "$seeds/$t"/* "$corpus"/ 2>/dev/null
    [ -d "$here/corpus/$t" ] && cp -n "$here/corpus/$t"/* "$corpus"/ \
        2>/dev/null

    log="$dir/$t.log"

    # a UBSan report aborts (halt_on_error), so libFuzzer keeps the input
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ASAN_OPTIONS=detect_leaks=1 \
    "$dir/$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/$t-" "$corpus" >"$log" 2>&1
    rc=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    size=$(ls "$corpus" | wc -l)

    if [ "$rc" -eq 0 ]; then
        echo "$t: ${runs:-0} executions in $secs s, corpus $size, no crash"
    else
        failed=1
        echo "$t: CRASH after ${runs:-?} executions (exit $rc), see $log:"
        grep -E "ERROR|runtime error|assertion failed|Test unit written" \
            "$log" | head -5 | sed 's/^/    /'
    fi
done

exit $failed
