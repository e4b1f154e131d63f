package featcache

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBuildValueErrors(t *testing.T) {
	spec := testSpec()
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		name    string
		x       float32
		is      error // nil: accepted
		decoded float32
	}{
		{"max finite", 65504, nil, 65504},
		{"min finite", -65504, nil, -65504},
		{"just above max", 65504.004, ErrOverflow, 0},
		{"rounds to max but above it", 65519, ErrOverflow, 0},
		{"rounds to Inf", 65520, ErrOverflow, 0},
		{"large negative", -1e6, ErrOverflow, 0},
		{"+Inf", inf, ErrOverflow, 0},
		{"-Inf", -inf, ErrOverflow, 0},
		{"NaN", float32(math.NaN()), ErrNaN, 0},
		{"tiny underflows to zero", 1e-10, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const ex, v, j = 17, 1, 13
			path := filepath.Join(t.TempDir(), "c.feat")
			base := testFill(t, spec)
			fill := func(lo, hi int, feats []float32, labels []int32) error {
				if err := base(lo, hi, feats, labels); err != nil {
					return err
				}
				if lo <= ex && ex < hi {
					feats[((ex-lo)*spec.Variants+v)*spec.Dim()+j] = tc.x
				}
				return nil
			}
			err := Build(path, spec, BuildOptions{ChunkSize: testChunk}, fill)
			if tc.is == nil {
				if err != nil {
					t.Fatal(err)
				}
				c, err := Open(path, testKey)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				row := make([]float32, spec.Dim())
				c.Row(row, ex, v)
				if row[j] != tc.decoded {
					t.Fatalf("decoded %g, want %g", row[j], tc.decoded)
				}
				return
			}
			var ve *ValueError
			if !errors.Is(err, tc.is) || !errors.As(err, &ve) {
				t.Fatalf("Build: %v, want a *ValueError wrapping %v", err, tc.is)
			}
			if ve.Example != ex || ve.Variant != v || ve.Element != j {
				t.Fatalf("ValueError at example %d variant %d element %d, want %d %d %d", ve.Example, ve.Variant, ve.Element, ex, v, j)
			}
			for _, s := range []string{path, fmt.Sprintf("example %d variant %d element %d", ex, v, j)} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			assertAbsent(t, path)
			// The chunks before the bad one are kept for a resumed build.
			for c := range ex / testChunk {
				if _, err := os.Stat(filepath.Join(PartialDir(path), fmt.Sprintf("chunk-%08d", c))); err != nil {
					t.Errorf("finished chunk %d not kept: %v", c, err)
				}
			}
		})
	}
}

var errBoom = errors.New("boom")

// failingFill fails when asked for examples from failChunk·testChunk on.
func failingFill(fill fillFunc, failChunk int) fillFunc {
	return func(lo, hi int, feats []float32, labels []int32) error {
		if lo >= failChunk*testChunk {
			return errBoom
		}
		return fill(lo, hi, feats, labels)
	}
}

func TestBuildFillError(t *testing.T) {
	spec := testSpec()
	path := filepath.Join(t.TempDir(), "c.feat")
	err := Build(path, spec, BuildOptions{ChunkSize: testChunk}, failingFill(testFill(t, spec), 2))
	if !errors.Is(err, errBoom) {
		t.Fatalf("Build: %v, want it to wrap the fill error", err)
	}
	for _, s := range []string{path, "fill examples [10, 15)", "boom"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	assertAbsent(t, path)
	entries, err := os.ReadDir(PartialDir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"chunk-00000000", "chunk-00000001", "spec.json"}; !slices.Equal(names, want) {
		t.Fatalf("partial directory holds %v, want %v", names, want)
	}
}

func TestResume(t *testing.T) {
	spec := testSpec()
	clean := cleanBuild(t, spec, testChunk)
	const nchunks = 5
	for _, failChunk := range []int{0, 1, 3, nchunks - 1} {
		t.Run(fmt.Sprintf("fail at chunk %d", failChunk), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.feat")
			var first []int
			opt := BuildOptions{ChunkSize: testChunk}
			if err := Build(path, spec, opt, countingFill(failingFill(testFill(t, spec), failChunk), &first)); !errors.Is(err, errBoom) {
				t.Fatalf("first Build: %v", err)
			}
			var los, dones []int
			opt.Progress = func(done, total int) { dones = append(dones, done) }
			if err := Build(path, spec, opt, countingFill(testFill(t, spec), &los)); err != nil {
				t.Fatal(err)
			}
			var want []int
			for c := failChunk; c < nchunks; c++ {
				want = append(want, c*testChunk)
			}
			if !slices.Equal(los, want) {
				t.Fatalf("resumed Build called fill for lo = %v, want %v", los, want)
			}
			if want := []int{5, 10, 15, 20, 23}; !slices.Equal(dones, want) {
				t.Fatalf("Progress dones %v, want %v", dones, want)
			}
			assertSameFile(t, path, clean)
			assertAbsent(t, PartialDir(path))
		})
	}
}

// TestResumeForeignPartial leaves the chunks of a build of another spec
// and checks that they are discarded, not reused.
func TestResumeForeignPartial(t *testing.T) {
	spec := testSpec()
	clean := cleanBuild(t, spec, testChunk)
	for _, tc := range []struct {
		name  string
		edit  func(*Spec)
		chunk int
	}{
		{"other key", func(s *Spec) { s.Key = "ffff" }, testChunk},
		{"other chunk size", func(s *Spec) {}, testChunk + 1},
		{"other meta", func(s *Spec) { s.Meta = map[string]string{"model": "vit"} }, testChunk},
		{"other N", func(s *Spec) { s.N = 30 }, testChunk},
		{"other shape", func(s *Spec) { s.Shape = []int{20} }, testChunk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.feat")
			other := testSpec()
			tc.edit(&other)
			if err := Build(path, other, BuildOptions{ChunkSize: tc.chunk}, failingFill(testFill(t, other), 3)); !errors.Is(err, errBoom) {
				t.Fatalf("foreign Build: %v", err)
			}
			var los []int
			if err := Build(path, spec, BuildOptions{ChunkSize: testChunk}, countingFill(testFill(t, spec), &los)); err != nil {
				t.Fatal(err)
			}
			if want := []int{0, 5, 10, 15, 20}; !slices.Equal(los, want) {
				t.Fatalf("fill called for lo = %v, want every chunk %v", los, want)
			}
			assertSameFile(t, path, clean)
		})
	}
}

// TestResumeDamaged damages the partial directory in the ways a crash or
// a disk can and checks that only the damaged chunks are recomputed.
func TestResumeDamaged(t *testing.T) {
	spec := testSpec()
	clean := cleanBuild(t, spec, testChunk)
	chunk := func(path string, c int) string {
		return filepath.Join(PartialDir(path), fmt.Sprintf("chunk-%08d", c))
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   []int // lo of the fill calls of the resumed build
	}{
		{"intact", func(*testing.T, string) {}, []int{15, 20}},
		{"flipped data byte", func(t *testing.T, path string) {
			b, err := os.ReadFile(chunk(path, 1))
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-1] ^= 1
			if err := os.WriteFile(chunk(path, 1), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []int{5, 15, 20}},
		{"truncated chunk", func(t *testing.T, path string) {
			if err := os.Truncate(chunk(path, 0), 30); err != nil {
				t.Fatal(err)
			}
		}, []int{0, 15, 20}},
		{"chunk of another build", func(t *testing.T, path string) {
			if err := os.Rename(chunk(path, 2), chunk(path, 3)); err != nil {
				t.Fatal(err)
			}
		}, []int{10, 15, 20}},
		{"leftover temporary files", func(t *testing.T, path string) {
			for _, name := range []string{
				filepath.Join(PartialDir(path), ".chunk-00000003.tmp-123"),
				filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-456"),
			} {
				if err := os.WriteFile(name, []byte("junk"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, []int{15, 20}},
		{"no spec.json", func(t *testing.T, path string) {
			if err := os.Remove(filepath.Join(PartialDir(path), "spec.json")); err != nil {
				t.Fatal(err)
			}
		}, []int{0, 5, 10, 15, 20}},
		{"partial is a file", func(t *testing.T, path string) {
			if err := os.RemoveAll(PartialDir(path)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(PartialDir(path), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []int{0, 5, 10, 15, 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "c.feat")
			if err := Build(path, spec, BuildOptions{ChunkSize: testChunk}, failingFill(testFill(t, spec), 3)); !errors.Is(err, errBoom) {
				t.Fatalf("first Build: %v", err)
			}
			tc.damage(t, path)
			var los []int
			if err := Build(path, spec, BuildOptions{ChunkSize: testChunk}, countingFill(testFill(t, spec), &los)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(los, tc.want) {
				t.Fatalf("fill called for lo = %v, want %v", los, tc.want)
			}
			assertSameFile(t, path, clean)
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Fatalf("directory holds %d entries after Build, want only %s", len(entries), path)
			}
		})
	}
}
