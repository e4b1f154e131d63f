package data

// Regression tests for the reliability probe of commit 5adac92
// (../shared/reviews/reliability-probe.md), each naming its defect.

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// withDeadline fails the test instead of hanging if fn blocks (the
// correct code returns at once; the deadline only turns a hang into a
// failure).
func withDeadline(t *testing.T, fn func() error) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("blocked for 60 s (a named pipe opened for reading?)")
		return nil
	}
}

// TestImageFolderRefusesNonRegularFiles covers M4: a link to /dev/zero, a
// named pipe and a file over the size cap are refused (skipped with
// SkipBadImages) before anything is read; a link to a regular image and a
// class folder that is a link are followed.
func TestImageFolderRefusesNonRegularFiles(t *testing.T) {
	f := newFolderFixture(t, 4, 4)
	for _, tc := range []struct {
		name, want string
		plant      func(root string) string
	}{
		{"link to /dev/zero", "a device", func(root string) string {
			p := filepath.Join(root, "ant", "zero.png")
			os.Symlink("/dev/zero", p)
			return p
		}},
		{"named pipe", "a named pipe (FIFO)", func(root string) string {
			p := filepath.Join(root, "ant", "pipe.png")
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skip("mkfifo:", err)
			}
			return p
		}},
		{"sparse file over the cap", "expected an image file of at most 67108864 bytes", func(root string) string {
			p := filepath.Join(root, "ant", "sparse.png")
			fh, _ := os.Create(p)
			fh.Truncate(8 << 30)
			fh.Close()
			return p
		}},
		{"link to a folder inside a class", "a link to a folder", func(root string) string {
			p := filepath.Join(root, "ant", "loop.png")
			os.Symlink(root, p)
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := f.writeDir(t)
			bad := tc.plant(root)
			err := withDeadline(t, func() error { _, err := OpenImageFolder(root, OpenOptions{}); return err })
			if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s and %q", err, bad, tc.want)
			}
			var ds Dataset
			err = withDeadline(t, func() (err error) { ds, err = OpenImageFolder(root, OpenOptions{SkipBadImages: true}); return })
			if err != nil {
				t.Fatal(err)
			}
			if sk := ds.(Skipper).Skipped(); len(sk) != 1 || sk[0].File != bad {
				t.Fatalf("skipped %v, want %s", sk, bad)
			}
			f.check(t, ds)
		})
	}
	// Links to regular images, and a class folder that is a link, are used.
	root := f.writeDir(t)
	elsewhere := t.TempDir()
	os.Rename(filepath.Join(root, "bee"), filepath.Join(elsewhere, "bee"))
	if err := os.Symlink(filepath.Join(elsewhere, "bee"), filepath.Join(root, "bee")); err != nil {
		t.Fatal(err)
	}
	ds, err := OpenImageFolder(root, OpenOptions{})
	if err != nil {
		t.Fatalf("symlinked class folder: %v", err)
	}
	f.check(t, ds)
}

// TestReadImageFileRechecksTheOpenedFile covers the M4 race: a file
// replaced by a named pipe after the scan neither blocks nor is read.
func TestReadImageFileRechecksTheOpenedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.png")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	err := withDeadline(t, func() error { _, err := readImageFile(p); return err })
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("got %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.png")
	os.WriteFile(big, make([]byte, 1000), 0o644)
	old := maxImageFileBytes
	maxImageFileBytes = 999
	defer func() { maxImageFileBytes = old }()
	if _, err := readImageFile(big); err == nil || !strings.Contains(err.Error(), "at most 999 bytes") {
		t.Fatalf("over the cap: %v", err)
	}
}

// TestTarMembersOutsideTheRootRefused covers L5: "../" and absolute member
// names are errors (skipped with SkipBadImages), not new classes; so is a
// member over the size cap.
func TestTarMembersOutsideTheRootRefused(t *testing.T) {
	f := newFolderFixture(t, 4, 4)
	body := f.members[2].body
	for _, name := range []string{"../../etc/x/evil.png", "/abs/cat/evil.png", "cat/../../evil.png"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "t.tar")
			writeFile(t, p, tarBytes(t, append(append([]member(nil), f.members...), member{name: name, body: body})))
			_, err := OpenImageFolder(p, OpenOptions{})
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "inside the archive") {
				t.Fatalf("got %v", err)
			}
			ds, err := OpenImageFolder(p, OpenOptions{SkipBadImages: true})
			if err != nil {
				t.Fatal(err)
			}
			f.check(t, ds) // the same classes and images: nothing added
		})
	}
	old := maxImageFileBytes
	maxImageFileBytes = int64(len(body)) - 1
	defer func() { maxImageFileBytes = old }()
	if _, err := OpenImageFolder(f.writeTar(t), OpenOptions{}); err == nil || !strings.Contains(err.Error(), "expected an image file of at most") {
		t.Fatalf("member over the cap: %v", err)
	}
}

// TestWrappedImageFolderExplained covers L8: a tree train/<class>/<image>
// is not one class "train" but an error saying where to point.
func TestWrappedImageFolderExplained(t *testing.T) {
	f := newFolderFixture(t, 4, 4)
	var ms []member
	for _, m := range f.members {
		m.name = "train/" + strings.TrimPrefix(m.name, "./")
		ms = append(ms, m)
	}
	p := filepath.Join(t.TempDir(), "t.tar")
	writeFile(t, p, tarBytes(t, ms))
	root := t.TempDir()
	if err := os.Rename(f.writeDir(t), filepath.Join(root, "train")); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{p, root} {
		_, err := OpenImageFolder(src, OpenOptions{})
		if err == nil || !strings.Contains(err.Error(), `one top-level folder "train" holding only folders`) {
			t.Errorf("%s: got %v", src, err)
		}
	}
}

// TestDecodeMemoryBudget covers L6: concurrent decoders together never
// reserve more than the budget, and an image larger than the whole budget
// still decodes (alone).
func TestDecodeMemoryBudget(t *testing.T) {
	var b bytes.Buffer
	png.Encode(&b, image.NewNRGBA(image.Rect(0, 0, 300, 200)))
	one := decodeEstimate(image.Config{ColorModel: image.NewNRGBA(image.Rect(0, 0, 1, 1)).ColorModel(), Width: 300, Height: 200})
	oldBudget := decodeBudgetBytes
	t.Cleanup(func() { decodeBudgetBytes = oldBudget })
	for _, budget := range []int64{2*one + one/2, one / 2} {
		decodeBudgetBytes = budget
		decodeBudget.mu.Lock()
		decodeBudget.peak = 0
		decodeBudget.mu.Unlock()
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, _, errs[i] = DecodeImage(b.Bytes(), nil)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		decodeBudget.mu.Lock()
		peak, held := decodeBudget.peak, decodeBudget.held
		decodeBudget.mu.Unlock()
		if peak > budget || peak == 0 || held != 0 {
			t.Fatalf("budget %d: peak reserved %d, %d still held", budget, peak, held)
		}
	}
}

// TestTruncatedShardIsAnErrorNotSIGBUS covers L7: a prepared shard cut
// short while it is mapped gives an error naming the shard.
func TestTruncatedShardIsAnErrorNotSIGBUS(t *testing.T) {
	f := newFolderFixture(t, 64, 64)
	out := filepath.Join(t.TempDir(), "p")
	if _, err := Prepare(PrepareOptions{Src: f.writeTar(t), Out: out}); err != nil {
		t.Fatal(err)
	}
	ds, err := OpenPrepared(out, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.(interface{ Close() error }).Close()
	shard := filepath.Join(out, "shard-00000.bin")
	if err := os.Truncate(shard, 0); err != nil {
		t.Fatal(err)
	}
	c, h, w := ds.Shape()
	err = ds.Image(ds.Len()-1, make([]uint8, c*h*w))
	if err == nil || !strings.Contains(err.Error(), "shard changed or was truncated while in use") || !strings.Contains(err.Error(), shard) {
		t.Fatalf("got %v", err)
	}
}

// TestPrepareLeavesNothingOnFailure covers L12 and M5: a failed prepare
// removes the folder it created (never one that existed), and an image
// size beyond MaxImageSize is refused.
func TestPrepareLeavesNothingOnFailure(t *testing.T) {
	f := newFolderFixture(t, 4, 4)
	bad := append(append([]member(nil), f.members...), member{name: "cat/z.png", body: []byte("\x89PNG\r\n\x1a\nbroken")})
	src := filepath.Join(t.TempDir(), "bad.tar")
	writeFile(t, src, tarBytes(t, bad))
	out := filepath.Join(t.TempDir(), "p")
	if _, err := Prepare(PrepareOptions{Src: src, Out: out}); err == nil {
		t.Fatal("bad image accepted")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("output folder left behind: %v", err)
	}
	existing := t.TempDir()
	if _, err := Prepare(PrepareOptions{Src: src, Out: existing}); err == nil {
		t.Fatal("bad image accepted")
	}
	if _, err := os.Stat(existing); err != nil {
		t.Fatalf("an existing folder was removed: %v", err)
	}
	if _, err := Prepare(PrepareOptions{Src: f.writeTar(t), Out: out, ImageSize: 100000}); err == nil || !strings.Contains(err.Error(), "image size 100000") {
		t.Fatalf("image size 100000: %v", err)
	}
	if _, err := Open("imagefolder:"+f.writeTar(t), "", OpenOptions{ImageSize: MaxImageSize + 1}); err == nil {
		t.Fatal("image size over MaxImageSize accepted by Open")
	}
}

// TestPrepareNeverWritesThroughLinks covers M3: links planted at the
// temporary and final names of the shards and manifest do not redirect
// the writes.
func TestPrepareNeverWritesThroughLinks(t *testing.T) {
	f := newFolderFixture(t, 4, 4)
	src := f.writeTar(t)
	for _, tc := range []struct {
		names   []string
		refused string // "": the prepare succeeds around the links
	}{
		{[]string{"shard-00000.bin.tmp", "manifest.json.tmp", "." + journalName + ".tmp", "." + manifestName + ".tmp"}, ""},
		{[]string{journalName}, "unreadable resume journal"},
		{[]string{"shard-00000.bin"}, "holds shard files"},
		{[]string{prepareLockName}, "lock"},
	} {
		out := t.TempDir()
		victim := filepath.Join(t.TempDir(), "victim")
		os.WriteFile(victim, []byte("precious"), 0o644)
		for _, name := range tc.names {
			if err := os.Symlink(victim, filepath.Join(out, name)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Prepare(PrepareOptions{Src: src, Out: out})
		if b, _ := os.ReadFile(victim); string(b) != "precious" {
			t.Fatalf("%v: victim overwritten (%d bytes)", tc.names, len(b))
		}
		if tc.refused != "" {
			if err == nil || !strings.Contains(err.Error(), tc.refused) {
				t.Fatalf("%v: %v: expected a refusal with %q", tc.names, err, tc.refused)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.names, err)
		}
		ds, err := OpenPrepared(out, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f.check(t, ds)
		ds.Close()
	}
}
