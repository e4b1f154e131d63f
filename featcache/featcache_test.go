package featcache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  Spec
		chunk int
	}{
		{"short last chunk", testSpec(), testChunk},
		{"default chunk size", testSpec(), 0},
		{"chunk of one", Spec{Key: "ab", N: 4, Variants: 1, Shape: []int{3}}, 1},
		{"N multiple of chunk", Spec{Key: "ab", N: 20, Variants: 3, Shape: []int{2, 1, 1}}, 5},
		{"chunk larger than N", Spec{Key: "ab", N: 3, Variants: 2, Shape: []int{7}}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.feat")
			var dones []int
			opt := BuildOptions{ChunkSize: tc.chunk, Progress: func(done, total int) {
				if total != tc.spec.N {
					t.Errorf("Progress total = %d, want %d", total, tc.spec.N)
				}
				dones = append(dones, done)
			}}
			if err := Build(path, tc.spec, opt, testFill(t, tc.spec)); err != nil {
				t.Fatal(err)
			}
			if len(dones) == 0 || dones[len(dones)-1] != tc.spec.N {
				t.Fatalf("Progress dones %v, want ending at %d", dones, tc.spec.N)
			}
			for k := 1; k < len(dones); k++ {
				if dones[k] <= dones[k-1] {
					t.Fatalf("Progress dones %v not increasing", dones)
				}
			}
			if tc.chunk > 0 {
				if want := (tc.spec.N + tc.chunk - 1) / tc.chunk; len(dones) != want {
					t.Fatalf("%d Progress calls, want %d (one per chunk)", len(dones), want)
				}
			}
			assertAbsent(t, PartialDir(path))
			checkContents(t, path, tc.spec)
			if !Exists(path, tc.spec.Key) {
				t.Fatal("Exists = false for a valid cache")
			}
		})
	}
}

// TestLayout checks the documented file layout byte for byte.
func TestLayout(t *testing.T) {
	spec := testSpec()
	b := cleanBuild(t, spec, testChunk)
	if string(b[:8]) != "DPFEAT01" {
		t.Fatalf("magic %q", b[:8])
	}
	hlen := int(binary.LittleEndian.Uint64(b[8:16]))
	hdr := b[48 : 48+hlen]
	if sum := sha256.Sum256(hdr); string(sum[:]) != string(b[16:48]) {
		t.Fatal("bytes 16:48 are not the SHA-256 of the header")
	}
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	off := (48 + hlen + 63) / 64 * 64
	d := spec.Dim()
	if want := off + spec.N*spec.Variants*d*2 + spec.N*4; len(b) != want {
		t.Fatalf("file size %d, want %d", len(b), want)
	}
	data := b[off:]
	if sum := sha256.Sum256(data); h["data_sha256"] != hexString(sum[:]) {
		t.Fatalf("data_sha256 %v", h["data_sha256"])
	}
	for _, k := range []string{"format_version", "key", "n", "variants", "dim", "shape", "meta"} {
		if _, ok := h[k]; !ok {
			t.Errorf("header lacks %q: %s", k, hdr)
		}
	}
	// Row 2·V+1 (example 2, variant 1), element 3; the label of example 4.
	i, v, j := 2, 1, 3
	h16 := binary.LittleEndian.Uint16(data[2*((i*spec.Variants+v)*d+j):])
	c, err := Open(writeTemp(t, b), testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	row := make([]float32, d)
	c.Row(row, i, v)
	if row[j] != f16Table()[h16] {
		t.Fatalf("element at documented offset %#x decodes to %g, Row gives %g", h16, f16Table()[h16], row[j])
	}
	if l := int32(binary.LittleEndian.Uint32(data[spec.N*spec.Variants*d*2+4*4:])); l != testLabel(4) {
		t.Fatalf("label at documented offset %d, want %d", l, testLabel(4))
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

func writeTemp(t testing.TB, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.feat")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenCorrupt(t *testing.T) {
	spec := testSpec()
	good := cleanBuild(t, spec, testChunk)
	hlen := int(binary.LittleEndian.Uint64(good[8:16]))
	off := (48 + hlen + 63) / 64 * 64
	featLen := spec.N * spec.Variants * spec.Dim() * 2
	flip := func(at int) func([]byte) []byte {
		return func(b []byte) []byte { b[at] ^= 0x20; return b }
	}
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte // nil: a directory at path
		key    string
		want   []string
		is     error
	}{
		{"magic", flip(3), testKey, []string{"bad magic"}, ErrCorrupt},
		{"header length low byte", flip(8), testKey, []string{"header"}, ErrCorrupt},
		{"header length high byte", flip(15), testKey, []string{"header length", "out of range"}, ErrCorrupt},
		{"header checksum", flip(20), testKey, []string{"header checksum mismatch"}, ErrCorrupt},
		{"header", flip(48 + 10), testKey, []string{"header checksum mismatch"}, ErrCorrupt},
		{"padding", flip(off - 1), testKey, []string{"nonzero padding"}, ErrCorrupt},
		{"first feature", flip(off), testKey, []string{"data checksum mismatch"}, ErrCorrupt},
		{"last feature", flip(off + featLen - 1), testKey, []string{"data checksum mismatch"}, ErrCorrupt},
		{"first label", flip(off + featLen), testKey, []string{"data checksum mismatch"}, ErrCorrupt},
		{"last label", flip(len(good) - 1), testKey, []string{"data checksum mismatch"}, ErrCorrupt},
		{"truncated by one", func(b []byte) []byte { return b[:len(b)-1] }, testKey, []string{"truncated", "file size"}, ErrCorrupt},
		{"truncated to data", func(b []byte) []byte { return b[:off] }, testKey, []string{"truncated"}, ErrCorrupt},
		{"truncated in header", func(b []byte) []byte { return b[:60] }, testKey, []string{"header length", "out of range"}, ErrCorrupt},
		{"truncated in prefix", func(b []byte) []byte { return b[:20] }, testKey, []string{"too short"}, ErrCorrupt},
		{"appended byte", func(b []byte) []byte { return append(b, 0) }, testKey, []string{"trailing bytes", "file size"}, ErrCorrupt},
		{"empty", func([]byte) []byte { return nil }, testKey, []string{"empty file"}, ErrCorrupt},
		{"wrong key", func(b []byte) []byte { return b }, "fedcba", []string{"stale", "built for key " + testKey, "want key fedcba"}, ErrStale},
		{"directory", nil, testKey, []string{"is a directory"}, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.feat")
			if tc.mutate == nil {
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, tc.mutate(append([]byte(nil), good...)), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Open(path, tc.key)
			if err == nil {
				c.Close()
				t.Fatal("Open succeeded")
			}
			if c != nil {
				t.Fatal("Open returned a Cache with an error")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
			for _, s := range append([]string{path}, tc.want...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if Exists(path, tc.key) && tc.name != "wrong key" && !strings.Contains(tc.want[0], "data checksum") {
				t.Error("Exists = true")
			}
		})
	}
}

func TestOpenMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.feat")
	_, err := Open(path, testKey)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a missing file: %v", err)
	}
	if Exists(path, testKey) {
		t.Fatal("Exists = true for a missing file")
	}
}

// TestOpenBadHeader rewrites the header of a valid file (with a correct
// header checksum) and checks that each field is validated.
func TestOpenBadHeader(t *testing.T) {
	spec := testSpec()
	good := cleanBuild(t, spec, testChunk)
	hlen := int(binary.LittleEndian.Uint64(good[8:16]))
	off := (48 + hlen + 63) / 64 * 64
	data := good[off:]
	edit := func(f func(h map[string]any)) []byte {
		var h map[string]any
		if err := json.Unmarshal(good[48:48+hlen], &h); err != nil {
			t.Fatal(err)
		}
		f(h)
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		hdr  []byte
		want string
		is   error
	}{
		{"version 2", edit(func(h map[string]any) { h["format_version"] = 2 }), "format version 2", ErrUnsupportedVersion},
		{"no version", edit(func(h map[string]any) { delete(h, "format_version") }), "lacks format_version", ErrCorrupt},
		{"not JSON", []byte("{not json"), "not valid JSON", ErrCorrupt},
		{"unknown field", edit(func(h map[string]any) { h["extra"] = 1 }), "unknown field", ErrCorrupt},
		{"dim", edit(func(h map[string]any) { h["dim"] = 21 }), "dim 21", ErrCorrupt},
		{"N zero", edit(func(h map[string]any) { h["n"] = 0 }), "N = 0", ErrCorrupt},
		{"N larger", edit(func(h map[string]any) { h["n"] = 24 }), "truncated", ErrCorrupt},
		{"variants", edit(func(h map[string]any) { h["variants"] = -1 }), "Variants = -1", ErrCorrupt},
		{"empty shape", edit(func(h map[string]any) { h["shape"] = []int{} }), "dimensions", ErrCorrupt},
		{"huge shape", edit(func(h map[string]any) { h["shape"] = []int64{1 << 40, 1 << 40}; h["dim"] = 1 }), "too large", ErrCorrupt},
		{"huge N", edit(func(h map[string]any) { h["n"] = int64(1) << 61 }), "too large", ErrCorrupt},
		{"fractional N", edit(func(h map[string]any) { h["n"] = 2.5 }), "bad header", ErrCorrupt},
		{"bad key", edit(func(h map[string]any) { h["key"] = "XYZ" }), "not lowercase hexadecimal", ErrCorrupt},
		{"bad data_sha256", edit(func(h map[string]any) { h["data_sha256"] = "abc" }), "data_sha256", ErrCorrupt},
		{"wrong data_sha256", edit(func(h map[string]any) { h["data_sha256"] = strings.Repeat("0", 64) }), "data checksum mismatch", ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := append(encodePrefix(fileMagic, tc.hdr), data...)
			path := writeTemp(t, b)
			_, err := Open(path, testKey)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: %v, want an error wrapping %v naming %s and saying %q", err, tc.is, path, tc.want)
			}
		})
	}
}

func TestExists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.feat")
	good := cleanBuild(t, testSpec(), testChunk)
	for _, tc := range []struct {
		name  string
		bytes []byte
		key   string
		want  bool
	}{
		{"valid", good, testKey, true},
		{"wrong key", good, "00", false},
		{"bad header", func() []byte { b := append([]byte(nil), good...); b[50] ^= 1; return b }(), testKey, false},
		{"truncated", good[:len(good)-4], testKey, false},
		// Exists does not hash the data: documented.
		{"bad data", func() []byte { b := append([]byte(nil), good...); b[len(b)-1] ^= 1; return b }(), testKey, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, tc.bytes, 0o644); err != nil {
				t.Fatal(err)
			}
			if got := Exists(path, tc.key); got != tc.want {
				t.Fatalf("Exists = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBuildInvalidSpec(t *testing.T) {
	fill := func(lo, hi int, feats []float32, labels []int32) error {
		t.Error("fill called for an invalid spec")
		return nil
	}
	for _, tc := range []struct {
		name string
		spec Spec
		opt  BuildOptions
		want string
	}{
		{"empty key", Spec{N: 1, Variants: 1, Shape: []int{1}}, BuildOptions{}, "key has 0 characters"},
		{"uppercase key", Spec{Key: "ABCD", N: 1, Variants: 1, Shape: []int{1}}, BuildOptions{}, "not lowercase hexadecimal"},
		{"long key", Spec{Key: strings.Repeat("a", 257), N: 1, Variants: 1, Shape: []int{1}}, BuildOptions{}, "key has 257 characters"},
		{"zero N", Spec{Key: "ab", Variants: 1, Shape: []int{1}}, BuildOptions{}, "N = 0"},
		{"zero variants", Spec{Key: "ab", N: 1, Shape: []int{1}}, BuildOptions{}, "Variants = 0"},
		{"no shape", Spec{Key: "ab", N: 1, Variants: 1}, BuildOptions{}, "dimensions"},
		{"zero dim", Spec{Key: "ab", N: 1, Variants: 1, Shape: []int{3, 0}}, BuildOptions{}, "dimension < 1"},
		{"overflow", Spec{Key: "ab", N: 1 << 40, Variants: 1 << 20, Shape: []int{1 << 10}}, BuildOptions{}, "too large"},
		{"bad meta", Spec{Key: "ab", N: 1, Variants: 1, Shape: []int{1}, Meta: map[string]string{"k": "\xff"}}, BuildOptions{}, "UTF-8"},
		{"huge meta", Spec{Key: "ab", N: 1, Variants: 1, Shape: []int{1}, Meta: map[string]string{"k": strings.Repeat("x", maxHeaderLen)}}, BuildOptions{}, "Meta too large"},
		{"negative chunk", Spec{Key: "ab", N: 1, Variants: 1, Shape: []int{1}}, BuildOptions{ChunkSize: -1}, "ChunkSize = -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.feat")
			err := Build(path, tc.spec, tc.opt, fill)
			if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Build: %v, want ErrInvalidSpec naming %s and saying %q", err, path, tc.want)
			}
			assertAbsent(t, path)
			assertAbsent(t, PartialDir(path))
		})
	}
}

func TestBuildDirectoryAtPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.feat")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	err := Build(path, testSpec(), BuildOptions{}, testFill(t, testSpec()))
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("Build over a directory: %v", err)
	}
}

func TestBuildMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "c.feat")
	if err := Build(path, testSpec(), BuildOptions{}, testFill(t, testSpec())); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Build in a missing directory: %v", err)
	}
}

// TestBuildReplaces rebuilds a path for another key: the new file replaces
// the old one, and a Cache open on the old one stays readable.
func TestBuildReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.feat")
	spec := testSpec()
	if err := Build(path, spec, BuildOptions{ChunkSize: testChunk}, testFill(t, spec)); err != nil {
		t.Fatal(err)
	}
	old, err := Open(path, spec.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	spec2 := spec
	spec2.Key = "beef"
	if err := Build(path, spec2, BuildOptions{ChunkSize: testChunk}, testFill(t, spec2)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, spec.Key); !errors.Is(err, ErrStale) {
		t.Fatalf("Open with the old key: %v, want ErrStale", err)
	}
	checkContents(t, path, spec2)
	if l := old.Label(3); l != testLabel(3) {
		t.Fatalf("old Cache Label(3) = %d after replacement", l)
	}
}

func TestMisusePanics(t *testing.T) {
	spec := testSpec()
	path := writeTemp(t, cleanBuild(t, spec, testChunk))
	open := func() *Cache {
		c, err := Open(path, spec.Key)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	d := spec.Dim()
	for _, tc := range []struct {
		name string
		f    func(c *Cache)
		want string
	}{
		{"short dst", func(c *Cache) { c.Row(make([]float32, d-1), 0, 0) }, "len(dst) = 19, want D = 20"},
		{"long dst", func(c *Cache) { c.Row(make([]float32, d+1), 0, 0) }, "len(dst) = 21"},
		{"example", func(c *Cache) { c.Row(make([]float32, d), spec.N, 0) }, "example 23 out of range"},
		{"negative example", func(c *Cache) { c.Row(make([]float32, d), -1, 0) }, "example -1 out of range"},
		{"variant", func(c *Cache) { c.Row(make([]float32, d), 0, 2) }, "variant 2 out of range"},
		{"label", func(c *Cache) { c.Label(spec.N) }, "Label: example 23 out of range"},
		{"closed", func(c *Cache) { c.Close(); c.Row(make([]float32, d), 0, 0) }, "Row on a closed Cache"},
		{"closed label", func(c *Cache) { c.Close(); c.Label(0) }, "Label on a closed Cache"},
		{"nil fill", func(*Cache) { _ = Build(path+"2", spec, BuildOptions{}, nil) }, "nil fill"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := open()
			defer func() {
				r := recover()
				s, _ := r.(string)
				if !strings.Contains(s, tc.want) || !strings.HasPrefix(s, "featcache: ") {
					t.Fatalf("panic %v, want one saying %q", r, tc.want)
				}
			}()
			tc.f(c)
		})
	}
}

func TestCloseTwice(t *testing.T) {
	c, err := Open(writeTemp(t, cleanBuild(t, testSpec(), testChunk)), testKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
