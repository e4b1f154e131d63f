package main

import (
	_ "embed"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"dptrain/dist"
	"dptrain/internal/mnistdata"
	"dptrain/train"
)

//go:embed demo.yaml
var demoConfig []byte

func init() {
	register("demo", "DP training on real MNIST (ScatterNet-CNN, ε = 3) with the embedded defaults; prints accuracy and ε", runDemo)
}

func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "output folder (default: a new temporary folder)")
	mnist := fs.String("mnist", "", "folder with the MNIST idx files (default: the GoMNIST module's data/ folder, or $DPTRAIN_MNIST)")
	epochs := fs.Float64("epochs", 0, "override the number of epochs (σ is recalibrated for the same ε)")
	eps := fs.Float64("target-epsilon", 0, "override the privacy budget ε")
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
		case f.Name == "epochs" && !(*epochs > 0 && *epochs <= 1e6):
			bad = fmt.Errorf("--epochs %g: want a number > 0 (and at most 1e6)", *epochs)
		case f.Name == "target-epsilon" && !(*eps > 0 && !math.IsInf(*eps, 0)):
			bad = fmt.Errorf("--target-epsilon %g: want a finite ε > 0", *eps)
		}
	})
	if bad != nil {
		return bad
	}
	dir := *mnist
	if dir == "" {
		var err error
		if dir, err = mnistdata.Dir(); err != nil {
			return err
		}
	}
	var cfg train.Config
	if err := train.ParseConfig([]byte(strings.ReplaceAll(string(demoConfig), "MNIST_DIR", dir)), &cfg); err != nil {
		return fmt.Errorf("embedded demo config: %w", err)
	}
	if *epochs > 0 {
		cfg.Epochs = *epochs
	}
	if *eps > 0 {
		cfg.TargetEpsilon = *eps
	}
	if *out == "" {
		d, err := os.MkdirTemp("", "dptrain-demo-")
		if err != nil {
			return err
		}
		*out = d
	}
	comm, err := dist.FromEnvironment()
	if err != nil {
		return err
	}
	n := comm.Size()
	comm.Close()
	if n > 1 {
		return fmt.Errorf("demo runs in one process, not on the %d ranks of this launch: use `dptrain train --config … --out …` under mpirun (docs/scale-out.md)", n)
	}
	fmt.Fprintf(stderr, "dptrain demo: writing results to %s\n", *out)
	stop, release := stopOnSignal(stderr)
	defer release()
	s, err := train.Run(cfg, train.Options{Out: *out, Log: stderr, Terminal: isTerminal(stderr), Stop: stop})
	if err != nil {
		return interrupted(err)
	}
	printSummary(stdout, s)
	return nil
}
