package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"dptrain/dist"
	"dptrain/train"
)

func init() {
	register("train", "train a model (DP-SGD by default): --config run.yaml [--key=value …] --out DIR", runTrain)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// splitTrainArgs separates --config and --out from --key=value overrides of
// config keys (which the flag package cannot declare in advance).
func splitTrainArgs(args []string) (config, out string, overrides [][2]string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" || a == "-help" {
			return "", "", nil, flag.ErrHelp
		}
		if !strings.HasPrefix(a, "-") {
			return "", "", nil, fmt.Errorf("unexpected argument %q (flags are --key=value)", a)
		}
		k, v, hasV := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasV {
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				v = args[i+1]
				i++
			} else {
				v = "true" // boolean flag
			}
		}
		switch k {
		case "config":
			config = v
		case "out":
			out = v
		default:
			overrides = append(overrides, [2]string{k, v})
		}
	}
	return config, out, overrides, nil
}

func trainUsage(w io.Writer) {
	fmt.Fprintf(w, `usage: dptrain train --config run.yaml [--key=value …] --out DIR

Trains as configured (YAML with flat keys; see configs/). Every config key can
be given or overridden as a flag, e.g. --epochs=10 --target-epsilon=3.
Re-running the same command resumes from the newest valid checkpoint in DIR.

config keys: %s
`, strings.Join(train.ConfigKeys(), ", "))
}

func runTrain(args []string, stdout, stderr io.Writer) error {
	cfgPath, out, overrides, err := splitTrainArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		trainUsage(stdout)
		return nil
	}
	if err != nil {
		trainUsage(stderr)
		return err
	}
	var cfg train.Config
	if cfgPath != "" {
		if cfg, err = train.LoadConfigFile(cfgPath); err != nil {
			return err
		}
	}
	for _, kv := range overrides {
		if err := cfg.ApplyOverride(kv[0], kv[1]); err != nil {
			return err
		}
	}
	if out == "" {
		return errors.New("--out DIR is required (checkpoints, metrics.jsonl, summary.json, report.md go there)")
	}
	comm, err := dist.FromEnvironment()
	if err != nil {
		return err
	}
	defer comm.Close()
	opt := train.Options{Out: out, Log: stderr, Terminal: isTerminal(stderr), Comm: comm}
	if comm.Rank() != 0 {
		opt.Log, opt.Terminal = nil, false // rank 0 reports for the job
	}
	sigLog := stderr
	if comm.Rank() != 0 {
		sigLog = io.Discard
	}
	stop, release := stopOnSignal(sigLog)
	defer release()
	opt.Stop = stop
	s, err := train.Run(cfg, opt)
	if err != nil {
		return rankFailed(comm, interrupted(err))
	}
	if comm.Rank() == 0 {
		printSummary(stdout, s)
	}
	return nil
}

// rankFailed ends a data-parallel job whose rank failed: an error that
// every rank reached together (train.Run's collective checks, an
// interruption) returns normally; any other one (a rank's own failure
// mid-step, with the others waiting in an all-reduce) is printed and
// aborts every rank, so that the job ends instead of hanging.
func rankFailed(comm dist.Comm, err error) error {
	if comm.Size() == 1 || errors.Is(err, train.ErrCollective) {
		return err
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	fmt.Fprintf(os.Stderr, "dptrain train: rank %d of %d: %v\ndptrain train: aborting the job\n", comm.Rank(), comm.Size(), err)
	comm.Abort(1)
	return err
}

func printSummary(w io.Writer, s *train.Summary) {
	fmt.Fprintf(w, "\n%s: %d steps in %.0f s\n", s.Config.Model, s.Steps, s.WallSeconds)
	if s.Eval != nil {
		fmt.Fprintf(w, "test accuracy: %.2f%% (top-5 %.2f%%) on %d examples\n", 100*s.TestAccuracy, 100*s.TestTop5, s.TestExamples)
	}
	if s.Private {
		fmt.Fprintf(w, "privacy spent: ε = %.4g at δ = %g (%s accountant; RDP gives ε = %.4g), σ = %.4g, q = %.4g, %d steps",
			s.Epsilon, s.Delta, s.Accountant, s.EpsilonRDP, s.NoiseMultiplier, s.SamplingRate, s.Steps)
		if s.LostSteps > 0 {
			fmt.Fprintf(w, " (+%d lost to interruptions, counted)", s.LostSteps)
		}
		fmt.Fprintln(w)
		if s.Guarantee != nil {
			for _, c := range s.Guarantee.Conditions {
				fmt.Fprintf(w, "  holds only if: %s\n", c)
			}
		}
	} else {
		fmt.Fprintln(w, "not private: no differential-privacy guarantee")
	}
	fmt.Fprintf(w, "results in %s (summary.json, metrics.jsonl, report.md, plots, checkpoints/)\n", s.Out)
}
