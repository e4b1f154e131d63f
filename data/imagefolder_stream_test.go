package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestImageFolderStreams: over the memory budget an ImageFolder is
// streamed from its files, with the same examples as decoded up front,
// from a directory and from a tar, through a Loader with two workers too.
func TestImageFolderStreams(t *testing.T) {
	f := newFolderFixture(t, 9, 12)
	for _, root := range []string{f.writeDir(t), f.writeTar(t)} {
		mem, err := OpenImageFolder(root, OpenOptions{ImageSize: 6})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := mem.(*memDataset); !ok {
			t.Fatalf("%T under the default budget: expected decoded up front", mem)
		}
		st, err := OpenImageFolder(root, OpenOptions{ImageSize: 6, MemoryBytes: 3 * 6 * 6 * 4})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.(*folderStream); !ok {
			t.Fatalf("%T over the budget: expected streamed", st)
		}
		sameDatasets(t, mem, st)
		tr := Transform{Crop: CropRandom, Height: 6, Width: 6, Pad: 1, Flip: true}
		opt := LoaderOptions{Workers: 2, Key: KeyFromSeed(3)}
		lm, _ := NewLoader(mem, tr, opt)
		ls, _ := NewLoader(st, tr, opt)
		var bm, bs Batch
		idx := []int{0, 3, 5, 1, 7}
		if err := lm.Load(&bm, 4, idx); err != nil {
			t.Fatal(err)
		}
		if err := ls.Load(&bs, 4, idx); err != nil {
			t.Fatal(err)
		}
		for i := range bm.X {
			if bm.X[i] != bs.X[i] {
				t.Fatalf("%s: loader batches differ at %d", root, i)
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestImageFolderStreamErrors: what streaming cannot do is refused at open
// with what to do instead, and a file gone since the open is an error
// naming it; the digest notices a file rewritten.
func TestImageFolderStreamErrors(t *testing.T) {
	f := newFolderFixture(t, 9, 12)
	root := f.writeDir(t)
	if _, err := OpenImageFolder(root, OpenOptions{ImageSize: 6, MemoryBytes: 1, SkipBadImages: true}); err == nil || !strings.Contains(err.Error(), "run dptrain prepare") {
		t.Errorf("skip while streaming: %v", err)
	}
	if _, err := OpenImageFolder(root, OpenOptions{MemoryBytes: 1}); err == nil || !strings.Contains(err.Error(), "images of 9×12") || !strings.Contains(err.Error(), "set an image size") {
		t.Errorf("no image size over the budget: %v", err)
	}
	ds, err := OpenImageFolder(root, OpenOptions{ImageSize: 6, MemoryBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := ds.(ContentDigester).ContentDigest()
	victim := filepath.Join(root, "bee", "a.png")
	later := time.Now().Add(time.Hour)
	os.Chtimes(victim, later, later)
	ds2, _ := OpenImageFolder(root, OpenOptions{ImageSize: 6, MemoryBytes: -1})
	if d2, _ := ds2.(ContentDigester).ContentDigest(); d1 == d2 {
		t.Error("digest unchanged after a file was rewritten (new modification time)")
	}
	os.Remove(victim)
	buf := make([]uint8, 3*6*6)
	var failed bool
	for i := range ds.Len() {
		if err := ds.Image(i, buf); err != nil {
			failed = true
			if !strings.Contains(err.Error(), victim) {
				t.Errorf("error %v: expected it to name %s", err, victim)
			}
		}
	}
	if !failed {
		t.Error("a removed file read without error")
	}
}
