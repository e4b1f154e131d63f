package featcache

import (
	"path/filepath"
	"testing"
)

// BenchmarkRow decodes 2048-dimensional rows (a ResNet-50 pooled feature).
func BenchmarkRow(b *testing.B) {
	spec := Spec{Key: "be", N: 256, Variants: 2, Shape: []int{2048, 1, 1}}
	path := filepath.Join(b.TempDir(), "bench.feat")
	if err := Build(path, spec, BuildOptions{}, testFill(b, spec)); err != nil {
		b.Fatal(err)
	}
	c, err := Open(path, spec.Key)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	dst := make([]float32, spec.Dim())
	b.SetBytes(int64(2 * len(dst)))
	i := 0
	for b.Loop() {
		c.Row(dst, i%spec.N, i%spec.Variants)
		i++
	}
}
