package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// Dataset is a fixed-size set of labelled images of one shape. Images are
// uint8 in CHW layout. Implementations are safe for concurrent Image and
// Label calls.
type Dataset interface {
	// Close releases what the dataset holds (a prepared set's memory
	// maps); the dataset must not be used afterwards. Closing twice is
	// allowed; for the in-memory datasets Close does nothing. Close must
	// not run concurrently with other calls.
	io.Closer
	Len() int
	NumClasses() int
	Classes() []string // class names, index = label; do not modify
	Shape() (c, h, w int)
	Label(i int) int
	// Image copies example i into dst[:c*h*w] (CHW). It panics with a
	// UsageError if i is out of range or dst is too short.
	Image(i int, dst []uint8) error
}

// ResizeMode says how an image of another size is brought to the target
// square size.
type ResizeMode int

const (
	// ResizeShorterCenter scales the shorter side to the target size and
	// crops the centre square (aspect ratio kept, borders lost).
	ResizeShorterCenter ResizeMode = iota
	// ResizeFit scales the whole image to the target square (nothing lost,
	// aspect ratio changed).
	ResizeFit
)

// ParseResizeMode parses "shorter-center" or "fit".
func ParseResizeMode(s string) (ResizeMode, error) {
	switch s {
	case "shorter-center", "shorter-centre", "":
		return ResizeShorterCenter, nil
	case "fit":
		return ResizeFit, nil
	}
	return 0, fmt.Errorf("resize mode %q: expected shorter-center or fit", s)
}

func (m ResizeMode) String() string {
	if m == ResizeFit {
		return "fit"
	}
	return "shorter-center"
}

// OpenOptions configure Open.
type OpenOptions struct {
	// ImageSize, if > 0, resizes ImageFolder images to ImageSize×ImageSize
	// on load (with Resize). If 0, all images must already share one size.
	ImageSize int
	Resize    ResizeMode
	// SkipBadImages skips (and counts, see Skipper) undecodable images and
	// non-image tar members instead of failing.
	SkipBadImages bool
	// Classes, if set, is the class list an ImageFolder must have exactly
	// (e.g. the training set's, when opening the test split): a missing or
	// extra class folder is an error.
	Classes []string
	// Workers decodes in parallel (default GOMAXPROCS).
	Workers int
	// NoVerify skips the SHA-256 check of prepared shards on open (sizes are
	// still checked).
	NoVerify bool
	// Part, if set, is given the number of examples and returns the range
	// [lo, hi) of them that will be read (one rank's block in data-parallel
	// training). A prepared set then verifies and reads only the shards
	// that hold examples of the range (the others are mapped, never
	// touched: memory per rank falls with the number of ranks), and Image
	// or Label of an example outside it panics with a UsageError. Other
	// formats ignore it (they load every example).
	Part func(n int) (lo, hi int)
	// MemoryBytes bounds the memory an ImageFolder may take decoded
	// (default DefaultFolderMemory; < 0: always stream): a larger one is
	// streamed from its files (see OpenImageFolder).
	MemoryBytes int64
}

func (o OpenOptions) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// Schemes lists the spec schemes Open accepts.
var Schemes = []string{"mnist", "idx", "cifar10", "cifar100", "imagefolder", "prepared"}

// Open opens the dataset named by spec ("scheme:path", see the package
// documentation) for split ("train" or "test"; ignored where a spec names
// the files directly).
func Open(spec, split string, opts OpenOptions) (Dataset, error) {
	scheme, path, ok := strings.Cut(spec, ":")
	if !ok || path == "" {
		return nil, fmt.Errorf("data spec %q: expected scheme:path with scheme one of %s", spec, strings.Join(Schemes, ", "))
	}
	if opts.ImageSize < 0 || opts.ImageSize > MaxImageSize {
		return nil, fmt.Errorf("image size %d: expected 0 (as stored) to %d", opts.ImageSize, MaxImageSize)
	}
	switch scheme {
	case "mnist":
		return OpenMNIST(path, split)
	case "idx":
		imgs, labels, ok := strings.Cut(path, ",")
		if !ok || imgs == "" || labels == "" {
			return nil, fmt.Errorf("data spec %q: expected idx:IMAGES,LABELS", spec)
		}
		return OpenIDX(imgs, labels)
	case "cifar10":
		return OpenCIFAR10(path, split)
	case "cifar100":
		return OpenCIFAR100(path, split)
	case "imagefolder":
		return OpenImageFolder(splitPath(path, split, ".tar"), opts)
	case "prepared":
		p := path
		if split != "" {
			if _, err := os.Stat(filepath.Join(path, split, manifestName)); err == nil {
				p = filepath.Join(path, split)
			}
		}
		return OpenPrepared(p, opts)
	}
	return nil, fmt.Errorf("data spec %q: unknown scheme %q: expected one of %s", spec, scheme, strings.Join(Schemes, ", "))
}

// splitPath returns path/split or path/split+ext if path is a directory that
// has one, else path.
func splitPath(path, split, ext string) string {
	if split == "" {
		return path
	}
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		return path
	}
	for _, p := range []string{filepath.Join(path, split), filepath.Join(path, split+ext)} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return path
}

// memDataset holds all images in memory, CHW, contiguous.
type memDataset struct {
	classes []string
	c, h, w int
	pix     []uint8 // Len × c·h·w
	labels  []int32
	skipped []BadImage
}

func (d *memDataset) Len() int             { return len(d.labels) }
func (d *memDataset) NumClasses() int      { return len(d.classes) }
func (d *memDataset) Classes() []string    { return d.classes }
func (d *memDataset) Shape() (c, h, w int) { return d.c, d.h, d.w }
func (d *memDataset) Label(i int) int      { return int(d.labels[i]) }
func (d *memDataset) Skipped() []BadImage  { return d.skipped }

// Close does nothing: the images are plain memory, left to the garbage
// collector.
func (d *memDataset) Close() error { return nil }

func (d *memDataset) Image(i int, dst []uint8) error {
	n := d.c * d.h * d.w
	checkImageArgs(i, len(d.labels), len(dst), n)
	copy(dst[:n], d.pix[i*n:(i+1)*n])
	return nil
}

func checkImageArgs(i, count, dstLen, size int) {
	if i < 0 || i >= count {
		panic(usagef("image index %d out of range [0,%d)", i, count))
	}
	if dstLen < size {
		panic(usagef("image dst has %d bytes, need %d", dstLen, size))
	}
}

// ClassCounts returns the number of examples of each class of ds.
func ClassCounts(ds Dataset) []int {
	counts := make([]int, ds.NumClasses())
	for i := range ds.Len() {
		counts[ds.Label(i)]++
	}
	return counts
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}
