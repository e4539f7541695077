#!/bin/sh
# Runs the NOP round-trip benchmark side by side: C with liburing (nop.c) and
# Go with kasync's ring package (go test -run '^$' -bench Nop ./ring/), both
# pinned to CPU 0, alternating C and Go runs so that both see the same machine.
# Needs gcc and liburing-dev (apt-get install -y liburing-dev).
# Note: taskset pins the Go runtime's own threads (sysmon) to CPU 0 as well;
# they preempt the benchmark thread thousands of times a second, which costs
# Go some 10-25% here. Pinning only the benchmarking thread narrows the gap.
# Usage: bench/liburing/run.sh [count] [ops per C run]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
count=${1:-5}
ops=${2:-2000000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! gcc -O2 -o "$tmp/nop" "$here/nop.c" -luring; then
	echo "building nop.c failed: is liburing-dev installed? (apt-get install -y liburing-dev)" >&2
	exit 1
fi
i=0
while [ "$i" -lt "$count" ]; do
	taskset -c 0 "$tmp/nop" "$ops" 1 | tee -a "$tmp/c.txt"
	(cd "$root" && taskset -c 0 go test -run '^$' -bench Nop -count 1 ./ring/) | grep '^Benchmark' | tee -a "$tmp/go.txt"
	i=$((i + 1))
done

median() { sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# pick NAME UNIT FILE: the median of the value before UNIT on NAME's lines.
pick() {
	awk -v re="^$1(-[0-9]+)?\$" -v unit="$2" '$1 ~ re { for (i = 2; i <= NF; i++) if ($i == unit) print $(i-1) }' "$3" | median
}
for unit in ns/op cpu-ns/op; do
	echo "== median $unit of $count runs"
	for b in 1 32; do
		c=$(pick "BenchmarkNopLiburing/batch=$b" $unit "$tmp/c.txt")
		g=$(pick "BenchmarkNop/batch=$b" $unit "$tmp/go.txt")
		r=$(pick "BenchmarkNopRegisteredRing/batch=$b" $unit "$tmp/go.txt")
		awk -v b="$b" -v c="$c" -v g="$g" -v r="$r" 'BEGIN {
			printf "batch=%-3s C liburing %6.1f   Go ring %6.1f (Go/C %.2f)   Go ring, registered fd %6.1f (Go/C %.2f)\n", b, c, g, g/c, r, r/c }'
	done
done
