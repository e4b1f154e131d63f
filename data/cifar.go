package data

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// CIFAR10Classes are the CIFAR-10 class names in label order.
var CIFAR10Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// CIFAR100Classes are the CIFAR-100 fine class names in label order.
var CIFAR100Classes = strings.Fields(`apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy
bridge bus butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab
crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp
lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange
orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road
rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower
sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale
willow_tree wolf woman worm`)

const cifarPixels = 3 * 32 * 32

// CIFARFormat describes one CIFAR binary record layout.
type CIFARFormat struct {
	LabelBytes int // 1 for CIFAR-10, 2 for CIFAR-100 (coarse, fine)
	LabelIndex int // which label byte is the label (CIFAR-100: 1 = fine)
	NumClasses int
	Pixels     int // bytes of pixels per record: 3·32·32 for both releases
}

var (
	CIFAR10Format  = CIFARFormat{LabelBytes: 1, LabelIndex: 0, NumClasses: 10, Pixels: cifarPixels}
	CIFAR100Format = CIFARFormat{LabelBytes: 2, LabelIndex: 1, NumClasses: 100, Pixels: cifarPixels}
)

// RecordSize is the size of one record in bytes.
func (f CIFARFormat) RecordSize() int { return f.LabelBytes + f.Pixels }

// ParseCIFAR reads all records of one CIFAR binary file, appending labels
// and CHW pixels to the given slices. name is used in errors.
func ParseCIFAR(r io.Reader, name string, f CIFARFormat, labels []int32, pix []uint8) ([]int32, []uint8, error) {
	rec := make([]byte, f.RecordSize())
	br := bufio.NewReaderSize(r, 1<<16)
	for off := int64(0); ; off += int64(len(rec)) {
		n, err := io.ReadFull(br, rec)
		if err == io.EOF {
			return labels, pix, nil
		}
		if err == io.ErrUnexpectedEOF {
			return labels, pix, formatErr(name, off, "truncated CIFAR record: %d of %d bytes (file size must be a multiple of %d)", n, len(rec), len(rec))
		}
		if err != nil {
			return labels, pix, &FormatError{File: name, Offset: off, Msg: "reading CIFAR record", Err: err}
		}
		for k := range f.LabelBytes {
			lim := f.NumClasses
			if f.LabelBytes == 2 && k == 0 {
				lim = 20 // CIFAR-100 coarse labels
			}
			if int(rec[k]) >= lim {
				return labels, pix, formatErr(name, off+int64(k), "label %d of record %d out of range: expected [0,%d)", rec[k], off/int64(len(rec)), lim)
			}
		}
		labels = append(labels, int32(rec[f.LabelIndex]))
		pix = append(pix, rec[f.LabelBytes:]...)
	}
}

func openCIFAR(files []string, f CIFARFormat, classes []string) (*memDataset, error) {
	var labels []int32
	var pix []uint8
	for _, p := range files {
		fh, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		if st, err := fh.Stat(); err == nil && pix == nil {
			n := int(st.Size()) / f.RecordSize() * len(files)
			pix = make([]uint8, 0, n*f.Pixels)
			labels = make([]int32, 0, n)
		}
		labels, pix, err = ParseCIFAR(fh, p, f, labels, pix)
		fh.Close()
		if err != nil {
			return nil, err
		}
	}
	return &memDataset{classes: classes, c: 3, h: 32, w: 32, pix: pix, labels: labels}, nil
}

// cifarDir returns dir, or its sub-folder sub when the release was unpacked
// into dir with its own top-level folder.
func cifarDir(dir, sub, probe string) string {
	if _, err := os.Stat(filepath.Join(dir, probe)); err != nil {
		if _, err := os.Stat(filepath.Join(dir, sub, probe)); err == nil {
			return filepath.Join(dir, sub)
		}
	}
	return dir
}

// readClassNames reads one class name per non-empty line; nil if the file
// is missing.
func readClassNames(path string, want int) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil
	}
	names := strings.Fields(string(b))
	if len(names) != want {
		return nil, formatErr(path, -1, "%d class names: expected %d", len(names), want)
	}
	return names, nil
}

// OpenCIFAR10 opens the CIFAR-10 binary release in dir (or
// dir/cifar-10-batches-bin): split "train" reads data_batch_*.bin, "test"
// reads test_batch.bin. Class names come from batches.meta.txt if present.
func OpenCIFAR10(dir, split string) (Dataset, error) {
	dir = cifarDir(dir, "cifar-10-batches-bin", "test_batch.bin")
	var files []string
	switch split {
	case "train":
		files, _ = filepath.Glob(filepath.Join(dir, "data_batch_*.bin"))
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("cifar10 folder %s: no data_batch_*.bin files", dir)
		}
	case "test":
		files = []string{filepath.Join(dir, "test_batch.bin")}
	default:
		return nil, fmt.Errorf("cifar10 split %q: expected train or test", split)
	}
	classes, err := readClassNames(filepath.Join(dir, "batches.meta.txt"), 10)
	if err != nil {
		return nil, err
	}
	if classes == nil {
		classes = CIFAR10Classes
	}
	return openCIFAR(files, CIFAR10Format, classes)
}

// OpenCIFAR100 opens the CIFAR-100 binary release in dir (or
// dir/cifar-100-binary): split "train" reads train.bin, "test" test.bin.
// Labels are the 100 fine labels.
func OpenCIFAR100(dir, split string) (Dataset, error) {
	dir = cifarDir(dir, "cifar-100-binary", "test.bin")
	if split != "train" && split != "test" {
		return nil, fmt.Errorf("cifar100 split %q: expected train or test", split)
	}
	classes, err := readClassNames(filepath.Join(dir, "fine_label_names.txt"), 100)
	if err != nil {
		return nil, err
	}
	if classes == nil {
		classes = CIFAR100Classes
	}
	return openCIFAR([]string{filepath.Join(dir, split+".bin")}, CIFAR100Format, classes)
}
