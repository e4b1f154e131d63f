package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"dptrain/train"
)

func init() {
	register("eval", "evaluate a checkpoint: --checkpoint DIR --data SPEC [--json]", runEval)
}

func runEval(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ckpt := fs.String("checkpoint", "", "checkpoint folder (ckpt-…), or a run's --out folder (its newest checkpoint)")
	spec := fs.String("data", "", "data spec to evaluate on, e.g. mnist:DIR, imagefolder:test.tar, prepared:DIR")
	split := fs.String("split", "test", "split for specs that have one")
	asJSON := fs.Bool("json", false, "print one JSON object")
	noEMA := fs.Bool("no-ema", false, "evaluate the raw weights even when the checkpoint has an EMA")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags are --name=value)", fs.Arg(0))
	}
	if *ckpt == "" || *spec == "" {
		return errors.New("--checkpoint and --data are required")
	}
	res, err := train.EvalCheckpoint(train.EvalOptions{Checkpoint: *ckpt, Data: *spec, Split: *split, RawWeights: *noEMA})
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	fmt.Fprintf(stdout, "checkpoint %s (step %d, %s weights)\n", res.Checkpoint, res.Step, res.Weights)
	fmt.Fprintf(stdout, "%s: %d examples, top-1 %.2f%%, top-5 %.2f%%, loss %.4f\n", *spec, res.Examples, 100*res.Top1, 100*res.Top5, res.Loss)
	for i, a := range res.PerClass {
		name := fmt.Sprint(i)
		if i < len(res.Classes) {
			name = res.Classes[i]
		}
		fmt.Fprintf(stdout, "  %-16s %6.2f%%  (%d)\n", name, 100*a, res.PerClassCount[i])
	}
	return nil
}
