#!/usr/bin/env bash
# Measures `dptrain prepare` on an ImageFolder tree: wall time, images/s and
# peak RSS (GNU time), for each --short-side/--image-size given, and the
# projected time for ImageNet's 1,281,167 training images.
#
# usage: scripts/bench_prepare.sh TREE [SIZE_FLAG ...]
#   e.g. scripts/bench_prepare.sh /work/synth/in10k --short-side=256 --image-size=128
# Env: DPTRAIN (binary, default bin/dptrain), OUT (scratch folder, removed
# after each run; default a temporary folder), WORKERS (default: all CPUs),
# TAGS (go build tags, e.g. noturbo for the image/jpeg decoder).
# A synthetic tree: go run ./scripts/synthimagenet -out TREE -classes 1000 -per-class 10
set -euo pipefail
tree=${1:?usage: scripts/bench_prepare.sh TREE [SIZE_FLAG ...]}
shift
flags=("$@")
[ ${#flags[@]} -eq 0 ] && flags=(--short-side=256)
cd "$(dirname "$0")/.."
bin=${DPTRAIN:-}
if [ -z "$bin" ]; then
	bin=$(mktemp -d)/dptrain
	go build ${TAGS:+-tags "$TAGS"} -o "$bin" ./cmd/dptrain
fi
scratch=${OUT:-$(mktemp -d)}
progress=()
"$bin" prepare -h 2>&1 | grep -q -- '-progress' && progress=(--progress none) # older binaries have no such flag
n=$(find "$tree" -type f | wc -l)
echo "tree $tree: $n files, $(du -sh "$tree" | cut -f1); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
for f in "${flags[@]}"; do
	out="$scratch/prepared"
	rm -rf "$out"
	log=$(mktemp)
	/usr/bin/time -v "$bin" prepare --src "$tree" --out "$out" "$f" "${progress[@]}" ${WORKERS:+--workers "$WORKERS"} >"$log.out" 2>"$log"
	wall=$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}')
	rss=$(grep 'Maximum resident set size' "$log" | awk '{print $NF}')
	secs=$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
	size=$(du -sh "$out" | cut -f1)
	awk -v f="$f" -v n="$n" -v s="$secs" -v r="$rss" -v sz="$size" 'BEGIN {
		rate = n / s
		printf "%-18s %8d images  %7.1f s  %7.1f images/s  peak RSS %6.0f MiB  output %s  1.28M images: %.1f h\n", f, n, s, rate, r/1024, sz, 1281167/rate/3600 }'
	cat "$log.out"
	rm -rf "$out" "$log" "$log.out"
done
