package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/jpeg"
	"path/filepath"
	"testing"
)

// TestUnsupportedIsAKindOfFormatError: valid data this package does not
// read (an idx of floats, a newer manifest, a JPEG the standard decoder
// does not support) is a *FormatError for which errors.Is(err,
// errors.ErrUnsupported) holds; corrupt data is not unsupported.
func TestUnsupportedIsAKindOfFormatError(t *testing.T) {
	idx := func(typ byte) error {
		_, err := ParseIDX(bytes.NewReader([]byte{0, 0, typ, 1, 0, 0, 0, 0}), "x.idx")
		return err
	}
	manifest := func(version int) error {
		m := validManifest()
		m.Version = version
		b, _ := json.Marshal(m)
		_, err := ParseManifest(b, "m.json")
		return err
	}
	// A JPEG with an SOF marker for arithmetic coding (SOF9), which
	// image/jpeg reports as unsupported (libjpeg-turbo decodes arithmetic
	// coding, and finds this one corrupt); one of 12-bit samples, which
	// neither decoder supports; and one cut after its SOI.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a", "arith.jpg"), []byte{0xff, 0xd8, 0xff, 0xc9, 0x00, 0x02})
	dir12 := t.TempDir()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, smoothImage(16, 16), nil); err != nil {
		t.Fatal(err)
	}
	twelve := setJPEGSize(t, buf.Bytes(), 16, 16)
	twelve[bytes.Index(twelve, []byte{0xff, 0xc0})+4] = 12 // SOF0 sample precision
	writeFile(t, filepath.Join(dir12, "a", "twelve.jpg"), twelve)
	dir2 := t.TempDir()
	writeFile(t, filepath.Join(dir2, "a", "cut.jpg"), []byte{0xff, 0xd8})
	image := func(root string) error {
		_, err := OpenImageFolder(root, OpenOptions{Workers: 1})
		return err
	}
	for _, tt := range []struct {
		name        string
		err         error
		unsupported bool
	}{
		{"idx float", idx(0x0d), true},
		{"idx signed byte", idx(0x09), true},
		{"idx type 0x0a (not an idx type)", idx(0x0a), false},
		{"idx bad magic", func() error { _, err := ParseIDX(bytes.NewReader([]byte{1, 0, 8, 1}), "x.idx"); return err }(), false},
		{"manifest version 3", manifest(3), true},
		{"manifest version 0", manifest(0), false},
		{"jpeg arithmetic coding", image(dir), jpegDecoder == "image/jpeg"},
		{"jpeg 12-bit", image(dir12), true},
		{"jpeg cut short", image(dir2), false},
	} {
		var fe *FormatError
		if !errors.As(tt.err, &fe) {
			t.Errorf("%s: %v (%T), want a *FormatError", tt.name, tt.err, tt.err)
			continue
		}
		if got := errors.Is(tt.err, errors.ErrUnsupported); got != tt.unsupported {
			t.Errorf("%s: %v: errors.Is(err, errors.ErrUnsupported) = %v, want %v", tt.name, tt.err, got, tt.unsupported)
		}
	}
	var je jpeg.UnsupportedError
	if err := image(dir); jpegDecoder == "image/jpeg" && !errors.As(err, &je) {
		t.Errorf("arithmetic-coded JPEG: %v, want a jpeg.UnsupportedError inside", err)
	}
}
