package data

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashFixture is an ImageFolder directory of 3 classes × 7 PNGs of
// varying sizes (one undecodable when bad), for the crash tests.
func crashFixture(t testing.TB, bad bool) string {
	root := t.TempDir()
	seed := uint64(10)
	for _, c := range []string{"ant", "bee", "cat"} {
		for i := range 7 {
			h, w := 9+i, 14-i
			img, _ := testImage(h, w, seed)
			seed++
			body := pngBytes(t, img)
			if bad && c == "bee" && i == 3 {
				body = []byte("\x89PNG\r\n\x1a\nbroken")
			}
			writeFile(t, filepath.Join(root, c, fmt.Sprintf("%02d.png", i)), body)
		}
	}
	return root
}

// folderDigest hashes every regular file of dir by name (hidden files
// included), so two prepared folders can be compared byte for byte.
func folderDigest(t testing.TB, dir string) map[string]string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		out[e.Name()] = hex.EncodeToString(sum[:8])
	}
	return out
}

// crashOptions are the options of the crash tests' prepares: shards of
// about 3 images, so that a run completes several.
func crashOptions(src, out string, short bool) PrepareOptions {
	o := PrepareOptions{Src: src, Out: out, ImageSize: 8, ShardBytes: 3 * (4 + 3*8*8), SkipBadImages: true, Workers: 2}
	if short {
		o.ImageSize, o.ShortSide, o.ShardBytes = 0, 8, 3*(16+3*8*12)
	}
	return o
}

// TestPrepareCrashChild is the child of TestPrepareResumesAfterSIGKILL: it
// prepares and SIGKILLs itself at the n-th crash point named point.
func TestPrepareCrashChild(t *testing.T) {
	spec := os.Getenv("DPTRAIN_PREPARE_CRASH")
	if spec == "" {
		t.Skip("run by TestPrepareResumesAfterSIGKILL")
	}
	parts := strings.Split(spec, "|")
	point, src, out, short := parts[0], parts[2], parts[3], parts[4] == "short"
	n, _ := strconv.Atoi(parts[1])
	seen := 0
	crashHook = func(p string) {
		if p == point {
			if seen++; seen == n {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // never returns
			}
		}
	}
	Prepare(crashOptions(src, out, short))
	t.Fatalf("crash point %s #%d never reached", point, n)
}

// TestPrepareResumesAfterSIGKILL kills a prepare (a child process,
// SIGKILLed by itself at a chosen point: mid-shard, right after a shard's
// rename, right after the journal, right after the manifest) and checks
// that rerunning it gives exactly the folder an uninterrupted prepare
// writes, file for file, and that no attempt ever leaves a manifest
// beside incomplete shards.
func TestPrepareResumesAfterSIGKILL(t *testing.T) {
	for _, short := range []bool{false, true} {
		src := crashFixture(t, true)
		want := filepath.Join(t.TempDir(), "want")
		rep, err := Prepare(crashOptions(src, want, short))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Manifest.Shards) < 4 || len(rep.Skipped) != 1 {
			t.Fatalf("fixture: %d shards, %d skipped: expected ≥ 4 shards and 1 skip", len(rep.Manifest.Shards), len(rep.Skipped))
		}
		wantFiles := folderDigest(t, want)
		for _, tc := range []struct {
			point   string
			n       int
			resumes bool // a shard was journaled before the kill
		}{
			{"record written", 1, false}, {"record written", 5, true}, {"shard renamed", 1, false}, {"shard renamed", 3, true},
			{"journal saved", 2, true}, {"journal saved", 4, true}, {"manifest written", 1, true},
		} {
			name := fmt.Sprintf("short=%v/%s#%d", short, tc.point, tc.n)
			out := filepath.Join(t.TempDir(), "out")
			layout := map[bool]string{false: "square", true: "short"}[short]
			cmd := exec.Command(os.Args[0], "-test.run=^TestPrepareCrashChild$")
			cmd.Env = append(os.Environ(), "DPTRAIN_PREPARE_CRASH="+strings.Join([]string{tc.point, strconv.Itoa(tc.n), src, out, layout}, "|"))
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("%s: child ended with %v: expected SIGKILL", name, err)
			}
			if tc.point == "manifest written" {
				// Complete before the kill: a valid dataset (the stale
				// journal is ignored), and prepare refuses to redo it.
				if _, err := OpenPrepared(out, OpenOptions{}); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if _, err := Prepare(crashOptions(src, out, short)); err == nil || !strings.Contains(err.Error(), "already holds") {
					t.Fatalf("%s: rerun: %v", name, err)
				}
				continue
			}
			if _, err := os.Stat(filepath.Join(out, manifestName)); err == nil {
				t.Fatalf("%s: a manifest after a kill before the end", name)
			}
			var last PrepareProgress
			o := crashOptions(src, out, short)
			o.Progress = func(p PrepareProgress) { last = p }
			rep, err := Prepare(o)
			if err != nil {
				t.Fatalf("%s: resume: %v", name, err)
			}
			if (rep.Resumed > 0) != tc.resumes {
				t.Errorf("%s: resumed after %d images: expected a resume %v", name, rep.Resumed, tc.resumes)
			}
			if last.Done != last.Total || last.Total != 21 || last.Resumed != rep.Resumed || last.Skipped != 1 {
				t.Errorf("%s: last progress %+v: expected 21 of 21 done, 1 skipped, resumed %d", name, last, rep.Resumed)
			}
			if len(rep.Skipped) != 1 {
				t.Errorf("%s: %d skipped reported: expected 1", name, len(rep.Skipped))
			}
			got := folderDigest(t, out)
			if fmt.Sprint(got) != fmt.Sprint(wantFiles) {
				t.Errorf("%s: resumed folder differs from an uninterrupted prepare:\n got %v\nwant %v", name, got, wantFiles)
			}
		}
	}
}

// TestPrepareResumeRefusesOtherInputs: a journal is used only by the same
// source listing and options.
func TestPrepareResumeRefusesOtherInputs(t *testing.T) {
	src := crashFixture(t, false)
	out := filepath.Join(t.TempDir(), "out")
	o := crashOptions(src, out, false)
	j := &prepareJournal{Fingerprint: "other", Manifest: &Manifest{}}
	os.MkdirAll(out, 0o755)
	if err := j.save(out, &Manifest{Shards: []Shard{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(o); err == nil || !strings.Contains(err.Error(), "another source or with other options") {
		t.Fatalf("foreign journal: %v", err)
	}
	os.WriteFile(filepath.Join(out, journalName), []byte("{not json"), 0o644)
	if _, err := Prepare(o); err == nil || !strings.Contains(err.Error(), "unreadable resume journal") {
		t.Fatalf("corrupt journal: %v", err)
	}
	// An image already written, rewritten before the resume: refused,
	// never a set mixing its old and new pixels.
	src = crashFixture(t, true)
	out = filepath.Join(t.TempDir(), "out2")
	o = crashOptions(src, out, false)
	o.SkipBadImages = false
	if _, err := Prepare(o); err == nil || !strings.Contains(err.Error(), "to resume") {
		t.Fatalf("bad image: %v", err)
	}
	img, _ := testImage(9, 14, 1234)
	writeFile(t, filepath.Join(src, "ant", "00.png"), pngBytes(t, img))
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(src, "ant", "00.png"), later, later)
	o.SkipBadImages = true
	if _, err := Prepare(o); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Fatalf("an image already prepared rewritten: %v: expected the resume refused", err)
	}
	// A folder holding shard files that no prepare journal names is not
	// prepare's to overwrite.
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "shard-00000.bin"), []byte("someone else's"))
	if _, err := Prepare(crashOptions(src, other, false)); err == nil || !strings.Contains(err.Error(), "no prepare journal") {
		t.Fatalf("foreign shard files: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(other, "shard-00000.bin")); string(b) != "someone else's" {
		t.Fatal("a foreign shard file was overwritten")
	}
}

// TestSparseTarMemberRefused: a sparse member (tar --sparse) holds its
// data packed, so a streamed read at its offset would see other bytes: it
// is refused (or skipped) by name.
func TestSparseTarMemberRefused(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar command")
	}
	dir := t.TempDir()
	img, _ := testImage(8, 8, 1)
	writeFile(t, filepath.Join(dir, "src", "a", "ok.png"), pngBytes(t, img))
	// A PNG followed by a hole (trailing bytes a PNG decoder ignores).
	sparse := filepath.Join(dir, "src", "a", "sparse.png")
	body := pngBytes(t, img)
	writeFile(t, sparse, body)
	if err := os.Truncate(sparse, int64(len(body))+1<<20); err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "set.tar")
	if out, err := exec.Command("tar", "--sparse", "--format=posix", "-C", filepath.Join(dir, "src"), "-cf", tarPath, "a").CombinedOutput(); err != nil {
		t.Skipf("tar --sparse: %v %s", err, out)
	}
	_, err := OpenImageFolder(tarPath, OpenOptions{ImageSize: 8})
	if err == nil {
		t.Skip("tar did not store the member sparse on this file system")
	}
	if !strings.Contains(err.Error(), "a/sparse.png") || !strings.Contains(err.Error(), "sparse tar member") {
		t.Fatalf("sparse member: %v", err)
	}
	ds, err := OpenImageFolder(tarPath, OpenOptions{ImageSize: 8, SkipBadImages: true})
	if err != nil || ds.Len() != 1 {
		t.Fatalf("with skipping: %v", err)
	}
}

// TestPrepareErrorKeepsCompletedShards: a bad image after some shards
// fails the prepare but keeps them; fixing the image and rerunning
// resumes and gives the uninterrupted result.
func TestPrepareErrorKeepsCompletedShards(t *testing.T) {
	src := crashFixture(t, true)
	out := filepath.Join(t.TempDir(), "out")
	o := crashOptions(src, out, false)
	o.SkipBadImages = false
	_, err := Prepare(o)
	if err == nil || !strings.Contains(err.Error(), "bee/03.png") || !strings.Contains(err.Error(), "rerun the same command to resume") {
		t.Fatalf("bad image: %v", err)
	}
	img, _ := testImage(12, 11, 99)
	writeFile(t, filepath.Join(src, "bee", "03.png"), pngBytes(t, img))
	rep, err := Prepare(o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Resumed == 0 {
		t.Error("the fixed prepare started over: expected it to resume")
	}
	want := filepath.Join(t.TempDir(), "want")
	o.Out = want
	if _, err := Prepare(o); err != nil {
		t.Fatal(err)
	}
	if a, b := fmt.Sprint(folderDigest(t, out)), fmt.Sprint(folderDigest(t, want)); a != b {
		t.Errorf("resumed %v, fresh %v", a, b)
	}
}

// TestPrepareShortSide: the variable layout keeps each image's aspect
// ratio with its shorter side at ShortSide (the longer capped at
// MaxAspect× it), Image gives the centre square, ImageSized the whole,
// and the Loader's resized crops see the whole image.
func TestPrepareShortSide(t *testing.T) {
	root := t.TempDir()
	// Three vertical bands (black | grey | white): the centre square of a
	// 2:1 image holds only the grey band and parts of the others.
	band := func(h, w int) image.Image {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				v := uint8(128)
				if x < w/4 {
					v = 0
				} else if x >= w-w/4 {
					v = 255
				}
				img.SetNRGBA(x, y, color.NRGBA{v, v, v, 255})
			}
		}
		return img
	}
	sizes := map[string][2]int{"a/wide.png": {20, 40}, "a/exact.png": {8, 11}, "b/tall.png": {30, 15}, "b/pano.png": {10, 80}}
	exact, _ := testImage(8, 11, 5)
	for name, hw := range sizes {
		var img image.Image = band(hw[0], hw[1])
		if name == "a/exact.png" {
			img = exact
		}
		writeFile(t, filepath.Join(root, name), pngBytes(t, img))
	}
	out := filepath.Join(t.TempDir(), "p")
	if _, err := Prepare(PrepareOptions{Src: root, Out: out, ShortSide: 8, ShardBytes: 1}); err != nil {
		t.Fatal(err)
	}
	ds, err := OpenPrepared(out, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	if c, h, w := ds.Shape(); c != 3 || h != 8 || w != 8 || ds.Len() != 4 {
		t.Fatalf("shape %d×%d×%d, %d images: expected 3×8×8, 4", c, h, w, ds.Len())
	}
	si := ds.(SizedImager)
	wantSizes := map[string][2]int{"a/exact.png": {8, 11}, "a/wide.png": {8, 16}, "b/pano.png": {8, 24}, "b/tall.png": {16, 8}}
	order := []string{"a/exact.png", "a/wide.png", "b/pano.png", "b/tall.png"}
	whole := make([]uint8, si.MaxPixels())
	sq := make([]uint8, 3*8*8)
	for i, name := range order {
		h, w, err := si.ImageSized(i, whole)
		if err != nil {
			t.Fatal(err)
		}
		if [2]int{h, w} != wantSizes[name] {
			t.Errorf("%s stored %d×%d: expected %v", name, h, w, wantSizes[name])
		}
		if name == "a/exact.png" {
			_, src := testImage(8, 11, 5)
			if string(whole[:3*h*w]) != string(src) {
				t.Error("an image already at the short side was not stored as is")
			}
		}
		if err := ds.Image(i, sq); err != nil {
			t.Fatal(err)
		}
		y0, x0 := (h-8)/2, (w-8)/2
		for ch := range 3 {
			for y := range 8 {
				if string(sq[(ch*8+y)*8:(ch*8+y+1)*8]) != string(whole[(ch*h+y0+y)*w+x0:][:8]) {
					t.Fatalf("%s: Image is not the centre square of ImageSized", name)
				}
			}
		}
		if want := []int{0, 0, 1, 1}[i]; ds.Label(i) != want {
			t.Errorf("%s label %d: expected %d", name, ds.Label(i), want)
		}
	}
	// The panorama (1:8) keeps its centre 1:3: grey, with no black or white
	// band (they are its outer quarters).
	h, w, _ := si.ImageSized(2, whole)
	for _, v := range whole[:h*w] {
		if v < 100 || v > 160 {
			t.Fatalf("capped panorama holds %d: expected only its grey centre", v)
		}
	}
	// Random-resized crops of the wide image reach its white band, which
	// its centre square holds only a sliver of: they read whole images.
	l, err := NewLoader(ds, Transform{Crop: CropRandomResized, Height: 4, Width: 4, Scale: [2]float64{0.05, 0.1}}, LoaderOptions{Workers: 1, Key: KeyFromSeed(1)})
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	whiteCrops := 0
	for step := range int64(200) {
		if err := l.Load(&b, step, []int{1}); err != nil {
			t.Fatal(err)
		}
		if b.X[0] > 0.99 && b.X[15] > 0.99 {
			whiteCrops++
		}
	}
	if whiteCrops == 0 {
		t.Error("no random-resized crop of the 8×16 image lies in its white quarter: the loader did not see the whole image")
	}
	t.Logf("%d of 200 crops white", whiteCrops)
}

// TestVariableShardCorruption: a damaged index of a variable shard is an
// error naming the shard and what is wrong, found at open (with the
// checksums off, so that the index checks themselves are tested).
func TestVariableShardCorruption(t *testing.T) {
	src := crashFixture(t, false)
	out := filepath.Join(t.TempDir(), "p")
	rep, err := Prepare(PrepareOptions{Src: src, Out: out, ShortSide: 8, ShardBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Manifest
	shard := filepath.Join(out, m.Shards[0].File)
	good, _ := os.ReadFile(shard)
	indexAt := len(good) - variableIndexEntry*m.Shards[0].Count
	for _, tc := range []struct {
		name string
		edit func(b []byte)
		want string
	}{
		{"offset", func(b []byte) { b[indexAt+variableIndexEntry] ^= 1 }, "expected"},
		{"label", func(b []byte) { b[indexAt+8] = 9 }, "label 9"},
		{"height", func(b []byte) { b[indexAt+12] = 7 }, "shorter side of 8"},
		{"width", func(b []byte) { b[indexAt+15] = 1 }, "longer one of at most"},
	} {
		b := append([]byte(nil), good...)
		tc.edit(b)
		os.WriteFile(shard, b, 0o644)
		_, err := OpenPrepared(out, OpenOptions{NoVerify: true})
		if err == nil || !strings.Contains(err.Error(), m.Shards[0].File) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v: expected an error naming the shard and %q", tc.name, err, tc.want)
		}
		if _, err := OpenPrepared(out, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "SHA-256") {
			t.Errorf("%s with checksums: %v", tc.name, err)
		}
	}
	os.WriteFile(shard, good, 0o644)
	if _, err := OpenPrepared(out, OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(m *Manifest)
		want string
	}{
		{"short side", func(m *Manifest) { m.ShortSide = 9 }, "field short_side"},
		{"long side", func(m *Manifest) { m.MaxLongSide = 100 }, "field max_long_side"},
		{"bytes", func(m *Manifest) { m.Shards[0].Bytes = 10 }, "count/bytes"},
	} {
		mm := *m
		mm.Shards = append([]Shard(nil), m.Shards...)
		tc.edit(&mm)
		b, _ := json.Marshal(mm)
		if _, err := ParseManifest(b, "m.json"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v: expected %q", tc.name, err, tc.want)
		}
	}
}

// TestPreparedPartVariable: a rank's part of a variable-size prepared set
// verifies and reads only its shards (a corrupt shard outside it does not
// matter), with the whole set's images.
func TestPreparedPartVariable(t *testing.T) {
	out := filepath.Join(t.TempDir(), "p")
	rep, err := Prepare(crashOptions(crashFixture(t, false), out, true))
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Manifest
	if len(m.Shards) < 4 {
		t.Fatalf("%d shards: expected ≥ 4", len(m.Shards))
	}
	full, err := OpenPrepared(out, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	last := filepath.Join(out, m.Shards[len(m.Shards)-1].File)
	b, _ := os.ReadFile(last)
	b[0]++
	os.WriteFile(last, b, 0o644)
	lo, hi := m.Shards[0].Count-1, m.Shards[0].Count+m.Shards[1].Count // shards 0 and 1
	part, err := OpenPrepared(out, OpenOptions{Part: func(int) (int, int) { return lo, hi }})
	if err != nil {
		t.Fatalf("part [%d,%d): %v", lo, hi, err)
	}
	defer part.Close()
	buf, want := make([]uint8, full.(SizedImager).MaxPixels()), make([]uint8, full.(SizedImager).MaxPixels())
	for i := lo; i < hi; i++ {
		h, w, err := part.(SizedImager).ImageSized(i, buf)
		fh, fw, ferr := full.(SizedImager).ImageSized(i, want)
		if err != nil || ferr != nil || h != fh || w != fw || string(buf[:3*h*w]) != string(want[:3*h*w]) || part.Label(i) != full.Label(i) {
			t.Fatalf("example %d differs from the whole set's (%v, %v)", i, err, ferr)
		}
	}
	if _, err := OpenPrepared(out, OpenOptions{Part: func(n int) (int, int) { return lo, n }}); err == nil || !strings.Contains(err.Error(), filepath.Base(last)+": SHA-256") {
		t.Fatalf("part holding the corrupt shard: %v, want its checksum error", err)
	}
}
