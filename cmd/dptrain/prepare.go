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

const prepareUsage = `usage: dptrain prepare --src DIR|FILE.tar|SPEC --out DIR (--image-size H | --short-side S) [flags]

Decodes an ImageFolder (<src>/<class>/<image>.jpg|.png, a directory or a tar
archive) once, on all cores, and writes uint8 CHW images in shards with a
manifest (count, classes, size, SHA-256), for training with
data: prepared:DIR. --image-size H resizes every image to H×H;
--short-side S keeps the aspect ratio with the shorter side S (e.g. 256 for
a 224 recipe: random-resized crops then come from the whole image at
training time). --src may also be a dataset spec (cifar10:DIR, mnist:DIR,
…) read with --split.

An interrupted prepare (Ctrl-C, SIGKILL, a crash, a bad image) keeps the
shards it completed: run the same command again to resume.

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
	fs.IntVar(&opts.ShortSide, "short-side", 0, "instead of --image-size: scale the shorter side to `S`, keeping the aspect ratio (longer side capped at 3S)")
	fs.StringVar(&resize, "resize", "shorter-center", "resize `mode`: shorter-center (shorter side to H, centre crop) or fit (whole image to H×H)")
	fs.BoolVar(&opts.SkipBadImages, "skip-bad-images", false, "skip (and report) undecodable images and non-image files instead of failing")
	fs.IntVar(&opts.Workers, "workers", 0, "decoding goroutines (default: all CPUs)")
	fs.StringVar(&opts.Split, "split", "train", "split to read when --src is a dataset spec")
	fs.IntVar(&shardMiB, "shard-mib", 1024, "maximum shard file size in `MiB`")
	fs.IntVar(&maxReports, "max-reports", 20, "skipped images to list individually")
	progressFlag := fs.String("progress", "auto", "progress on stderr: `auto` (a bar on a terminal, a line every 30 s otherwise), bar, lines or none")
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
	case opts.ShortSide < 0:
		return fmt.Errorf("--short-side %d: expected a positive size", opts.ShortSide)
	case opts.ShortSide > 0 && opts.ImageSize > 0:
		return fmt.Errorf("--short-side %d and --image-size %d: expected one of them", opts.ShortSide, opts.ImageSize)
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
	bar, err := newProgressBar(*progressFlag, stderr)
	if err != nil {
		return err
	}
	opts.Progress = bar.update
	t0 := time.Now()
	rep, err := data.Prepare(opts)
	bar.finish()
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
	size := fmt.Sprintf("%d×%d×%d", m.Channels, m.Height, m.Width)
	if m.ShortSide > 0 {
		size = fmt.Sprintf("3 channels, shorter side %d, longer up to %d", m.ShortSide, m.MaxLongSide)
	}
	resumed := ""
	if rep.Resumed > 0 {
		resumed = fmt.Sprintf(" (resumed after %d images)", rep.Resumed)
	}
	fmt.Fprintf(stdout, "prepared %d images (%s, %d classes) into %d shards in %s%s; skipped %d; %.1fs (%.0f images/s)\n",
		m.Count, size, len(m.Classes), len(m.Shards), opts.Out, resumed, len(rep.Skipped), secs, float64(m.Count-rep.Resumed)/max(secs, 1e-9))
	return nil
}
