#!/usr/bin/env bash
# dptrain against PyTorch 1.13 on this machine, back to back in one run
# (BENCHMARKS.md; issues #2 and #4). Prints two markdown tables on stdout:
#
#  1. training throughput: for each configuration, dptrain non-private and
#     private examples/s (one process, `dptrain bench`), PyTorch non-private
#     examples/s with glibc malloc and with jemalloc (scripts/torch_bench.py;
#     the same network: parameter counts must agree, and dptrain's weights
#     loaded into the PyTorch model must give dptrain's logits), the ratio
#     dptrain-private / best PyTorch, the achieved GFLOP/s (3× the forward
#     FLOPs of convolutions and linear layers per example), and the peak RSS
#     of each process;
#  2. conv layers: forward/backward GFLOP/s of single 3×3 convolutions at
#     batch 32 (go test -bench ConvLayer) as a fraction of the conv-shaped
#     SGEMM measured in the same run, with PyTorch's rate for the same layer.
#
# Usage: scripts/bench_compare.sh [--quick] [--no-convs] [--no-models] [--raw DIR]
#   --quick      cnn-cifar and resnet18 32×32 only, fewer steps (a smoke run)
#   --raw DIR    keep the raw JSON lines and go test output in DIR
#   --report DIR only print the tables of an earlier run's --raw DIR
# Environment: THREADS (default 2: GOMAXPROCS and --threads for dptrain,
# torch.set_num_threads for PyTorch), STEPS (timed steps per mode; default 5,
# 3 at 224×224), MAXLOAD and MAXWAIT (default 2.5 and 600: before each
# measurement wait up to MAXWAIT seconds for the 1-minute load average to drop
# below MAXLOAD; each row records the load), TORCH_PY (default
# /usr/bin/python3, Debian's interpreter with python3-torch), ROWS (a bash
# regular expression: only the rows "model size batch stem" it matches,
# e.g. ROWS='224'), REPEAT (default 1: runs of each row, dptrain and
# PyTorch alternating, so that a slow phase of a shared machine falls on
# both; the table gives medians: of each side's rates, and of the ratios
# of each run's dptrain figure to the PyTorch run right after it).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
quick=0 convs=1 models=1 raw="" driver="-" report=0
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--no-convs) convs=0 ;;
	--no-models) models=0 ;;
	--raw) raw="$2"; shift ;;
	--report) raw="$2" report=1; shift ;;
	-h | --help) sed -n '2,28p' "$0"; exit 0 ;;
	*) echo "bench_compare: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
THREADS=${THREADS:-2}
MAXLOAD=${MAXLOAD:-2.5}
REPEAT=${REPEAT:-1}
if ! [[ $REPEAT =~ ^[1-9][0-9]*$ ]]; then
	echo "bench_compare: REPEAT=$REPEAT: want a positive number of runs per row" >&2
	exit 2
fi
MAXWAIT=${MAXWAIT:-600}
TORCH_PY=${TORCH_PY:-/usr/bin/python3}
JEMALLOC=""
for f in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2; do
	if [ -e "$f" ]; then JEMALLOC=$f; break; fi
done
if ! "$TORCH_PY" -c 'import torch, numpy' 2>/dev/null; then
	echo "bench_compare: $TORCH_PY cannot import torch and numpy (apt-get install python3-torch, or set TORCH_PY)" >&2
	exit 1
fi
if [ -z "$JEMALLOC" ]; then
	echo "bench_compare: libjemalloc2 not installed: PyTorch with glibc malloc only (apt-get install libjemalloc2)" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${raw:-$work/raw}
mkdir -p "$out"
if [ $report = 1 ]; then
	models=0 convs=0
	[ -s "$out/models.jsonl" ] && models=1
	[ -s "$out/convlayer.txt" ] && convs=1
	driver=$(cat "$out/driver" 2>/dev/null || echo "-")
	measure=0
else
	measure=1
	: >"$out/models.jsonl"
	: >"$out/equivalence.jsonl"
fi

load1() { cut -d' ' -f1 /proc/loadavg; }
waitload() {
	local i
	for i in $(seq $((MAXWAIT / 10))); do
		awk -v l="$(load1)" -v m="$MAXLOAD" 'BEGIN{exit !(l < m)}' && return 0
		[ "$i" = 1 ] && echo "bench_compare: load $(load1) ≥ $MAXLOAD, waiting (up to ${MAXWAIT}s)" >&2
		sleep 10
	done
	echo "bench_compare: load still $(load1); measuring anyway (figures are noisier)" >&2
}

# scratch NAME: builds $work/NAME/NAME from the Go program on stdin in a
# scratch module that points at this tree (throwaway drivers stay out of the
# repository's packages).
scratch() {
	mkdir -p "$work/$1"
	cat >"$work/$1/main.go"
	printf 'module %s\n\ngo 1.26\n\nrequire dptrain v0.0.0\n\nreplace dptrain => %s\n' "$1" "$root" >"$work/$1/go.mod"
	cp go.sum "$work/$1/" 2>/dev/null || true
	(cd "$work/$1" && GOFLAGS=-mod=mod go build -o "$1" .)
}

# dptrain's side: `dptrain bench --json` when the CLI has it, else a small
# driver over train.Bench; and the model dumper for the equivalence check.
build_ours() {
	echo "bench_compare: building" >&2
	bench_help=""
	if go build -o "$work/dptrain" ./cmd/dptrain 2>"$work/build.err"; then
		bench_help=$("$work/dptrain" bench -h 2>&1 || true)
	fi
	if [[ $bench_help == *-batch-size* ]]; then
		driver="dptrain bench"
	else
		driver="train.Bench driver"
		scratch benchdriver <<'GO'
// Throwaway driver: train.Bench as `dptrain bench --json` prints it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"dptrain/train"
)

func main() {
	var o train.BenchOptions
	flag.StringVar(&o.Model, "model", "", "")
	flag.IntVar(&o.ImageSize, "image-size", 0, "")
	flag.IntVar(&o.BatchSize, "batch-size", 0, "")
	flag.StringVar(&o.Stem, "stem", "", "")
	flag.IntVar(&o.Steps, "steps", 5, "")
	flag.IntVar(&o.Threads, "threads", 0, "")
	flag.Parse()
	r, err := train.Bench(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(r)
}
GO
	fi
	scratch benchdump <<'GO'
// Throwaway: dumps a dptrain model's parameters (Params order), an input
// batch and the model's logits for scripts/torch_bench.py --check-dump.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"

	"dptrain/nn"
	"dptrain/tensor"
)

func main() {
	model := flag.String("model", "", "")
	size := flag.Int("image-size", 32, "")
	stem := flag.String("stem", "", "")
	batch := flag.Int("batch-size", 2, "")
	out := flag.String("out", "", "")
	flag.Parse()
	const classes = 10
	m, err := nn.NewModel(nn.ModelConfig{Name: *model, NumClasses: classes, InputShape: [3]int{3, *size, *size}, Stem: *stem, Seed: 7})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r := rand.New(rand.NewPCG(7, 7))
	// Move biases and GroupNorm affine parameters away from 0 and 1, so
	// that a missing bias or swapped γ, β shows in the logits.
	n := 0
	for _, p := range m.Params() {
		n += len(p.Value)
		if len(p.Shape) == 1 {
			for i := range p.Value {
				p.Value[i] += float32(0.1 * r.NormFloat64())
			}
		}
	}
	x := tensor.New(*batch, 3, *size, *size)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	y := m.Forward(x, true)
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(f)
	binary.Write(w, binary.LittleEndian, []int32{0x44505442, int32(*batch), 3, int32(*size), classes, int32(n)})
	for _, p := range m.Params() {
		binary.Write(w, binary.LittleEndian, p.Value)
	}
	binary.Write(w, binary.LittleEndian, x.Data)
	binary.Write(w, binary.LittleEndian, y.Data)
	if err = w.Flush(); err == nil {
		err = f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
GO
}

ours() { # model size batch stem steps
	if [ "$driver" = "dptrain bench" ]; then
		local extra=()
		[[ $bench_help == *-steps* ]] && extra+=(--steps "$5")
		[[ $bench_help == *-threads* ]] && extra+=(--threads "$THREADS")
		GOMAXPROCS=$THREADS "$work/dptrain" bench --model "$1" --image-size "$2" --batch-size "$3" --stem "$4" "${extra[@]}" --json
	else
		GOMAXPROCS=$THREADS "$work/benchdriver/benchdriver" --model "$1" --image-size "$2" --batch-size "$3" \
			--stem "$4" --steps "$5" --threads "$THREADS"
	fi
}

# Parameter counts of our models (10 classes), to check PyTorch builds the
# same network.
params() { # model size stem
	case "$1/$2/$3" in
	cnn-cifar/32/*) echo 550570 ;;
	wrn-16-4/32/*) echo 2748890 ;;
	resnet18/32/cifar) echo $((11689512 - 1000 * 512 - 1000 + 10 * 512 + 10 - 3 * 64 * 49 + 3 * 64 * 9)) ;;
	resnet18/224/imagenet) echo $((11689512 - 1000 * 512 - 1000 + 10 * 512 + 10)) ;;
	*) echo 0 ;;
	esac
}

if [ $measure = 1 ] && [ $models = 1 ]; then
	build_ours
	echo "$driver" >"$out/driver"
	if [ $quick = 1 ]; then
		configs=("cnn-cifar 32 256 cifar" "resnet18 32 128 cifar")
	else
		configs=("cnn-cifar 32 256 cifar" "wrn-16-4 32 128 cifar" "resnet18 32 128 cifar"
			"resnet18 224 32 imagenet" "resnet18 224 16 imagenet")
	fi
	for c in "${configs[@]}"; do
		if [ -n "${ROWS:-}" ] && ! [[ "$c" =~ $ROWS ]]; then continue; fi
		read -r model size batch stem <<<"$c"
		steps=${STEPS:-$([ "$size" -ge 128 ] && echo 3 || echo 5)}
		[ $quick = 1 ] && steps=3
		tstem=$stem
		case $model in cnn-* | wrn-*) tstem="" ;; esac
		"$work/benchdump/benchdump" --model "$model" --image-size "$size" --stem "$stem" --out "$work/dump.bin"
		"$TORCH_PY" scripts/torch_bench.py --model "$model" --image-size "$size" --stem "$tstem" \
			--check-dump "$work/dump.bin" >>"$out/equivalence.jsonl"
		tb=("$TORCH_PY" scripts/torch_bench.py --model "$model" --image-size "$size" --batch-size "$batch"
			--stem "$tstem" --steps "$steps" --threads "$THREADS" --expect-params "$(params "$model" "$size" "$stem")")
		for rep in $(seq "$REPEAT"); do
			waitload
			echo "bench_compare: $model ${size}x$size b$batch, run $rep of $REPEAT (load $(load1))" >&2
			ours "$model" "$size" "$batch" "$stem" "$steps" | sed "s/^{/{\"framework\":\"dptrain\",\"load\":$(load1),/" >>"$out/models.jsonl"
			"${tb[@]}" >>"$out/models.jsonl"
			if [ -n "$JEMALLOC" ]; then
				LD_PRELOAD=$JEMALLOC "${tb[@]}" >>"$out/models.jsonl"
			fi
		done
	done
fi

if [ $measure = 1 ] && [ $convs = 1 ]; then
	waitload
	echo "bench_compare: conv layers (load $(load1))" >&2
	GOMAXPROCS=$THREADS go test ./nn -run '^$' -bench 'ConvLayer' -benchtime "${CONV_BENCHTIME:-5x}" -count 1 >"$out/convlayer.txt"
	GOMAXPROCS=$THREADS go test ./tensor -run '^$' -bench 'Sgemm/square-1024' -benchtime 5x -count 1 >"$out/sgemm.txt"
	pre=()
	if [ -n "$JEMALLOC" ]; then pre=(env LD_PRELOAD="$JEMALLOC"); fi
	"${pre[@]}" "$TORCH_PY" scripts/torch_bench.py --conv-layers --batch-size 32 --steps 5 --threads "$THREADS" >"$out/torch_convs.jsonl"
fi

[ $measure = 1 ] && load1 >"$out/endload"
"$TORCH_PY" - "$out" "$models" "$convs" "$driver" "$THREADS" <<'EOF'
import json, os, re, sys
nan = float("nan")
out, models, convs, driver, threads = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4], sys.argv[5]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Machine: {cpu}, {os.cpu_count()} CPUs; {threads} threads each side; dptrain via {driver}; "
      f"1-minute load average at the end {open(f'{out}/endload').read().strip() if os.path.exists(f'{out}/endload') else '?'}.\n")
if models:
    rows = [json.loads(l) for l in open(f"{out}/models.jsonl") if l.strip()]
    print("| model | image | batch | dptrain non-private img/s | dptrain private img/s | private overhead | "
          "PyTorch img/s (glibc) | PyTorch img/s (jemalloc) | dptrain private / PyTorch best | "
          "dptrain non-private / PyTorch best | GFLOP/s dptrain non-priv / PyTorch best | "
          "peak RSS MiB dptrain non-priv / priv | peak RSS MiB PyTorch (best) | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else sum(sorted(v)[len(v) // 2 - 1:len(v) // 2 + 1]) / 2
    # runs: a dptrain line, then its PyTorch lines (one per allocator);
    # repeated runs of a row are grouped by (model, image, batch).
    groups, order = {}, []
    i = 0
    while i < len(rows):
        d = rows[i]
        assert d["framework"] == "dptrain", d
        t = {}
        i += 1
        while i < len(rows) and rows[i]["framework"] == "pytorch":
            t[rows[i]["allocator"]] = rows[i]
            i += 1
        k = (d["model"], d["image_size"], d["batch_size"])
        if k not in groups:
            groups[k] = []
            order.append(k)
        groups[k].append((d, t))
    for k in order:
        runs = groups[k]
        allocs = sorted({a for _, t in runs for a in t})
        teps = {a: med([t[a]["examples_per_sec"] for _, t in runs if a in t]) for a in allocs}
        ba = max(allocs, key=lambda a: teps[a])
        paired = [(d, t[ba]) for d, t in runs if ba in t]
        b0 = paired[0][1]
        npv = med([d["nonprivate_examples_per_sec"] for d, _ in runs])
        pv = med([d["private_examples_per_sec"] for d, _ in runs])
        ov = med([d["overhead"] for d, _ in runs])
        rp = med([d["private_examples_per_sec"] / b["examples_per_sec"] for d, b in paired])
        rn = med([d["nonprivate_examples_per_sec"] / b["examples_per_sec"] for d, b in paired])
        f = lambda a: f'{teps[a]:.1f}' if a in teps else "–"
        rss_ours_np = max(d.get("nonprivate_peak_rss_mib", 0) for d, _ in runs)
        rss_ours = max(d["peak_rss_mib"] for d, _ in runs)
        rss_t = med([b["peak_rss_mib"] for _, b in paired])
        loads = sorted(d["load"] for d, _ in runs)
        load = f'{loads[0]}' if len(loads) == 1 else f'{loads[0]}–{loads[-1]}'
        print(f'| {k[0]} | {k[1]} | {k[2]} | {npv:.1f} | {pv:.1f} | {ov:.2f}× | {f("glibc")} | {f("jemalloc")} | '
              f'{rp:.2f} | {rn:.2f} | '
              f'{3 * b0.get("forward_gflop_per_example", nan) * npv:.0f} / '
              f'{med([b.get("train_gflops", nan) for _, b in paired]):.0f} | '
              f'{rss_ours_np:.0f} / {rss_ours:.0f} | {rss_t:.0f} ({ba}) | {load} |')
    if any(len(r) > 1 for r in groups.values()):
        print(f"\nMedians over {', '.join(str(len(groups[k])) for k in order)} runs per row (dptrain and PyTorch alternating); "
              "ratios are medians of each run's ratio; dptrain's peak RSS is the largest of its runs, PyTorch's the median.")
    eq = [json.loads(l) for l in open(f"{out}/equivalence.jsonl") if l.strip()]
    print("\nSame networks: " + "; ".join(
        f'{e["model"]} {e["image_size"]}² {e["params"]:,} parameters, logits rel. diff {e["rel"]:.1e}' for e in eq) + ".")
    print()
if convs:
    rate = {}
    for l in open(f"{out}/convlayer.txt"):
        m = re.match(r"BenchmarkConvLayer/(\S+)/op=(\S+?)-\d+\s.*?([\d.]+) GFLOP/s", l)
        if m:
            rate[(m[1], m[2])] = float(m[3])
    sq = {}
    for l in open(f"{out}/sgemm.txt"):
        m = re.match(r"BenchmarkSgemm/square-1024/serial=(\w+)-\d+\s.*?([\d.]+) GFLOP/s", l)
        if m:
            sq[m[1]] = float(m[2])
    tc = {r["layer"]: r for r in map(json.loads, open(f"{out}/torch_convs.jsonl"))}
    print(f'SGEMM 1024³ in the same run: {sq.get("true", 0):.1f} GFLOP/s serial, {sq.get("false", 0):.1f} parallel.\n')
    print("| layer (B=32, 3×3) | SGEMM serial | SGEMM parallel | forward GFLOP/s | fwd / SGEMM par | backward GFLOP/s | "
          "bwd / SGEMM par | private bwd GFLOP/s | private / non-private bwd | PyTorch fwd | PyTorch bwd |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for layer in dict.fromkeys(k for k, _ in rate):
        g = lambda op: rate.get((layer, op), float("nan"))
        p = tc.get(layer, {})
        print(f'| {layer} | {g("sgemm-serial"):.1f} | {g("sgemm-parallel"):.1f} | {g("forward"):.1f} | '
              f'{g("forward") / g("sgemm-parallel"):.0%} | {g("backward"):.1f} | {g("backward") / g("sgemm-parallel"):.0%} | '
              f'{g("backward-private"):.1f} | {g("backward") / g("backward-private"):.2f}× | '
              f'{p.get("forward_gflops", float("nan")):.1f} | {p.get("backward_gflops", float("nan")):.1f} |')
EOF
