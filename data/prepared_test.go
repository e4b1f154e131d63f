package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sameDatasets fails unless a and b hold the same examples in order.
func sameDatasets(t *testing.T, a, b Dataset) {
	t.Helper()
	ac, ah, aw := a.Shape()
	bc, bh, bw := b.Shape()
	if a.Len() != b.Len() || ac != bc || ah != bh || aw != bw || strings.Join(a.Classes(), ",") != strings.Join(b.Classes(), ",") {
		t.Fatalf("datasets differ: %d %v %d×%d×%d vs %d %v %d×%d×%d", a.Len(), a.Classes(), ac, ah, aw, b.Len(), b.Classes(), bc, bh, bw)
	}
	x, y := make([]uint8, ac*ah*aw), make([]uint8, ac*ah*aw)
	for i := range a.Len() {
		a.Image(i, x)
		b.Image(i, y)
		if a.Label(i) != b.Label(i) || !bytes.Equal(x, y) {
			t.Fatalf("example %d differs", i)
		}
	}
}

func TestPrepareRoundTrip(t *testing.T) {
	f := newFolderFixture(t, 9, 12)
	src := f.writeTar(t)
	for _, tt := range []struct {
		size       int
		mode       ResizeMode
		shardBytes int64
		shards     int
	}{{4, ResizeFit, 0, 1}, {5, ResizeShorterCenter, 2 * (4 + 75), 6}, {0, ResizeFit, 1, 11}} {
		out := filepath.Join(t.TempDir(), "prep")
		rep, err := Prepare(PrepareOptions{Src: src, Out: out, ImageSize: tt.size, Resize: tt.mode, ShardBytes: tt.shardBytes, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Manifest.Shards) != tt.shards || rep.Manifest.Count != len(f.pix) {
			t.Fatalf("size %d: %d shards, %d records", tt.size, len(rep.Manifest.Shards), rep.Manifest.Count)
		}
		want, err := OpenImageFolder(src, OpenOptions{ImageSize: tt.size, Resize: tt.mode})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Open("prepared:"+out, "train", OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sameDatasets(t, want, got)
		if err := got.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := Prepare(PrepareOptions{Src: src, Out: out}); err == nil || !strings.Contains(err.Error(), "already holds") {
			t.Fatalf("overwrite: %v", err)
		}
	}
}

func TestPrepareFromSpecAndSkips(t *testing.T) {
	dir := t.TempDir()
	l, p := randomCIFAR(6, 10, 4)
	writeFile(t, filepath.Join(dir, "test_batch.bin"), encodeCIFAR(l, p, CIFAR10Format))
	out := filepath.Join(dir, "prep", "test")
	if _, err := Prepare(PrepareOptions{Src: "cifar10:" + dir, Split: "test", Out: out}); err != nil {
		t.Fatal(err)
	}
	want, _ := Open("cifar10:"+dir, "test", OpenOptions{})
	got, err := Open("prepared:"+filepath.Join(dir, "prep"), "test", OpenOptions{}) // split subfolder
	if err != nil {
		t.Fatal(err)
	}
	sameDatasets(t, want, got)

	f := newFolderFixture(t, 4, 4)
	root := f.writeDir(t)
	writeFile(t, filepath.Join(root, "ant", "bad.jpg"), []byte{0xff, 0xd8, 0xff})
	if _, err := Prepare(PrepareOptions{Src: root, Out: filepath.Join(dir, "p2")}); err == nil || !strings.Contains(err.Error(), "bad.jpg") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "p2", "shard-00000.bin")); err == nil {
		t.Fatal("failed prepare left a shard behind")
	}
	rep, err := Prepare(PrepareOptions{Src: root, Out: filepath.Join(dir, "p2"), SkipBadImages: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Manifest.Skipped != 1 || len(rep.Skipped) != 1 || rep.Manifest.Count != len(f.pix) {
		t.Fatalf("skipped %d/%v count %d", rep.Manifest.Skipped, rep.Skipped, rep.Manifest.Count)
	}
}

// corrupt prepares a small dataset, applies edit to its folder and returns
// the error of opening it.
func corrupt(t *testing.T, opts OpenOptions, edit func(dir string, m *Manifest)) error {
	t.Helper()
	f := newFolderFixture(t, 3, 3)
	out := filepath.Join(t.TempDir(), "p")
	rep, err := Prepare(PrepareOptions{Src: f.writeTar(t), Out: out, ShardBytes: 3 * (4 + 27)})
	if err != nil {
		t.Fatal(err)
	}
	edit(out, rep.Manifest)
	_, err = OpenPrepared(out, opts)
	return err
}

func TestPreparedCorruption(t *testing.T) {
	shard1 := func(dir string) string { return filepath.Join(dir, "shard-00001.bin") }
	tests := []struct {
		name string
		opts OpenOptions
		edit func(dir string, m *Manifest)
		want string
	}{
		{"checksum", OpenOptions{}, func(dir string, m *Manifest) {
			b, _ := os.ReadFile(shard1(dir))
			b[10]++
			os.WriteFile(shard1(dir), b, 0o644)
		}, "shard-00001.bin: SHA-256"},
		{"truncated", OpenOptions{NoVerify: true}, func(dir string, m *Manifest) {
			os.Truncate(shard1(dir), 50)
		}, "shard-00001.bin: offset 50: shard is 50 bytes: expected 93"},
		{"missing shard", OpenOptions{}, func(dir string, m *Manifest) { os.Remove(shard1(dir)) }, "shard-00001.bin"},
		{"label", OpenOptions{}, func(dir string, m *Manifest) {
			b, _ := os.ReadFile(shard1(dir))
			b[31] = 9 // label of record 1
			os.WriteFile(shard1(dir), b, 0o644)
			sum := sha256.Sum256(b)
			m.Shards[1].SHA256 = hex.EncodeToString(sum[:])
			j, _ := json.Marshal(m)
			os.WriteFile(filepath.Join(dir, manifestName), j, 0o644)
		}, "shard-00001.bin: offset 31: label 9 of record 1 out of range: expected [0,3)"},
		{"no manifest", OpenOptions{}, func(dir string, m *Manifest) { os.Remove(filepath.Join(dir, manifestName)) }, "expected the output folder of dptrain prepare"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := corrupt(t, tt.opts, tt.edit)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// Without verification a flipped pixel goes unnoticed (sizes still checked).
	if err := corrupt(t, OpenOptions{NoVerify: true}, tests[0].edit); err != nil {
		t.Fatal(err)
	}
}

func validManifest() Manifest {
	return Manifest{Format: preparedFormat, Version: 1, Count: 3, Classes: []string{"a"}, Channels: 1, Height: 2, Width: 2,
		RecordSize: 8, RecordsPerShard: 2, Shards: []Shard{{File: "s0", Count: 2, SHA256: strings.Repeat("0", 64)}, {File: "s1", Count: 1, SHA256: strings.Repeat("0", 64)}}}
}

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name string
		edit func(m *Manifest)
		want string
	}{
		{"ok", func(m *Manifest) {}, ""},
		{"format", func(m *Manifest) { m.Format = "x" }, "field format"},
		{"version", func(m *Manifest) { m.Version = 3 }, "field version"},
		{"classes", func(m *Manifest) { m.Classes = nil }, "field classes"},
		{"shape", func(m *Manifest) { m.Height = 0 }, "field channels/height/width"},
		{"record size", func(m *Manifest) { m.RecordSize = 7 }, "field record_size: 7: expected 8"},
		{"count", func(m *Manifest) { m.Count = 4 }, "field count: 4, but the shards hold 3"},
		{"short shard", func(m *Manifest) { m.Shards[0].Count = 1; m.Count = 2 }, "field shards[0].count"},
		{"path", func(m *Manifest) { m.Shards[1].File = "../etc/passwd" }, "field shards[1].file"},
		{"sha", func(m *Manifest) { m.Shards[1].SHA256 = "ab" }, "field shards[1].sha256"},
		{"per shard", func(m *Manifest) { m.RecordsPerShard = 0 }, "field records_per_shard"},
	}
	for _, tt := range tests {
		m := validManifest()
		tt.edit(&m)
		b, _ := json.Marshal(m)
		_, err := ParseManifest(b, "m.json")
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := ParseManifest([]byte("{"), "m.json"); err == nil || !strings.HasPrefix(err.Error(), "m.json: bad manifest JSON") {
		t.Errorf("bad JSON: %v", err)
	}
}

// TestPrepareCIFARTest prepares the real CIFAR-10 test tar and checks it
// against the in-memory decode.
func TestPrepareCIFARTest(t *testing.T) {
	src := cifarTar(t, "test")
	out := filepath.Join(t.TempDir(), "p")
	if _, err := Prepare(PrepareOptions{Src: src, Out: out, ImageSize: 32}); err != nil {
		t.Fatal(err)
	}
	want, err := OpenImageFolder(src, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenPrepared(out, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	sameDatasets(t, want, got)
	for c, n := range ClassCounts(got) {
		if n != 1000 {
			t.Fatalf("class %d: %d", c, n)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	m := validManifest()
	b, _ := json.Marshal(m)
	f.Add(b)
	f.Add([]byte(`{"format":"dptrain-prepared","version":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b, "fuzz")
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%v is not a *FormatError", err)
			}
			return
		}
		n := 0
		for _, s := range m.Shards {
			n += s.Count
		}
		if n != m.Count || m.RecordSize != 4+m.Channels*m.Height*m.Width {
			t.Fatalf("inconsistent manifest accepted: %+v", m)
		}
	})
}

// TestPreparedPart: opened for a part of its examples (one rank's block),
// a prepared set verifies and reads only the shards holding the part — a
// corrupt shard outside it goes unnoticed there, one inside is refused —
// has the whole set's digest, and refuses to read outside the part.
func TestPreparedPart(t *testing.T) {
	f := newFolderFixture(t, 3, 3) // 3 images per shard below
	out := filepath.Join(t.TempDir(), "p")
	rep, err := Prepare(PrepareOptions{Src: f.writeTar(t), Out: out, ShardBytes: 3 * (4 + 27)})
	if err != nil {
		t.Fatal(err)
	}
	ns, n := len(rep.Manifest.Shards), rep.Manifest.Count
	if ns < 3 || rep.Manifest.RecordsPerShard != 3 {
		t.Fatalf("%d shards of %d records, want ≥ 3 of 3", ns, rep.Manifest.RecordsPerShard)
	}
	full, err := OpenPrepared(out, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	wantDigest, err := Digest(full)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the last shard.
	last := filepath.Join(out, fmt.Sprintf("shard-%05d.bin", ns-1))
	b, _ := os.ReadFile(last)
	b[10]++
	if err := os.WriteFile(last, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, noVerify := range []bool{false, true} {
		part, err := OpenPrepared(out, OpenOptions{NoVerify: noVerify, Part: func(n int) (int, int) { return 1, 5 }})
		if err != nil {
			t.Fatalf("part [1,5) (shards 0, 1), noVerify %v: %v", noVerify, err)
		}
		if d, err := Digest(part); err != nil || d != wantDigest {
			t.Fatalf("part digest %s (%v), whole set's %s", d, err, wantDigest)
		}
		buf := make([]uint8, 27)
		want := make([]uint8, 27)
		for i := 1; i < 5; i++ {
			if err := part.Image(i, buf); err != nil {
				t.Fatal(err)
			}
			if err := full.Image(i, want); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(buf, want) || part.Label(i) != full.Label(i) {
				t.Fatalf("example %d differs from the whole set's", i)
			}
		}
		for _, i := range []int{0, 5, n - 1} {
			func() {
				defer func() {
					if _, ok := recover().(UsageError); !ok {
						t.Fatalf("Label(%d) outside the part did not panic with a UsageError", i)
					}
				}()
				part.Label(i)
			}()
		}
		part.Close()
	}
	if _, err := OpenPrepared(out, OpenOptions{Part: func(n int) (int, int) { return 5, n }}); err == nil || !strings.Contains(err.Error(), filepath.Base(last)+": SHA-256") {
		t.Fatalf("part holding the corrupt shard: %v, want its checksum error", err)
	}
}
