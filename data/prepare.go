package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// PrepareOptions configure Prepare.
type PrepareOptions struct {
	// Src is an ImageFolder directory or tar archive, or a dataset spec
	// ("cifar10:DIR", see Open) read with Split.
	Src   string
	Split string
	// Out is the output folder (created if missing; must not already hold a
	// prepared dataset).
	Out string
	// ImageSize > 0 resizes every image to ImageSize×ImageSize by Resize;
	// 0 keeps the source size (all images must then share it).
	ImageSize     int
	Resize        ResizeMode
	SkipBadImages bool
	Workers       int // decoding goroutines (default GOMAXPROCS)
	// ShardBytes bounds the size of one shard file (default 1 GiB).
	ShardBytes int64
	// Classes, if set, is the exact class list an ImageFolder must have.
	Classes []string
}

// PrepareReport says what Prepare wrote.
type PrepareReport struct {
	Manifest *Manifest
	Skipped  []BadImage
}

// Prepare decodes a dataset once, resizes it, and writes fixed-size records
// into shards with a manifest (see Manifest) for OpenPrepared. ImageFolder
// sources are streamed: memory stays bounded whatever their size.
func Prepare(opts PrepareOptions) (*PrepareReport, error) {
	_, statErr := os.Stat(opts.Out)
	rep, err := prepare(opts)
	if err != nil && errors.Is(statErr, os.ErrNotExist) && opts.Out != "" {
		// Prepare created the folder: leave nothing behind (os.Remove
		// removes only an empty folder, so nothing else is ever lost).
		os.Remove(opts.Out)
	}
	return rep, err
}

func prepare(opts PrepareOptions) (*PrepareReport, error) {
	if opts.Src == "" || opts.Out == "" {
		return nil, errors.New("prepare: source and output folder are required")
	}
	if opts.ImageSize < 0 || opts.ImageSize > MaxImageSize {
		return nil, fmt.Errorf("prepare: image size %d: expected 0 (keep the source size) to %d", opts.ImageSize, MaxImageSize)
	}
	if _, err := os.Stat(filepath.Join(opts.Out, manifestName)); err == nil {
		return nil, fmt.Errorf("prepare: %s already holds a prepared dataset (%s): remove it or choose another output folder", opts.Out, manifestName)
	}
	oo := OpenOptions{ImageSize: opts.ImageSize, Resize: opts.Resize, SkipBadImages: opts.SkipBadImages,
		Classes: opts.Classes, Workers: opts.Workers}
	shardBytes := opts.ShardBytes
	if shardBytes <= 0 {
		shardBytes = 1 << 30
	}
	m := &Manifest{Format: preparedFormat, Version: preparedVersion, Layout: recordLayout, Source: opts.Src, Shards: []Shard{}}
	setShape := func(c, h, w int) {
		m.Channels, m.Height, m.Width = c, h, w
		m.RecordSize = labelBytes + c*h*w
		m.RecordsPerShard = int(max(shardBytes/int64(m.RecordSize), 1))
	}
	rep := &PrepareReport{Manifest: m}
	if scheme, _, ok := strings.Cut(opts.Src, ":"); ok && slices.Contains(Schemes, scheme) {
		ds, err := Open(opts.Src, opts.Split, oo)
		if err != nil {
			return nil, err
		}
		defer ds.Close()
		if err := os.MkdirAll(opts.Out, 0o755); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		if err := prepareDataset(ds, opts, m, setShape); err != nil {
			return nil, err
		}
		return rep, nil
	}
	s, err := scanFolder(opts.Src, oo)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	m.Classes = s.classes
	m.Resize = opts.Resize.String()
	rep.Skipped = append(rep.Skipped, s.skipped...)
	var w *shardWriter
	counts := make([]int, len(s.classes))
	var first string
	sink := func(i int, pix []uint8, h, wd int) error {
		if w == nil {
			setShape(3, h, wd)
			first = s.items[i].name
			w = newShardWriter(opts.Out, m)
		}
		if h != m.Height || wd != m.Width {
			return s.badErr(s.items[i].name, fmt.Errorf("image is %d×%d: expected %d×%d like %s (set an image size to resize)", h, wd, m.Height, m.Width, first))
		}
		counts[s.items[i].class]++
		return w.write(int(s.items[i].class), pix)
	}
	err = decodeFolder(s, oo.workers(), opts.ImageSize, opts.Resize, opts.SkipBadImages, sink,
		func(b BadImage) { rep.Skipped = append(rep.Skipped, b) })
	if err == nil && w == nil {
		err = &FormatError{File: opts.Src, Offset: -1, Msg: "no readable images"}
	}
	if err == nil {
		for c, k := range counts {
			if k == 0 {
				err = &FormatError{File: opts.Src, Member: s.classes[c], Offset: -1, Msg: "no readable images in class folder (all skipped)"}
				break
			}
		}
	}
	m.Skipped = len(rep.Skipped)
	if err == nil {
		err = w.finish()
	}
	if err != nil {
		if w != nil {
			w.abort()
		}
		return nil, err
	}
	return rep, nil
}

func prepareDataset(ds Dataset, opts PrepareOptions, m *Manifest, setShape func(c, h, w int)) error {
	c, h, wd := ds.Shape()
	size := opts.ImageSize
	if size == 0 {
		setShape(c, h, wd)
	} else {
		setShape(c, size, size)
		m.Resize = opts.Resize.String()
	}
	m.Classes = ds.Classes()
	w := newShardWriter(opts.Out, m)
	src := make([]uint8, c*h*wd)
	dst := make([]uint8, m.RecordSize-labelBytes)
	var rs resampler
	for i := range ds.Len() {
		if err := ds.Image(i, src); err != nil {
			w.abort()
			return err
		}
		out := src
		if size > 0 {
			rs.resizeSquare(src, c, h, wd, opts.Resize, size, dst)
			out = dst
		}
		if err := w.write(ds.Label(i), out); err != nil {
			w.abort()
			return err
		}
	}
	if err := w.finish(); err != nil {
		w.abort()
		return err
	}
	return nil
}
