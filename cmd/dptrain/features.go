package main

import (
	"errors"
	"flag"
	"io"

	"dptrain/train"
)

func init() {
	register("features", "compute a config's frozen-prefix feature caches ahead of training: --config run.yaml [--key=value …]", runFeatures)
}

func runFeatures(args []string, stdout, stderr io.Writer) error {
	cfgPath, out, overrides, err := splitTrainArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		trainUsage(stdout)
		return nil
	}
	if err != nil {
		return err
	}
	if out != "" {
		return errors.New("--out: features writes no run folder; the caches go to feature_cache")
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
	return train.PrepareFeatures(cfg, stderr)
}
