#!/usr/bin/env bash
# Data-parallel scaling on one machine: `dptrain bench` of the same batch as
# 1 rank × T threads and as R ranks × T/R threads (mpirun), alternated
# ROUNDS times, both sides in one run; prints examples/s and their ratio,
# then the all-reduce of a ResNet-18 gradient (44.7 MB) against a memcpy.
# Usage: scripts/bench_ranks.sh [ROUNDS]   (needs Open MPI: make build-mpi)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
T=${THREADS:-$(nproc)}
R=${RANKS:-2}
BIN=bin/dptrain-mpi
[ -x "$BIN" ] || make -s build-mpi
MPIRUN=(mpirun --oversubscribe --bind-to none -np "$R")
[ "$(id -u)" = 0 ] && MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$R")
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
printf "%-10s %5s %5s %6s  %12s %12s %12s %12s  %s\n" model image batch mode "1r np ex/s" "${R}r np ex/s" "1r priv ex/s" "${R}r priv ex/s" "ratio np / priv"
for spec in "cnn-cifar 32 256" "resnet18 32 128"; do
	set -- $spec
	m=$1 img=$2 b=$3
	for round in $(seq "$ROUNDS"); do
		one=$("$BIN" bench --model "$m" --image-size "$img" --batch-size "$b" --steps 4 --threads "$T" --json)
		many=$("${MPIRUN[@]}" "$BIN" bench --model "$m" --image-size "$img" --batch-size "$b" --steps 4 --threads $((T / R)) --json)
		python3 - "$m" "$img" "$b" "$round" "$one" "$many" <<'PY'
import json, sys
m, img, b, rnd, one, many = sys.argv[1:7]
o, n = json.loads(one), json.loads(many)
rn = n["nonprivate_examples_per_sec"] / o["nonprivate_examples_per_sec"]
rp = n["private_examples_per_sec"] / o["private_examples_per_sec"]
print(f"{m:10s} {img:>5s} {b:>5s} {'r'+rnd:>6s}  {o['nonprivate_examples_per_sec']:12.1f} {n['nonprivate_examples_per_sec']:12.1f} {o['private_examples_per_sec']:12.1f} {n['private_examples_per_sec']:12.1f}  {rn:.3f} / {rp:.3f}")
PY
	done
done
echo "# all-reduce of 11,175,000 float32 (44.7 MB) on $R ranks vs a copy() of the same size"
go test -tags mpi -c -o /tmp/dist.test ./dist
DPTRAIN_DIST_BENCH=1 "${MPIRUN[@]}" -x DPTRAIN_DIST_BENCH /tmp/dist.test -test.run='^TestMPIWorker$' 2>&1 | grep -v '^PASS' || true
