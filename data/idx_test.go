package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dptrain/internal/mnistdata"
)

func encodeIDX(t testing.TB, dims []int, data []uint8, gz bool) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := EncodeIDX(&b, dims, data); err != nil {
		t.Fatal(err)
	}
	if !gz {
		return b.Bytes()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b.Bytes())
	zw.Close()
	return z.Bytes()
}

func TestParseIDXRoundTrip(t *testing.T) {
	data := make([]uint8, 3*4*5)
	for i := range data {
		data[i] = uint8(i * 7)
	}
	for _, gz := range []bool{false, true} {
		got, err := ParseIDX(bytes.NewReader(encodeIDX(t, []int{3, 4, 5}, data, gz)), "x")
		if err != nil {
			t.Fatalf("gzip=%v: %v", gz, err)
		}
		if len(got.Dims) != 3 || got.Dims[0] != 3 || got.Dims[1] != 4 || got.Dims[2] != 5 || !bytes.Equal(got.Data, data) {
			t.Fatalf("gzip=%v: got dims %v data %v", gz, got.Dims, got.Data[:5])
		}
	}
}

func TestParseIDXErrors(t *testing.T) {
	good := encodeIDX(t, []int{2, 3, 3}, make([]uint8, 18), false)
	lying := append([]byte(nil), good...)
	lying[7] = 200 // first dimension 2 → 200: header claims far more data
	tests := []struct {
		name string
		in   []byte
		want string // substring of the error
	}{
		{"empty", nil, "truncated idx header"},
		{"bad magic", []byte{1, 2, 8, 1, 0, 0, 0, 0}, "bad idx magic"},
		{"bad type", []byte{0, 0, 0x0d, 1, 0, 0, 0, 0}, "expected 0x08"},
		{"rank 0", []byte{0, 0, 8, 0}, "rank 0"},
		{"short dims", []byte{0, 0, 8, 3, 0, 0}, "expected 3 dimensions"},
		{"truncated data", good[:len(good)-1], "says 18 data bytes, file has 17"},
		{"trailing data", append(append([]byte(nil), good...), 9), "file has more"},
		{"header lies", lying, "says 1800 data bytes, file has 18"},
		{"huge claim", []byte{0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "claim more than"},
		{"bad gzip", []byte{0x1f, 0x8b, 0, 0}, "bad gzip header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIDX(bytes.NewReader(tt.in), "images.idx")
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v: want *FormatError", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "images.idx") {
				t.Fatalf("err = %q: want it to name the file and contain %q", err, tt.want)
			}
		})
	}
	// Truncated inside gzip: the offset is into the uncompressed stream.
	var raw bytes.Buffer
	zw := gzip.NewWriter(&raw)
	zw.Write(good[:len(good)-2])
	zw.Close()
	_, err := ParseIDX(bytes.NewReader(raw.Bytes()), "z.gz")
	if err == nil || !strings.Contains(err.Error(), "z.gz: offset 32: truncated idx file") || !strings.Contains(err.Error(), "(uncompressed)") {
		t.Fatalf("err = %v", err)
	}
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenIDXLabels(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "im")
	lab := filepath.Join(dir, "lb")
	writeFile(t, img, encodeIDX(t, []int{3, 2, 2}, make([]uint8, 12), false))
	writeFile(t, lab, encodeIDX(t, []int{3}, []uint8{0, 12, 3}, true))
	// Labels 0, 12, 3: classes 1, 2, 4…11 would be empty (a stray label
	// must not make a 13-class set without a word: probe L5).
	_, err := Open("idx:"+img+","+lab, "", OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "labels go up to 12, but 10 of those 13 classes have no example (1, 2, 4, 5, 6 and 5 more)") {
		t.Fatalf("stray label: %v", err)
	}
	writeFile(t, lab+"3", encodeIDX(t, []int{3}, []uint8{0, 2, 1}, true))
	ds, err := Open("idx:"+img+","+lab+"3", "", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.NumClasses() != 3 || ds.Label(1) != 2 {
		t.Fatalf("classes %d label %d", ds.NumClasses(), ds.Label(1))
	}
	// MNIST names: label 12 is out of range [0,10), at byte 8+1.
	for i, n := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz"} {
		os.Rename([]string{img, lab}[i], filepath.Join(dir, n))
	}
	_, err = Open("mnist:"+dir, "train", OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "offset 9: label 12 of example 1 out of range: expected [0,10)") {
		t.Fatalf("err = %v", err)
	}
	writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), encodeIDX(t, []int{2}, []uint8{0, 1}, true))
	_, err = Open("mnist:"+dir, "train", OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "2 labels for 3 images") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Open("mnist:"+dir, "test", OpenOptions{}); err == nil || !strings.Contains(err.Error(), "missing t10k-images-idx3-ubyte") {
		t.Fatalf("err = %v", err)
	}
}

// TestMNISTReal reads the real MNIST files and checks the counts and the
// normalisation constants MNISTMean/MNISTStd against the data itself.
func TestMNISTReal(t *testing.T) {
	dir, err := mnistdata.Dir()
	if err != nil {
		t.Skip(err)
	}
	for _, tt := range []struct {
		split string
		n     int
	}{{"train", 60000}, {"test", 10000}} {
		ds, err := Open("mnist:"+dir, tt.split, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, h, w := ds.Shape()
		if ds.Len() != tt.n || c != 1 || h != 28 || w != 28 || ds.NumClasses() != 10 {
			t.Fatalf("%s: %d examples %d×%d×%d %d classes", tt.split, ds.Len(), c, h, w, ds.NumClasses())
		}
		counts := ClassCounts(ds)
		for k, n := range counts {
			if n < tt.n/15 || n > tt.n/8 {
				t.Errorf("%s: class %d has %d examples", tt.split, k, n)
			}
		}
		if tt.split != "train" {
			continue
		}
		var s, ss float64
		img := make([]uint8, 784)
		for i := range ds.Len() {
			ds.Image(i, img)
			for _, v := range img {
				x := float64(v) / 255
				s += x
				ss += x * x
			}
		}
		n := float64(ds.Len() * 784)
		mean := s / n
		std := math.Sqrt(ss/n - mean*mean)
		if math.Abs(mean-float64(MNISTMean[0])) > 1e-4 || math.Abs(std-float64(MNISTStd[0])) > 1e-4 {
			t.Errorf("MNIST train mean %.5f std %.5f: constants say %v %v", mean, std, MNISTMean, MNISTStd)
		}
	}
}

func FuzzParseIDX(f *testing.F) {
	f.Add(encodeIDX(f, []int{2, 2, 2}, make([]uint8, 8), false))
	f.Add(encodeIDX(f, []int{3}, []uint8{1, 2, 3}, true))
	f.Add([]byte{0, 0, 8, 1, 0, 0, 0, 5, 1})
	f.Add([]byte{0, 0, 8, 4, 0xff, 0, 0, 0, 0xff, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseIDX(bytes.NewReader(b), "fuzz")
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		n := 1
		for _, d := range m.Dims {
			n *= d
		}
		if n != len(m.Data) {
			t.Fatalf("dims %v but %d bytes", m.Dims, len(m.Data))
		}
	})
}
