package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"dptrain/dist"
	"dptrain/train"
)

func init() {
	register("audit", "train once with canaries and bound ε from below: --config run.yaml [--canaries M] [--kind white|black] [--fail-if-exceeded] --out DIR", runAudit)
}

func auditUsage(w io.Writer) {
	fmt.Fprintf(w, `usage: dptrain audit --config run.yaml [--canaries M] [--kind white|black] [--significance 0.05] [--fail-if-exceeded[=false]] [--key=value …] --out DIR

Runs the configured private training as a one-run privacy audit (Steinke,
Nasr & Jagielski 2023): M canaries (default 1000) are each made a training
example with probability ½ (counted in N, q and the ledger), the run trains
once, and each canary is scored on what the run released. DIR gets what
"dptrain train" writes, plus audit.json (the counts, ε_lower by the one-run
bound and by its f-DP refinement, the ε the ledger claims) and audit.png
(the scores of the canaries trained on and not). The audited model trained
on the canaries: it is not a production model.

--kind white (default): gradient canaries on coordinates of the weights,
  added to the clipped sum like examples' clipped gradients, scored by the
  released noisy sums.
--kind black: training images set aside with a wrong label each, the members
  trained on, scored by the final model's loss.
--fail-if-exceeded: exit non-zero when the one-run ε_lower exceeds the
  claimed ε (the mechanism that ran is not the one accounted).
Flags override the config's audit: block (kind, canaries, significance,
fail_if_exceeded).
`)
}

func runAudit(args []string, stdout, stderr io.Writer) error {
	a := train.AuditConfig{}
	var failSet bool // --fail-if-exceeded given (true or false)
	var rest []string
	for i := 0; i < len(args); i++ {
		k, v, hasV := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") {
			rest = append(rest, args[i])
			continue
		}
		next := func() (string, error) {
			if hasV {
				return v, nil
			}
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
				i++
				return args[i], nil
			}
			return "", fmt.Errorf("--%s: needs a value", k)
		}
		var err error
		switch k {
		case "canaries":
			var s string
			if s, err = next(); err == nil {
				if a.Canaries, err = strconv.Atoi(s); err != nil || a.Canaries < 2 {
					err = fmt.Errorf("--canaries %q: want a number of canaries, at least 2", s)
				}
			}
		case "kind":
			a.Kind, err = next()
		case "significance":
			var s string
			if s, err = next(); err == nil {
				if a.Significance, err = strconv.ParseFloat(s, 64); err != nil || !(a.Significance > 0 && a.Significance < 1) {
					err = fmt.Errorf("--significance %q: want a level in (0, 1)", s)
				}
			}
		case "fail-if-exceeded", "fail_if_exceeded":
			a.FailIfExceeded, failSet = true, true
			if hasV {
				if a.FailIfExceeded, err = strconv.ParseBool(v); err != nil {
					err = fmt.Errorf("--fail-if-exceeded=%q: want true or false", v)
				}
			}
		default:
			rest = append(rest, args[i])
		}
		if err != nil {
			auditUsage(stderr)
			return err
		}
	}
	cfgPath, out, overrides, err := splitTrainArgs(rest)
	if errors.Is(err, flag.ErrHelp) {
		auditUsage(stdout)
		return nil
	}
	if err != nil {
		auditUsage(stderr)
		return err
	}
	if cfgPath == "" {
		return errors.New("--config run.yaml is required (the private training to audit)")
	}
	cfg, err := train.LoadConfigFile(cfgPath)
	if err != nil {
		return err
	}
	for _, kv := range overrides {
		if err := cfg.ApplyOverride(kv[0], kv[1]); err != nil {
			return err
		}
	}
	if cfg.Audit != nil { // the config's audit: block, flags over it
		merged := *cfg.Audit
		if a.Kind != "" {
			merged.Kind = a.Kind
		}
		if a.Canaries != 0 {
			merged.Canaries = a.Canaries
		}
		if a.Significance != 0 {
			merged.Significance = a.Significance
		}
		if failSet {
			merged.FailIfExceeded = a.FailIfExceeded
		}
		a = merged
	}
	cfg.Audit = &a
	if out == "" {
		return errors.New("--out DIR is required (checkpoints, summary.json, report.md, audit.json go there)")
	}
	comm, err := dist.FromEnvironment()
	if err != nil {
		return err
	}
	defer comm.Close()
	stop, release := stopOnSignal(stderr)
	defer release()
	opt := train.Options{Out: out, Log: stderr, Terminal: isTerminal(stderr), Comm: comm, Stop: stop}
	s, err := train.Run(cfg, opt)
	if s != nil && s.Audit != nil {
		printAudit(stdout, s.Audit)
	}
	if err != nil {
		return interrupted(err)
	}
	printSummary(stdout, s)
	return nil
}

func printAudit(w io.Writer, a *train.AuditResult) {
	fmt.Fprintf(w, "audit: %d canaries (%d trained on): ε_lower = %.4g (one-run), %.4g (f-DP) at %.0f%% confidence; claimed ε = %.4g (δ = %.3g)",
		a.Canaries, a.InCanaries, a.EpsilonOneRun, a.EpsilonFDP, 100*a.Confidence, a.ClaimedEps, a.Delta)
	if a.Exceeded {
		fmt.Fprintf(w, ": EXCEEDED — the mechanism that ran is not the one accounted\n")
	} else {
		fmt.Fprintf(w, ": consistent with the claim\n")
	}
}
