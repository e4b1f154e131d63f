package data

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encodeCIFAR writes labels and CHW pixels as CIFAR binary records; for the
// two-label CIFAR-100 format the coarse label is fine/5.
func encodeCIFAR(labels []int, pix []uint8, f CIFARFormat) []byte {
	var b bytes.Buffer
	for i, l := range labels {
		if f.LabelBytes == 2 {
			b.WriteByte(byte(l / 5))
		}
		b.WriteByte(byte(l))
		b.Write(pix[i*cifarPixels : (i+1)*cifarPixels])
	}
	return b.Bytes()
}

func randomCIFAR(n, classes int, seed uint64) ([]int, []uint8) {
	r := rand.New(rand.NewPCG(seed, 1))
	labels := make([]int, n)
	pix := make([]uint8, n*cifarPixels)
	for i := range labels {
		labels[i] = r.IntN(classes)
	}
	for i := range pix {
		pix[i] = uint8(r.Uint32())
	}
	return labels, pix
}

func checkSame(t *testing.T, ds Dataset, labels []int, pix []uint8) {
	t.Helper()
	if ds.Len() != len(labels) {
		t.Fatalf("len %d, want %d", ds.Len(), len(labels))
	}
	c, h, w := ds.Shape()
	n := c * h * w
	img := make([]uint8, n)
	for i := range labels {
		if err := ds.Image(i, img); err != nil {
			t.Fatal(err)
		}
		if ds.Label(i) != labels[i] || !bytes.Equal(img, pix[i*n:(i+1)*n]) {
			t.Fatalf("example %d differs (label %d want %d)", i, ds.Label(i), labels[i])
		}
	}
}

func TestCIFAR10Binary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cifar-10-batches-bin")
	var allL []int
	var allP []uint8
	for b := 1; b <= 5; b++ {
		l, p := randomCIFAR(7, 10, uint64(b))
		allL, allP = append(allL, l...), append(allP, p...)
		writeFile(t, filepath.Join(dir, "data_batch_"+string(rune('0'+b))+".bin"), encodeCIFAR(l, p, CIFAR10Format))
	}
	tl, tp := randomCIFAR(5, 10, 9)
	writeFile(t, filepath.Join(dir, "test_batch.bin"), encodeCIFAR(tl, tp, CIFAR10Format))
	root := filepath.Dir(dir) // the release's own folder is found inside
	ds, err := Open("cifar10:"+root, "train", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, ds, allL, allP)
	if c, h, w := ds.Shape(); c != 3 || h != 32 || w != 32 || ds.Classes()[9] != "truck" {
		t.Fatalf("shape %d %d %d classes %v", c, h, w, ds.Classes())
	}
	ds, err = Open("cifar10:"+dir, "test", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, ds, tl, tp)
	if _, err := Open("cifar10:"+dir, "valid", OpenOptions{}); err == nil {
		t.Fatal("unknown split accepted")
	}
}

func TestCIFAR100Binary(t *testing.T) {
	if len(CIFAR100Classes) != 100 {
		t.Fatalf("%d CIFAR-100 class names", len(CIFAR100Classes))
	}
	dir := t.TempDir()
	l, p := randomCIFAR(20, 100, 3)
	writeFile(t, filepath.Join(dir, "train.bin"), encodeCIFAR(l, p, CIFAR100Format))
	ds, err := Open("cifar100:"+dir, "train", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, ds, l, p)
	if ds.NumClasses() != 100 || ds.Classes()[99] != "worm" {
		t.Fatalf("classes %d", ds.NumClasses())
	}
}

func TestCIFARErrors(t *testing.T) {
	l, p := randomCIFAR(3, 10, 1)
	good := encodeCIFAR(l, p, CIFAR10Format)
	bad := append([]byte(nil), good...)
	bad[2*3073] = 10 // label of record 2
	tests := []struct {
		name string
		in   []byte
		f    CIFARFormat
		want string
	}{
		{"truncated", good[:len(good)-5], CIFAR10Format, "x.bin: offset 6146: truncated CIFAR record: 3068 of 3073 bytes"},
		{"label", bad, CIFAR10Format, "x.bin: offset 6146: label 10 of record 2 out of range: expected [0,10)"},
		{"coarse", append([]byte{20, 0}, make([]byte, 3072)...), CIFAR100Format, "offset 0: label 20 of record 0 out of range: expected [0,20)"},
		{"fine", append([]byte{0, 100}, make([]byte, 3072)...), CIFAR100Format, "offset 1: label 100 of record 0 out of range: expected [0,100)"},
	}
	for _, tt := range tests {
		_, _, err := ParseCIFAR(bytes.NewReader(tt.in), "x.bin", tt.f, nil, nil)
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestCIFARRoundTripRealJPEG writes the decoded pixels of the real CIFAR-10
// JPEG test set in the binary format and reads them back.
func TestCIFARRoundTripRealJPEG(t *testing.T) {
	src, err := OpenImageFolder(cifarTar(t, "test"), OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := src.(*memDataset)
	labels := make([]int, m.Len())
	for i := range labels {
		labels[i] = m.Label(i)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "test_batch.bin"), encodeCIFAR(labels, m.pix, CIFAR10Format))
	ds, err := OpenCIFAR10(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, ds, labels, m.pix)
	for i, c := range src.Classes() {
		if ds.Classes()[i] != c {
			t.Fatalf("class %d: folder %q, binary %q", i, c, ds.Classes()[i])
		}
	}
}

// FuzzParseCIFAR fuzzes the parser with 12-byte "images" (the Go fuzzer
// stalls on 3 KB inputs); record size is a parameter of the same code.
func FuzzParseCIFAR(f *testing.F) {
	small10, small100 := CIFAR10Format, CIFAR100Format
	small10.Pixels, small100.Pixels = 12, 12
	f.Add(append([]byte{3}, make([]byte, 12)...), false)
	f.Add(append([]byte{19, 99}, make([]byte, 24)...), true)
	f.Add([]byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, b []byte, hundred bool) {
		fm := small10
		if hundred {
			fm = small100
		}
		labels, pix, err := ParseCIFAR(bytes.NewReader(b), "fuzz", fm, nil, nil)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		if len(b) != len(labels)*fm.RecordSize() || len(pix) != len(labels)*fm.Pixels {
			t.Fatalf("%d bytes gave %d records", len(b), len(labels))
		}
		for _, l := range labels {
			if l < 0 || int(l) >= fm.NumClasses {
				t.Fatalf("label %d", l)
			}
		}
	})
}

// TestCIFARTarCounts checks the shared CIFAR-10 tars' class counts from tar
// headers alone (cheap: runs in CI in short mode).
func TestCIFARTarCounts(t *testing.T) {
	for _, tt := range []struct {
		split string
		per   int
	}{{"train", 5000}, {"test", 1000}} {
		s, err := scanFolder(cifarTar(t, tt.split), OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(s.classes, " ") != strings.Join(CIFAR10Classes, " ") {
			t.Fatalf("%s classes %v", tt.split, s.classes)
		}
		counts := make([]int, len(s.classes))
		for _, it := range s.items {
			counts[it.class]++
		}
		for c, n := range counts {
			if n != tt.per {
				t.Errorf("%s: class %s has %d images, want %d", tt.split, s.classes[c], n, tt.per)
			}
		}
	}
}

// TestCIFARJPEGDecode decodes the CIFAR-10 test tar (and, without -short,
// the 50,000-image train tar) and checks counts, shape and the CIFAR10Mean
// and CIFAR10Std constants (JPEG re-encoding moves them slightly).
func TestCIFARJPEGDecode(t *testing.T) {
	splits := []string{"test"}
	if !testing.Short() {
		splits = append(splits, "train")
	}
	for _, split := range splits {
		ds, err := Open("imagefolder:"+cifarJPEGDir, split, OpenOptions{})
		if err != nil {
			if os.Getenv("CI") != "true" && errors.Is(err, os.ErrNotExist) {
				t.Skip(err)
			}
			t.Fatal(err)
		}
		per := map[string]int{"train": 5000, "test": 1000}[split]
		for c, n := range ClassCounts(ds) {
			if n != per {
				t.Errorf("%s: class %d has %d", split, c, n)
			}
		}
		if c, h, w := ds.Shape(); c != 3 || h != 32 || w != 32 || ds.Len() != 10*per {
			t.Fatalf("%s: %d×%d×%d, %d images", split, c, h, w, ds.Len())
		}
		pix := ds.(*memDataset).pix
		hw := 32 * 32
		for ch := range 3 {
			var s, ss float64
			for i := range ds.Len() {
				for _, v := range pix[(i*3+ch)*hw : (i*3+ch+1)*hw] {
					x := float64(v) / 255
					s += x
					ss += x * x
				}
			}
			n := float64(ds.Len() * hw)
			mean := s / n
			std := sqrtF(ss/n - mean*mean)
			if d := mean - float64(CIFAR10Mean[ch]); d > 0.01 || d < -0.01 {
				t.Errorf("%s channel %d mean %.4f vs CIFAR10Mean %.4f", split, ch, mean, CIFAR10Mean[ch])
			}
			if d := std - float64(CIFAR10Std[ch]); d > 0.01 || d < -0.01 {
				t.Errorf("%s channel %d std %.4f vs CIFAR10Std %.4f", split, ch, std, CIFAR10Std[ch])
			}
			t.Logf("%s channel %d: mean %.4f std %.4f", split, ch, mean, std)
		}
	}
}
