package featcache

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"dptrain/internal/float16"
)

const testKey = "0123456789abcdef0123456789abcdef"

type fillFunc = func(lo, hi int, feats []float32, labels []int32) error

// testSpec is the spec of most tests: N = 23 is not a multiple of
// testChunk, so the last of the 5 chunks is short.
func testSpec() Spec {
	return Spec{
		Key: testKey, N: 23, Variants: 2, Shape: []int{5, 2, 2},
		Meta: map[string]string{"model": "resnet50", "cut": "layer4"},
	}
}

const testChunk = 5

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// testValue is the deterministic feature value of example i, variant v,
// element j: mostly values not representable in float16, spread from
// subnormals to the largest finite float16 range, with some zeros.
func testValue(i, v, j int) float32 {
	r := splitmix(uint64(i)<<40 ^ uint64(v)<<20 ^ uint64(j))
	u := float64(r>>11) / (1 << 53)
	var x float64
	switch r % 16 {
	case 0:
		x = 0
	case 1:
		x = 60000 + 5000*u
	default:
		x = (1 + u) * math.Ldexp(1, int(r>>4%32)-26)
	}
	if r>>10&1 == 1 {
		x = -x
	}
	return float32(x)
}

func testLabel(i int) int32 { return int32(uint32(splitmix(uint64(i) + 12345))) }

// testFill fills examples with testValue and testLabel and checks the
// slice lengths.
func testFill(t testing.TB, spec Spec) fillFunc {
	d, nv := spec.Dim(), spec.Variants
	return func(lo, hi int, feats []float32, labels []int32) error {
		if len(feats) != (hi-lo)*nv*d || len(labels) != hi-lo {
			t.Errorf("fill(%d, %d): %d features, %d labels", lo, hi, len(feats), len(labels))
		}
		for i := lo; i < hi; i++ {
			labels[i-lo] = testLabel(i)
			for v := range nv {
				for j := range d {
					feats[((i-lo)*nv+v)*d+j] = testValue(i, v, j)
				}
			}
		}
		return nil
	}
}

// countingFill wraps fill and records the lo of each call.
func countingFill(fill fillFunc, los *[]int) fillFunc {
	return func(lo, hi int, feats []float32, labels []int32) error {
		*los = append(*los, lo)
		return fill(lo, hi, feats, labels)
	}
}

// cleanBuild builds spec without interruption in a fresh directory and
// returns the file's bytes.
func cleanBuild(t testing.TB, spec Spec, chunk int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "clean.feat")
	if err := Build(path, spec, BuildOptions{ChunkSize: chunk}, testFill(t, spec)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkContents opens path and compares every row and label with the
// float16-rounded test values.
func checkContents(t testing.TB, path string, spec Spec) {
	t.Helper()
	c, err := Open(path, spec.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := c.Spec()
	if got.Key != spec.Key || got.N != spec.N || got.Variants != spec.Variants || !slices.Equal(got.Shape, spec.Shape) || len(got.Meta) != len(spec.Meta) {
		t.Fatalf("Spec() = %+v, want %+v", got, spec)
	}
	for k, v := range spec.Meta {
		if got.Meta[k] != v {
			t.Fatalf("Meta[%q] = %q, want %q", k, got.Meta[k], v)
		}
	}
	d := spec.Dim()
	row := make([]float32, d)
	for i := range spec.N {
		if l := c.Label(i); l != testLabel(i) {
			t.Fatalf("Label(%d) = %d, want %d", i, l, testLabel(i))
		}
		for v := range spec.Variants {
			c.Row(row, i, v)
			for j, x := range row {
				want := float16.ToFloat32(float16.FromFloat32(testValue(i, v, j)))
				if math.Float32bits(x) != math.Float32bits(want) {
					t.Fatalf("Row(%d, %d)[%d] = %g, want %g", i, v, j, x, want)
				}
			}
		}
	}
}

func assertAbsent(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("%s exists (Lstat: %v), want no file", path, err)
	}
}

func assertSameFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s (%d bytes) differs from a clean build (%d bytes)", path, len(got), len(want))
	}
}
