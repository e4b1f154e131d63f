package data

import (
	"slices"
	"strings"
	"testing"
)

// TestVariantMatchesApply: for transforms with fixed variants, Apply's
// output is ApplyVariant's for the variant Variant reports, for every
// (step, index, k) tried; both variants occur.
func TestVariantMatchesApply(t *testing.T) {
	ds := synthDataset(6, 3, 9, 11, 2)
	for _, tc := range []struct {
		name string
		tr   Transform
		n    int
	}{
		{"flip", Transform{Flip: true, Mean: CIFAR10Mean, Std: CIFAR10Std}, 2},
		{"flip-center-crop", Transform{Crop: CropCenter, Height: 7, Width: 6, Flip: true}, 2},
		{"flip-center-resized-up", Transform{Crop: CropCenterResized, Height: 20, Width: 20, Flip: true, Mean: CaffeMean, Std: CaffeStd}, 2},
		{"no-flip", Transform{Crop: CropCenterResized, Height: 5, Width: 5}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.tr.FixedVariants(); got != tc.n {
				t.Fatalf("FixedVariants = %d, want %d", got, tc.n)
			}
			c, h, w := ds.Shape()
			oc, oh, ow := tc.tr.OutShape(c, h, w)
			img := make([]uint8, c*h*w)
			got, want := make([]float32, oc*oh*ow), make([]float32, oc*oh*ow)
			key := KeyFromSeed(3)
			seen := map[int]bool{}
			for i := 0; i < ds.Len(); i++ {
				if err := ds.Image(i, img); err != nil {
					t.Fatal(err)
				}
				for step := int64(0); step < 4; step++ {
					for k := 0; k < 3; k++ {
						if err := tc.tr.Apply(want, img, c, h, w, key, step, i, k); err != nil {
							t.Fatal(err)
						}
						v := tc.tr.Variant(key, step, i, k)
						seen[v] = true
						if err := tc.tr.ApplyVariant(got, img, c, h, w, v); err != nil {
							t.Fatal(err)
						}
						if !slices.Equal(got, want) {
							t.Fatalf("example %d step %d k %d: ApplyVariant(%d) differs from Apply", i, step, k, v)
						}
					}
				}
			}
			if len(seen) != tc.n {
				t.Errorf("variants seen %v, want %d of them", seen, tc.n)
			}
		})
	}
	for _, tr := range []Transform{{Crop: CropRandom, Height: 8, Width: 8, Pad: 2}, {Crop: CropRandomResized, Height: 8, Width: 8}} {
		if tr.FixedVariants() != 0 {
			t.Errorf("%s: FixedVariants %d, want 0", tr.Crop, tr.FixedVariants())
		}
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(strings.ToLower(recoverString(r)), "random crops") {
					t.Errorf("%s: Variant did not panic naming the random crops: %v", tr.Crop, r)
				}
			}()
			tr.Variant(Key{}, 0, 0, 0)
		}()
	}
}

func recoverString(r any) string {
	if e, ok := r.(error); ok {
		return e.Error()
	}
	s, _ := r.(string)
	return s
}

// rowsOf is a RowSource over the transformed variants of a dataset: its
// batches must equal the image loader's.
type rowsOf struct {
	ds  *memDataset
	tr  Transform
	key Key
}

func (r rowsOf) Len() int        { return r.ds.Len() }
func (r rowsOf) Label(i int) int { return r.ds.Label(i) }
func (r rowsOf) Shape() (int, int, int) {
	c, h, w := r.ds.Shape()
	return r.tr.OutShape(c, h, w)
}
func (r rowsOf) Row(dst []float32, i, v int) {
	c, h, w := r.ds.Shape()
	img := make([]uint8, c*h*w)
	if err := r.ds.Image(i, img); err != nil {
		panic(err)
	}
	if err := r.tr.ApplyVariant(dst, img, c, h, w, v); err != nil {
		panic(err)
	}
}
func (r rowsOf) Variant(step int64, i, k int) int { return r.tr.Variant(r.key, step, i, k) }

// TestRowLoaderMatchesLoader: a row loader over precomputed variants
// streams the batches the image loader streams (same sampler, K,
// physical splitting).
func TestRowLoaderMatchesLoader(t *testing.T) {
	ds := synthDataset(40, 3, 8, 8, 4)
	tr := Transform{Flip: true, Mean: CIFAR10Mean, Std: CIFAR10Std}
	key := KeyFromSeed(9)
	opt := LoaderOptions{K: 2, Physical: 5, Key: key}
	img, err := NewLoader(ds, tr, opt)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := NewRowLoader(rowsOf{ds, tr, key}, opt)
	if err != nil {
		t.Fatal(err)
	}
	s := PoissonSampler{N: ds.Len(), Rate: 0.3, Key: key}
	a, b := img.Stream(s, 3), rows.Stream(s, 3)
	defer a.Close()
	defer b.Close()
	for i := 0; i < 12; i++ {
		x, err := a.Next()
		if err != nil {
			t.Fatal(err)
		}
		y, err := b.Next()
		if err != nil {
			t.Fatal(err)
		}
		if x.Step != y.Step || x.Part != y.Part || x.Parts != y.Parts || x.N != y.N || x.K != y.K ||
			!slices.Equal(x.Indices[:x.N], y.Indices[:y.N]) || !slices.Equal(x.Labels[:x.N*x.K], y.Labels[:y.N*y.K]) ||
			!slices.Equal(x.X[:x.N*x.K*x.C*x.H*x.W], y.X[:y.N*y.K*y.C*y.H*y.W]) {
			t.Fatalf("batch %d differs: step %d/%d part %d/%d n %d/%d", i, x.Step, y.Step, x.Part, y.Part, x.N, y.N)
		}
		a.Release(x)
		b.Release(y)
	}
}
