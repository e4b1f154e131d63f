package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"dptrain/data"
)

func init() {
	register("prepare", "decode and resize images once into memory-mapped shards", runPrepare)
}

const prepareUsage = `usage: dptrain prepare --src DIR|FILE.tar|SPEC --out DIR --image-size H [flags]

Decodes an ImageFolder (<src>/<class>/<image>.jpg|.png, a directory or a tar
archive) once, resizes every image to H×H, and writes fixed-size uint8
records (CHW) in shards with a manifest (count, classes, size, SHA-256), for
training with --data prepared:DIR. --src may also be a dataset spec
(cifar10:DIR, mnist:DIR, …) read with --split.

flags:
`

// runPrepare is the "prepare" command.
func runPrepare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dptrain prepare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), prepareUsage)
		fs.PrintDefaults()
	}
	var (
		opts       data.PrepareOptions
		resize     string
		shardMiB   int
		maxReports int
	)
	fs.StringVar(&opts.Src, "src", "", "ImageFolder `DIR` or FILE.tar, or a dataset spec such as cifar10:DIR (required)")
	fs.StringVar(&opts.Out, "out", "", "output `DIR` for the shards and manifest.json (required)")
	fs.IntVar(&opts.ImageSize, "image-size", 0, "resize every image to `H`×H (0: keep the source size, which must then be uniform)")
	fs.StringVar(&resize, "resize", "shorter-center", "resize `mode`: shorter-center (shorter side to H, centre crop) or fit (whole image to H×H)")
	fs.BoolVar(&opts.SkipBadImages, "skip-bad-images", false, "skip (and report) undecodable images and non-image files instead of failing")
	fs.IntVar(&opts.Workers, "workers", 0, "decoding goroutines (default: all CPUs)")
	fs.StringVar(&opts.Split, "split", "train", "split to read when --src is a dataset spec")
	fs.IntVar(&shardMiB, "shard-mib", 1024, "maximum shard file size in `MiB`")
	fs.IntVar(&maxReports, "max-reports", 20, "skipped images to list individually")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dptrain prepare: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	switch {
	case opts.Src == "":
		return errors.New("--src is required: an ImageFolder directory or .tar, or a dataset spec")
	case opts.Out == "":
		return errors.New("--out is required: the folder to write shards and manifest.json to")
	case opts.ImageSize < 0:
		return fmt.Errorf("--image-size %d: expected a positive size (or 0 to keep the source size)", opts.ImageSize)
	case opts.Workers < 0:
		return fmt.Errorf("--workers %d: expected >= 0", opts.Workers)
	case shardMiB <= 0:
		return fmt.Errorf("--shard-mib %d: expected > 0", shardMiB)
	}
	mode, err := data.ParseResizeMode(resize)
	if err != nil {
		return fmt.Errorf("--resize: %w", err)
	}
	opts.Resize = mode
	opts.ShardBytes = int64(shardMiB) << 20
	t0 := time.Now()
	rep, err := data.Prepare(opts)
	if err != nil {
		return err
	}
	m := rep.Manifest
	for i, s := range rep.Skipped {
		if i == maxReports {
			fmt.Fprintf(stderr, "skipped: … and %d more\n", len(rep.Skipped)-maxReports)
			break
		}
		fmt.Fprintf(stderr, "skipped: %s\n", s)
	}
	secs := time.Since(t0).Seconds()
	fmt.Fprintf(stdout, "prepared %d images (%d×%d×%d, %d classes) into %d shards in %s; skipped %d; %.1fs (%.0f images/s)\n",
		m.Count, m.Channels, m.Height, m.Width, len(m.Classes), len(m.Shards), opts.Out, len(rep.Skipped), secs, float64(m.Count)/max(secs, 1e-9))
	return nil
}
