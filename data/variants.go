package data

import (
	mrand "math/rand/v2"
)

// FixedVariants reports how many distinct outputs the transform gives one
// image over all (key, step, index, k): 1 when it draws nothing (no flip,
// no random crop), 2 when it draws only the horizontal flip, and 0 when it
// draws crops (unboundedly many). A cache of transformed (or further
// processed) images can stand in for the transform exactly when it is > 0.
func (t Transform) FixedVariants() int {
	switch {
	case t.Crop == CropRandom || t.Crop == CropRandomResized:
		return 0
	case t.Flip:
		return 2
	}
	return 1
}

// Variant returns the variant (0: as is, 1: flipped) that Apply gives
// augmentation k of example index at step under key: the same draw from
// the same generator. It panics for a transform with random crops
// (FixedVariants 0).
func (t Transform) Variant(key Key, step int64, index, k int) int {
	if t.FixedVariants() == 0 {
		panic(usagef("Transform.Variant: the transform draws random crops (%s): it has no fixed variants", t.Crop))
	}
	if !t.Flip {
		return 0
	}
	var src mrand.ChaCha8
	seedStream(&src, &key, streamAugment, step, index, k)
	if mrand.New(&src).IntN(2) == 1 {
		return 1
	}
	return 0
}

// ApplyVariant is Apply with the flip decided by v (0: as is, 1: flipped)
// instead of drawn: Apply's output is ApplyVariant's for
// v = Variant(key, step, index, k). It panics for a transform with random
// crops or a v out of range.
func (t Transform) ApplyVariant(dst []float32, src []uint8, c, h, w, v int) error {
	n := t.FixedVariants()
	if n == 0 || v < 0 || v >= n {
		panic(usagef("Transform.ApplyVariant: variant %d of a transform with %d fixed variants", v, n))
	}
	fixed := t
	fixed.Flip = false
	if err := fixed.Apply(dst, src, c, h, w, Key{}, 0, 0, 0); err != nil {
		return err
	}
	if v == 1 {
		oc, oh, ow := t.OutShape(c, h, w)
		for r := 0; r < oc*oh; r++ {
			row := dst[r*ow : (r+1)*ow]
			for i, j := 0, ow-1; i < j; i, j = i+1, j-1 {
				row[i], row[j] = row[j], row[i]
			}
		}
	}
	return nil
}

// RowSource provides precomputed rows (e.g. the features a frozen network
// prefix computes from each variant of each image) in place of a Dataset
// and its Transform: NewRowLoader batches them as NewLoader batches
// transformed images.
type RowSource interface {
	// Len is the number of examples.
	Len() int
	// Label returns example i's label.
	Label(i int) int
	// Shape is the shape of one row.
	Shape() (c, h, w int)
	// Row writes variant v of example i into dst (len c·h·w).
	Row(dst []float32, i, v int)
	// Variant returns the variant that augmentation k of example index
	// takes at step.
	Variant(step int64, index, k int) int
}
