package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"dptrain/dist"
	"dptrain/dpsgd"
	"dptrain/train"
)

func init() {
	register("bench", "time private vs non-private training steps: --model M --image-size H --batch-size B [--json]", runBench)
}

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o train.BenchOptions
	fs.StringVar(&o.Model, "model", "resnet18", "model name")
	fs.IntVar(&o.ImageSize, "image-size", 32, "input height and width")
	fs.IntVar(&o.BatchSize, "batch-size", 128, "examples per step")
	fs.StringVar(&o.Stem, "stem", "", "resnet stem: imagenet or cifar (default by image size)")
	fs.IntVar(&o.Steps, "steps", 5, "timed steps per mode (median reported)")
	fs.IntVar(&o.Threads, "threads", 0, "threads (default all cores)")
	fs.IntVar(&o.NumClasses, "classes", 10, "number of classes")
	fs.IntVar(&o.MaterializeBudget, "materialize-budget", 0, "floats per layer for stored per-example gradients (0: default)")
	noise := fs.String("noise", string(dpsgd.ModeSecure), "private step's noise: secure (training's default) or seeded")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags are --name=value)", fs.Arg(0))
	}
	var bad error
	fs.Visit(func(f *flag.Flag) {
		switch {
		case f.Name == "steps" && o.Steps < 1:
			bad = fmt.Errorf("--steps %d: want ≥ 1 timed steps", o.Steps)
		case f.Name == "classes" && o.NumClasses < 2:
			bad = fmt.Errorf("--classes %d: want ≥ 2", o.NumClasses)
		case f.Name == "threads" && (o.Threads < 0 || o.Threads > train.MaxThreads):
			bad = fmt.Errorf("--threads %d: want 0 (all cores) or 1 to %d", o.Threads, train.MaxThreads)
		case f.Name == "materialize-budget" && o.MaterializeBudget < 0:
			bad = fmt.Errorf("--materialize-budget %d: want ≥ 0", o.MaterializeBudget)
		}
	})
	if bad != nil {
		return bad
	}
	mode, err := dpsgd.ParseNoiseMode(*noise)
	if err != nil {
		return fmt.Errorf("--noise: %w", err)
	}
	o.Noise = mode
	comm, err := dist.FromEnvironment()
	if err != nil {
		return err
	}
	defer comm.Close()
	o.Comm = comm
	res, err := train.Bench(o)
	if err != nil {
		return rankFailed(comm, err)
	}
	if comm.Rank() != 0 {
		return nil // rank 0 reports the job's figures
	}
	if *asJSON {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	fmt.Fprintf(stdout, "%s %dx%d batch %d, %d threads", res.Model, res.ImageSize, res.ImageSize, res.BatchSize, res.Threads)
	if res.Ranks > 1 {
		fmt.Fprintf(stdout, " × %d ranks", res.Ranks)
	}
	fmt.Fprintf(stdout, ", GEMM %s, convolutions %s, %s noise\n", res.GEMM, res.Conv, res.Noise)
	fmt.Fprintf(stdout, "non-private: %8.1f examples/s  (median step %.3f s, peak RSS %.0f MiB)\n", res.NonprivateExamplesPerSec, res.NonprivateStepSecondsMed, res.NonprivatePeakRSSMiB)
	fmt.Fprintf(stdout, "private:     %8.1f examples/s  (median step %.3f s, peak RSS %.0f MiB)\n", res.PrivateExamplesPerSec, res.PrivateStepSecondsMedian, res.PeakRSSMiB)
	fmt.Fprintf(stdout, "overhead %.2fx time, %.2fx memory\n", res.Overhead, res.MemoryRatio)
	return nil
}
