package data

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCloseIsIdempotent: every kind of Dataset closes (twice, without
// error); an in-memory one still reads after Close, while a prepared one
// panics with a UsageError on Image (its shards are unmapped).
func TestCloseIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	imgs, labels := filepath.Join(dir, "i.idx"), filepath.Join(dir, "l.idx")
	writeFile(t, imgs, encodeIDX(t, []int{2, 2, 2}, make([]uint8, 8), false))
	writeFile(t, labels, encodeIDX(t, []int{2}, []uint8{0, 1}, false))
	f := newFolderFixture(t, 3, 4)
	folder := f.writeDir(t)
	out := filepath.Join(t.TempDir(), "prep")
	if _, err := Prepare(PrepareOptions{Src: folder, Out: out, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"idx:" + imgs + "," + labels, "imagefolder:" + folder, "prepared:" + out} {
		ds, err := Open(spec, "", OpenOptions{Workers: 1})
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		c, h, w := ds.Shape()
		dst := make([]uint8, c*h*w)
		if err := ds.Image(0, dst); err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		for k := range 2 {
			if err := ds.Close(); err != nil {
				t.Fatalf("%s: Close %d: %v", spec, k+1, err)
			}
		}
		if _, ok := ds.(*preparedDataset); !ok {
			if err := ds.Image(0, dst); err != nil {
				t.Errorf("%s: Image after Close: %v", spec, err)
			}
			continue
		}
		func() {
			defer func() {
				e, ok := recover().(UsageError)
				if !ok || !strings.Contains(e.Error(), "after Close") {
					t.Errorf("%s: Image after Close panicked with %v, want a UsageError", spec, e)
				}
			}()
			ds.Image(0, dst)
		}()
	}
}
