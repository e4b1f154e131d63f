package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"dptrain/train"
)

func init() {
	register("predict", "classify images: --checkpoint DIR [--top 5] IMAGE…", runPredict)
}

func runPredict(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("predict", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ckpt := fs.String("checkpoint", "", "checkpoint folder, a run's --out folder, or an imported model's folder")
	top := fs.Int("top", 5, "classes to show per image")
	asJSON := fs.Bool("json", false, "print one JSON object")
	noEMA := fs.Bool("no-ema", false, "use the raw weights even when the checkpoint has an EMA")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return errUsage
	}
	if *ckpt == "" {
		return errors.New("--checkpoint is required")
	}
	if fs.NArg() == 0 {
		return errors.New("no images: give JPEG or PNG files after the flags")
	}
	if *top < 1 {
		return fmt.Errorf("--top %d, want ≥ 1", *top)
	}
	for _, a := range fs.Args() {
		if strings.HasPrefix(a, "-") {
			return fmt.Errorf("flag %s after the images: flags go first", a)
		}
	}
	res, err := train.Predict(train.PredictOptions{Checkpoint: *ckpt, Images: fs.Args(), TopK: *top, RawWeights: *noEMA})
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
	for _, p := range res.Predictions {
		fmt.Fprintf(stdout, "%s\n", p.Image)
		for i, c := range p.Top {
			fmt.Fprintf(stdout, "  %d. %-24s %6.2f%%  (class %d)\n", i+1, c.Name, 100*c.Prob, c.Class)
		}
	}
	return nil
}
