#!/bin/sh
# tests/fuzz/run.sh - one short fuzz run, as a meson test of the fuzz suite (build-fuzz/ only):
#
#   run.sh TARGET SEEDS KIND SECONDS DIR
#
# Writes fresh seeds for KIND into DIR/seeds-KIND (tests/fuzz/seeds.c), then runs the libFuzzer
# TARGET for SECONDS on DIR/corpus-KIND (kept between runs, so later runs start from what
# earlier ones found) plus the seeds. Exit status 1 on any crash, sanitizer report, leak,
# timeout or failed property (not libFuzzer's default 77, which meson counts as skipped); the
# input that did it is saved as DIR/crash-KIND-* and printed by path: reproduce with
# `TARGET FILE`.
set -eu
target=$1 seeds=$2 kind=$3 seconds=$4 dir=$5
rm -rf "$dir/seeds-$kind"
mkdir -p "$dir/corpus-$kind"
"$seeds" "$kind" "$dir/seeds-$kind"
exec "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
	-error_exitcode=1 -timeout_exitcode=1 \
	-print_final_stats=1 -artifact_prefix="$dir/crash-$kind-" \
	"$dir/corpus-$kind" "$dir/seeds-$kind"
