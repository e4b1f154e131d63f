package data

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type member struct {
	name string
	body []byte
	typ  byte
}

func tarBytes(t testing.TB, ms []member) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range ms {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: m.name, Typeflag: typ, Mode: 0o644, Size: int64(len(m.body))}
		if typ != tar.TypeReg {
			h.Size = 0
			h.Linkname = "x"
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.body)
	}
	tw.Close()
	return b.Bytes()
}

// folderFixture is a small ImageFolder of lossless PNGs: 3 classes given
// in unsorted order, 2–3 images each.
type folderFixture struct {
	members []member           // tar/dir members in source order
	pix     map[string][]uint8 // name → CHW
	classes []string           // sorted
}

func newFolderFixture(t testing.TB, h, w int) *folderFixture {
	f := &folderFixture{pix: map[string][]uint8{}, classes: []string{"ant", "bee", "cat"}}
	f.members = append(f.members, member{name: "./", typ: tar.TypeDir})
	seed := uint64(1)
	for _, c := range []string{"cat", "ant", "bee"} {
		f.members = append(f.members, member{name: "./" + c + "/", typ: tar.TypeDir})
		for i := range 2 + len(c)%2 + int(c[0]%2) {
			img, chw := testImage(h, w, seed)
			seed++
			name := "./" + c + "/" + string(rune('a'+i)) + ".png"
			f.members = append(f.members, member{name: name, body: pngBytes(t, img)})
			f.pix[name] = chw
		}
	}
	return f
}

func (f *folderFixture) writeDir(t testing.TB) string {
	root := t.TempDir()
	for _, m := range f.members {
		if m.typ == tar.TypeDir {
			os.MkdirAll(filepath.Join(root, m.name), 0o755)
			continue
		}
		writeFile(t, filepath.Join(root, m.name), m.body)
	}
	return root
}

func (f *folderFixture) writeTar(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "set.tar")
	writeFile(t, p, tarBytes(t, f.members))
	return p
}

// check verifies ds holds exactly the fixture (any order), with sorted
// class indices.
func (f *folderFixture) check(t *testing.T, ds Dataset) {
	t.Helper()
	if strings.Join(ds.Classes(), ",") != strings.Join(f.classes, ",") {
		t.Fatalf("classes %v, want %v", ds.Classes(), f.classes)
	}
	if ds.Len() != len(f.pix) {
		t.Fatalf("len %d, want %d", ds.Len(), len(f.pix))
	}
	c, h, w := ds.Shape()
	img := make([]uint8, c*h*w)
	found := map[string]bool{}
	for i := range ds.Len() {
		ds.Image(i, img)
		for name, p := range f.pix {
			if bytes.Equal(p, img) {
				cls := strings.Split(strings.TrimPrefix(name, "./"), "/")[0]
				if ds.Classes()[ds.Label(i)] != cls {
					t.Fatalf("%s labelled %s", name, ds.Classes()[ds.Label(i)])
				}
				found[name] = true
			}
		}
	}
	if len(found) != len(f.pix) {
		t.Fatalf("found %d of %d images", len(found), len(f.pix))
	}
}

func TestImageFolderDirAndTar(t *testing.T) {
	f := newFolderFixture(t, 5, 7)
	for _, src := range []string{f.writeDir(t), f.writeTar(t)} {
		for _, workers := range []int{1, 3} {
			ds, err := Open("imagefolder:"+src, "", OpenOptions{Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			f.check(t, ds)
			if c, h, w := ds.Shape(); c != 3 || h != 5 || w != 7 {
				t.Fatalf("shape %d×%d×%d", c, h, w)
			}
		}
	}
}

func TestImageFolderSplitAndJPEG(t *testing.T) {
	root := t.TempDir()
	img := smoothImage(16, 16)
	chw := make([]uint8, 3*256)
	toCHW(img, chw)
	writeFile(t, filepath.Join(root, "train", "x", "1.jpg"), jpegBytes(t, img))
	writeFile(t, filepath.Join(root, "train", "y", "1.PNG"), pngBytes(t, img))
	ds, err := Open("imagefolder:"+root, "train", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]uint8, 3*256)
	ds.Image(0, got)
	var sum int
	for i := range got {
		sum += absInt(int(got[i]) - int(chw[i]))
	}
	// Lossy (4:2:0 chroma on a steep gradient) but the same picture: an
	// unrelated image would be ~80 off.
	if mae := float64(sum) / float64(len(got)); mae > 8 || ds.Label(0) != 0 {
		t.Fatalf("JPEG mean abs error %.2f label %d", mae, ds.Label(0))
	}
	ds.Image(1, got)
	if !bytes.Equal(got, chw) || ds.Label(1) != 1 {
		t.Fatal("PNG pixels differ")
	}
}

func TestImageFolderResize(t *testing.T) {
	f := newFolderFixture(t, 6, 10)
	ds, err := OpenImageFolder(f.writeTar(t), OpenOptions{ImageSize: 4, Resize: ResizeFit})
	if err != nil {
		t.Fatal(err)
	}
	if c, h, w := ds.Shape(); c != 3 || h != 4 || w != 4 || ds.Len() != len(f.pix) {
		t.Fatalf("shape %d×%d×%d len %d", c, h, w, ds.Len())
	}
	// Mixed sizes without ImageSize: an error naming the odd file.
	root := f.writeDir(t)
	img, _ := testImage(3, 3, 9)
	writeFile(t, filepath.Join(root, "cat", "zz.png"), pngBytes(t, img))
	_, err = OpenImageFolder(root, OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "zz.png") || !strings.Contains(err.Error(), "image is 3×3: expected 6×10") {
		t.Fatalf("err = %v", err)
	}
	if _, err := OpenImageFolder(root, OpenOptions{ImageSize: 3}); err != nil {
		t.Fatal(err)
	}
}

func TestImageFolderBadInput(t *testing.T) {
	img, _ := testImage(4, 4, 1)
	good := pngBytes(t, img)
	tests := []struct {
		name    string
		members []member
		want    string // error (without skipping)
		skipped int    // images skipped with SkipBadImages; -1: still an error
	}{
		{"corrupt png", []member{{name: "a/1.png", body: good}, {name: "a/2.png", body: good[:len(good)/2]}},
			"a/2.png: bad image", 1},
		{"garbage jpg", []member{{name: "a/1.png", body: good}, {name: "b/1.jpg", body: []byte("hello")}, {name: "b/2.png", body: good}},
			"b/1.jpg: bad image: unknown image format", 1},
		{"not an image", []member{{name: "a/1.png", body: good}, {name: "a/notes.txt", body: []byte("x")}},
			"a/notes.txt: bad image: not an image", 1},
		{"top-level file", []member{{name: "a/1.png", body: good}, {name: "README", body: []byte("x")}},
			"README: bad image: file at the top level", 1},
		{"symlink", []member{{name: "a/1.png", body: good}, {name: "a/2.png", typ: tar.TypeSymlink}},
			"a/2.png: bad image: tar member of type", 1},
		{"empty class", []member{{name: "a/1.png", body: good}, {name: "b/", typ: tar.TypeDir}},
			": b: empty class folder", -1},
		{"all bad in class", []member{{name: "a/1.png", body: good}, {name: "b/1.png", body: good[:10]}},
			"b/1.png: bad image", -2},
		{"no classes", []member{{name: "x/", typ: tar.TypeDir}}[:0], "no class folders", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "s.tar")
			writeFile(t, p, tarBytes(t, tt.members))
			_, err := OpenImageFolder(p, OpenOptions{})
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), p) {
				t.Fatalf("err = %v, want a FormatError naming %s with %q", err, p, tt.want)
			}
			ds, err := OpenImageFolder(p, OpenOptions{SkipBadImages: true})
			switch {
			case tt.skipped == -2:
				if err == nil || !strings.Contains(err.Error(), "all skipped") {
					t.Fatalf("skip: err = %v", err)
				}
			case tt.skipped < 0:
				if err == nil {
					t.Fatal("skip: no error")
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				sk := ds.(Skipper).Skipped()
				if len(sk) != tt.skipped || sk[0].File != p || sk[0].Member == "" {
					t.Fatalf("skipped %v", sk)
				}
			}
		})
	}
}

func TestImageFolderDirErrors(t *testing.T) {
	f := newFolderFixture(t, 4, 4)
	root := f.writeDir(t)
	bad := filepath.Join(root, "bee", "broken.png")
	writeFile(t, bad, []byte("\x89PNG\r\n\x1a\nbroken"))
	_, err := OpenImageFolder(root, OpenOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), bad+": bad image") {
		t.Fatalf("err = %v", err)
	}
	ds, err := OpenImageFolder(root, OpenOptions{SkipBadImages: true})
	if err != nil {
		t.Fatal(err)
	}
	if sk := ds.(Skipper).Skipped(); len(sk) != 1 || sk[0].File != bad {
		t.Fatalf("skipped %v", sk)
	}
	f.check(t, ds)
	os.Mkdir(filepath.Join(root, "dog"), 0o755)
	if _, err := OpenImageFolder(root, OpenOptions{SkipBadImages: true}); err == nil || !strings.Contains(err.Error(), "dog: empty class folder") {
		t.Fatalf("err = %v", err)
	}
	os.Remove(filepath.Join(root, "dog"))
	// The test split must have the training classes.
	_, err = OpenImageFolder(root, OpenOptions{SkipBadImages: true, Classes: []string{"ant", "bee", "cat", "dog"}})
	if err == nil || !strings.Contains(err.Error(), "dog: missing class folder") {
		t.Fatalf("err = %v", err)
	}
	_, err = OpenImageFolder(root, OpenOptions{SkipBadImages: true, Classes: []string{"ant", "bee"}})
	if err == nil || !strings.Contains(err.Error(), "cat: unexpected class folder") {
		t.Fatalf("err = %v", err)
	}
	if _, err := OpenImageFolder(filepath.Join(root, "nope"), OpenOptions{}); err == nil {
		t.Fatal("missing folder accepted")
	}
}

func TestImageFolderTruncatedTar(t *testing.T) {
	f := newFolderFixture(t, 4, 4)
	b := tarBytes(t, f.members)
	p := filepath.Join(t.TempDir(), "t.tar")
	writeFile(t, p, b[:len(b)/2+100])
	_, err := OpenImageFolder(p, OpenOptions{})
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), p) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzImageFolderTar fuzzes OpenImageFolder on tar archives. Seeds are
// kept small (1×1 images, no end-of-archive blocks): the Go fuzzer stalls on
// multi-kilobyte inputs.
func FuzzImageFolderTar(f *testing.F) {
	img, _ := testImage(1, 1, 1)
	tiny := pngBytes(f, img)
	trim := func(b []byte) []byte { return b[:len(b)-1024] } // drop the two zero blocks
	f.Add(trim(tarBytes(f, []member{{name: "a/1.png", body: tiny}})))
	f.Add(trim(tarBytes(f, []member{{name: "a/", typ: tar.TypeDir}, {name: "a/1.jpg", body: tiny[:8]}})))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.tar")
		os.WriteFile(p, b, 0o644)
		for _, skip := range []bool{false, true} {
			ds, err := OpenImageFolder(p, OpenOptions{SkipBadImages: skip, Workers: 2})
			if err != nil {
				if errors.Is(err, io.EOF) {
					t.Fatalf("bare EOF: %v", err)
				}
				continue
			}
			c, h, w := ds.Shape()
			buf := make([]uint8, c*h*w)
			for i := range ds.Len() {
				ds.Image(i, buf)
				if l := ds.Label(i); l < 0 || l >= ds.NumClasses() {
					t.Fatalf("label %d", l)
				}
			}
		}
	})
}

// TestTarLyingSize: a member header claiming more bytes than the archive
// holds is an error before anything that size is allocated.
func TestTarLyingSize(t *testing.T) {
	img, _ := testImage(2, 2, 1)
	b := tarBytes(t, []member{{name: "a/1.png", body: pngBytes(t, img)}})
	hdr, err := tar.NewReader(bytes.NewReader(b)).Next()
	if err != nil {
		t.Fatal(err)
	}
	hdr.Size = 1 << 32 // within USTAR's octal size field
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	buf.Write(b[512:])
	p := filepath.Join(t.TempDir(), "lie.tar")
	writeFile(t, p, buf.Bytes())
	_, err = OpenImageFolder(p, OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "a/1.png") || !strings.Contains(err.Error(), "4294967296 bytes") {
		t.Fatalf("err = %v", err)
	}
}
