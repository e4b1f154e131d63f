package featcache_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"dptrain/featcache"
)

func Example() {
	dir, err := os.MkdirTemp("", "featcache")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "resnet-layer4.feat")

	// The key identifies the frozen weights, the data, the transform and
	// the cut; the caller computes it (e.g. a SHA-256 of all of them).
	spec := featcache.Spec{
		Key: "c0ffee", N: 5, Variants: 2, Shape: []int{3, 1, 1},
		Meta: map[string]string{"cut": "layer4"},
	}
	if !featcache.Exists(path, spec.Key) {
		// fill runs the frozen prefix on examples [lo, hi).
		fill := func(lo, hi int, feats []float32, labels []int32) error {
			d := spec.Dim()
			for i := lo; i < hi; i++ {
				labels[i-lo] = int32(i % 2)
				for v := range spec.Variants {
					row := feats[((i-lo)*spec.Variants+v)*d:][:d]
					for j := range row {
						row[j] = float32(i) + float32(v)/2 + float32(j)/3
					}
				}
			}
			return nil
		}
		opt := featcache.BuildOptions{ChunkSize: 2, Progress: func(done, total int) {
			fmt.Printf("built %d/%d\n", done, total)
		}}
		if err := featcache.Build(path, spec, opt, fill); err != nil {
			log.Fatal(err)
		}
	}

	c, err := featcache.Open(path, spec.Key)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	row := make([]float32, c.Spec().Dim())
	c.Row(row, 4, 1)
	fmt.Println("example 4 variant 1:", row, "label", c.Label(4))

	// A cache built for other weights (another key) is refused.
	_, err = featcache.Open(path, "beef")
	fmt.Println("stale:", errors.Is(err, featcache.ErrStale))
	// Output:
	// built 2/5
	// built 4/5
	// built 5/5
	// example 4 variant 1: [4.5 4.8320312 5.1679688] label 0
	// stale: true
}
