package data

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	ImageSize int
	Resize    ResizeMode
	// ShortSide > 0 (instead of ImageSize) keeps each image's aspect ratio
	// and scales its shorter side to ShortSide (the longer side is capped
	// at MaxAspect times that, centre-cropped), in the variable-size layout
	// (Manifest.ShortSide): random-resized crops then see the whole image
	// at training time, as ImageNet pipelines crop from the full photo.
	// ImageFolder sources only.
	ShortSide     int
	SkipBadImages bool
	Workers       int // decoding goroutines (default GOMAXPROCS)
	// ShardBytes bounds the size of one shard file (default 1 GiB).
	ShardBytes int64
	// Classes, if set, is the exact class list an ImageFolder must have.
	Classes []string
	// Progress, if set, is called after each source image (written or
	// skipped), from one goroutine.
	Progress func(PrepareProgress)
}

// MaxAspect bounds the longer side of an image prepared with ShortSide:
// at most MaxAspect × ShortSide (a panorama is centre-cropped to it).
const MaxAspect = 3

// PrepareProgress is how far a Prepare is.
type PrepareProgress struct {
	Done    int // source images handled, including those of earlier attempts
	Total   int // source images in all
	Skipped int // skipped so far (bad images, with SkipBadImages)
	Resumed int // images handled by earlier, interrupted attempts
}

// PrepareReport says what Prepare wrote.
type PrepareReport struct {
	Manifest *Manifest
	Skipped  []BadImage
	// Resumed is the number of source images an earlier, interrupted
	// Prepare had already written (0: a fresh start).
	Resumed int
}

// Prepare decodes a dataset once, resizes it, and writes records into
// shards with a manifest (see Manifest) for OpenPrepared. Sources are
// streamed: memory stays bounded whatever their size.
//
// Prepare resumes: a Prepare interrupted at any moment (SIGKILL, power
// loss) leaves its completed shards and a journal in Out, and the same
// call picks up after the last completed shard. A Prepare that fails with
// an error keeps what it completed in the same way (the error says so),
// or, when nothing was completed, removes the folder if it created it.
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

// prepareSource is what prepare reads: a scanned ImageFolder or an opened
// dataset spec.
type prepareSource struct {
	n        int
	channels int
	classes  []string
	// listing writes what identifies the source as a whole (the
	// fingerprint): the classes, and for a spec its content digest.
	listing func(w io.Writer) error
	// item writes what identifies item i (nil for a spec): what the
	// journal's prefix digest covers for the items already prepared.
	item func(i int, w io.Writer)
	// run delivers items start… in order: sink for each image (decoded
	// and resized), skipped for each bad one.
	run     func(start int, sink func(i, label int, pix []uint8, h, w int) error, skipped func(i int, b BadImage)) error
	folder  *folderSource // nil for a spec
	scanned []BadImage    // found while scanning
	close   func()
}

func prepare(opts PrepareOptions) (*PrepareReport, error) {
	if opts.Src == "" || opts.Out == "" {
		return nil, errors.New("prepare: source and output folder are required")
	}
	if opts.ImageSize < 0 || opts.ImageSize > MaxImageSize {
		return nil, fmt.Errorf("prepare: image size %d: expected 0 (keep the source size) to %d", opts.ImageSize, MaxImageSize)
	}
	if opts.ShortSide < 0 || opts.ShortSide > MaxImageSize {
		return nil, fmt.Errorf("prepare: short side %d: expected 1 to %d (or 0 for a square image size)", opts.ShortSide, MaxImageSize)
	}
	if opts.ShortSide > 0 && opts.ImageSize > 0 {
		return nil, errors.New("prepare: image size and short side both set: expected one (a square size, or the shorter side with the aspect ratio kept)")
	}
	if err := checkNotPrepared(opts.Out); err != nil {
		return nil, err
	}
	if opts.ShardBytes <= 0 {
		opts.ShardBytes = 1 << 30
	}
	src, err := openPrepareSource(opts)
	if err != nil {
		return nil, err
	}
	defer src.close()
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	unlock, err := lockPrepare(opts.Out)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := checkNotPrepared(opts.Out); err != nil {
		// Finished by another prepare while this one scanned.
		return nil, err
	}
	fp, err := fingerprint(opts, src.listing)
	if err != nil {
		return nil, err
	}
	j, err := loadJournal(opts.Out, fp)
	if err != nil {
		return nil, err
	}
	// The prefix digest: the identity of the items handled so far, saved
	// with each journal; a resume checks it over the items it would skip.
	prefix := sha256.New()
	addItem := func(i int) {
		if src.item != nil {
			src.item(i, prefix)
		}
	}
	rep := &PrepareReport{}
	if j != nil {
		for i := range min(j.NextItem, src.n) {
			addItem(i)
		}
		if j.NextItem > src.n || hex.EncodeToString(prefix.Sum(nil)) != j.Prefix {
			return nil, &FormatError{File: filepath.Join(opts.Out, journalName), Offset: -1, Msg: fmt.Sprintf(
				"files among the %d images an interrupted prepare already wrote changed since (names, sizes, modification times or tar offsets): restore them, or remove the folder to start over", j.NextItem)}
		}
	}
	if j == nil {
		if shards, _ := filepath.Glob(filepath.Join(opts.Out, "shard-*.bin")); len(shards) > 0 {
			// Every prepare writes its journal before its first shard:
			// shards without one are not a prepare's to remove.
			return nil, fmt.Errorf("prepare: %s holds shard files (%s) but no prepare journal or manifest: choose another output folder, or remove them", opts.Out, filepath.Base(shards[0]))
		}
		j = &prepareJournal{Fingerprint: fp, ClassCounts: make([]int, len(src.classes)),
			Manifest: &Manifest{Format: preparedFormat, Version: preparedVersion, Layout: recordLayout, Source: opts.Src, Shards: []Shard{}}}
		m := j.Manifest
		m.Classes = src.classes
		if opts.ImageSize > 0 {
			m.Resize = opts.Resize.String()
		}
		if opts.ShortSide > 0 {
			m.Version, m.Layout, m.ShortSide = variableVersion, variableLayout, opts.ShortSide
			m.Channels, m.Height, m.Width = 3, opts.ShortSide, opts.ShortSide
			m.Resize = "shorter-side"
		}
	} else {
		rep.Resumed = j.NextItem
		rep.Skipped = j.skippedBefore(j.NextItem)
		if !opts.SkipBadImages && len(rep.Skipped) > 0 {
			return nil, fmt.Errorf("prepare: the interrupted prepare in %s skipped %d bad images (--skip-bad-images): resume with it set, or remove the folder to start over", opts.Out, len(rep.Skipped))
		}
		if len(j.ClassCounts) != len(src.classes) {
			return nil, &FormatError{File: filepath.Join(opts.Out, journalName), Offset: -1, Msg: "inconsistent resume journal: remove the folder to start over"}
		}
	}
	m := j.Manifest
	rep.Manifest = m
	j.prefix = func() string { return hex.EncodeToString(prefix.Sum(nil)) }
	if rep.Resumed == 0 {
		// The journal before any shard (see above).
		if err := j.save(opts.Out, m); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	removeTemporaries(opts.Out, len(m.Shards))
	shardBytes := opts.ShardBytes
	setShape := func(c, h, w int) {
		m.Channels, m.Height, m.Width = c, h, w
		m.RecordSize = labelBytes + c*h*w
		m.RecordsPerShard = int(max(shardBytes/int64(m.RecordSize), 1))
	}
	var w *shardWriter
	if m.variable() || m.RecordSize > 0 {
		w = newShardWriter(opts.Out, m, j, shardBytes)
	}
	first := ""
	if m.Count > 0 {
		first = "the images already prepared"
	}
	counts := j.ClassCounts
	done := j.NextItem
	progress := func() {
		done++
		if opts.Progress != nil {
			opts.Progress(PrepareProgress{Done: done, Total: src.n, Skipped: len(src.scanned) + len(rep.Skipped), Resumed: rep.Resumed})
		}
	}
	sink := func(i, label int, pix []uint8, h, wd int) error {
		addItem(i)
		if w == nil {
			setShape(src.channels, h, wd)
			if src.folder != nil {
				first = src.folder.items[i].name
			}
			w = newShardWriter(opts.Out, m, j, shardBytes)
		}
		if !m.variable() && (h != m.Height || wd != m.Width) {
			err := fmt.Errorf("image is %d×%d: expected %d×%d like %s (set an image size to resize)", h, wd, m.Height, m.Width, first)
			if src.folder != nil {
				return src.folder.badErr(src.folder.items[i].name, err)
			}
			return err
		}
		counts[label]++
		if err := w.write(i, label, pix, h, wd); err != nil {
			return err
		}
		progress()
		return nil
	}
	skipped := func(i int, b BadImage) {
		addItem(i)
		j.skip(i, b)
		rep.Skipped = append(rep.Skipped, b)
		progress()
	}
	err = src.run(j.NextItem, sink, skipped)
	if err == nil && w == nil {
		err = &FormatError{File: opts.Src, Offset: -1, Msg: "no readable images"}
	}
	if err == nil && src.folder != nil {
		for c, k := range counts {
			if k == 0 {
				err = &FormatError{File: opts.Src, Member: src.classes[c], Offset: -1, Msg: "no readable images in class folder (all skipped)"}
				break
			}
		}
	}
	rep.Skipped = append(slices.Clip(src.scanned), rep.Skipped...)
	m.Skipped = len(rep.Skipped)
	if err == nil {
		err = w.finish(src.n)
	}
	if err == nil {
		os.Remove(filepath.Join(opts.Out, prepareLockName))
		return rep, nil
	}
	if err != nil {
		if w != nil {
			w.abortOpen()
		}
		kept := 0 // shards closed (and journaled), by this attempt or earlier ones
		for _, s := range m.Shards {
			if s.SHA256 != "" {
				kept++
			}
		}
		if kept == 0 {
			// Nothing completed: leave nothing (Prepare removes the folder
			// if it made it).
			os.Remove(filepath.Join(opts.Out, journalName))
			os.Remove(filepath.Join(opts.Out, prepareLockName))
			return nil, err
		}
		return nil, fmt.Errorf("%w (the %d shards completed are kept in %s: fix or replace that image in place, or add --skip-bad-images, and rerun the same command to resume after them)", err, kept, opts.Out)
	}
	return rep, nil
}

// checkNotPrepared refuses an output folder that already holds a prepared
// dataset, removing the stale journal a prepare killed between writing
// its manifest and removing the journal leaves beside it.
func checkNotPrepared(out string) error {
	if _, err := os.Stat(filepath.Join(out, manifestName)); err != nil {
		return nil
	}
	os.Remove(filepath.Join(out, journalName))
	return fmt.Errorf("prepare: %s already holds a prepared dataset (%s): remove it or choose another output folder", out, manifestName)
}

// openPrepareSource scans an ImageFolder or opens a dataset spec.
func openPrepareSource(opts PrepareOptions) (*prepareSource, error) {
	oo := OpenOptions{SkipBadImages: opts.SkipBadImages, Classes: opts.Classes, Workers: opts.Workers}
	if scheme, _, ok := strings.Cut(opts.Src, ":"); ok && slices.Contains(Schemes, scheme) {
		if opts.ShortSide > 0 {
			return nil, fmt.Errorf("prepare: a short side needs an ImageFolder source (%s holds images of one size: use an image size)", opts.Src)
		}
		ds, err := Open(opts.Src, opts.Split, oo)
		if err != nil {
			return nil, err
		}
		return specSource(ds, opts), nil
	}
	s, err := scanFolder(opts.Src, oo)
	if err != nil {
		return nil, err
	}
	return &prepareSource{
		n: len(s.items), channels: 3, classes: s.classes, folder: s, scanned: s.skipped, close: func() {},
		listing: func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "classes %q\n", s.classes)
			return err
		},
		item: func(i int, w io.Writer) {
			// A file rewritten since changes its size or time; a tar
			// rewritten, its members' offsets.
			it := s.items[i]
			fmt.Fprintf(w, "%d %q %d %d %d\n", it.class, it.name, it.size, it.mtime, it.off)
		},
		run: func(start int, sink func(i, label int, pix []uint8, h, w int) error, skipped func(int, BadImage)) error {
			sub := *s
			sub.items = s.items[start:]
			return decodeFolder(&sub, oo.workers(), folderResize{size: opts.ImageSize, mode: opts.Resize, short: opts.ShortSide}, opts.SkipBadImages,
				func(i int, pix []uint8, h, w int) error { return sink(start+i, int(sub.items[i].class), pix, h, w) },
				func(i int, b BadImage) { skipped(start+i, b) })
		},
	}, nil
}

// specSource reads an opened dataset (resized to the image size if set).
func specSource(ds Dataset, opts PrepareOptions) *prepareSource {
	c, h, wd := ds.Shape()
	return &prepareSource{
		n: ds.Len(), channels: c, classes: ds.Classes(), close: func() { ds.Close() },
		listing: func(w io.Writer) error {
			d, err := Digest(ds) // the pixels and labels (small sets: CIFAR, MNIST)
			fmt.Fprintf(w, "%d images %d×%d×%d classes %q %s\n", ds.Len(), c, h, wd, ds.Classes(), d)
			return err
		},
		run: func(start int, sink func(i, label int, pix []uint8, h, w int) error, _ func(int, BadImage)) error {
			size := opts.ImageSize
			src := make([]uint8, c*h*wd)
			dst := make([]uint8, c*max(size, 1)*max(size, 1))
			var rs resampler
			for i := start; i < ds.Len(); i++ {
				if err := ds.Image(i, src); err != nil {
					return err
				}
				out, oh, ow := src, h, wd
				if size > 0 {
					rs.resizeSquare(src, c, h, wd, opts.Resize, size, dst)
					out, oh, ow = dst, size, size
				}
				if err := sink(i, ds.Label(i), out, oh, ow); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
