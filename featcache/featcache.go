package featcache

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// FormatVersion is the format version this package writes and reads.
const FormatVersion = 1

const (
	fileMagic  = "DPFEAT01" // a complete cache file
	chunkMagic = "DPFCHK01" // one finished chunk under path+".partial/"

	prefixLen    = 48       // magic (8) + header length (8) + header SHA-256 (32)
	dataAlign    = 64       // the data section starts at a multiple of this
	maxHeaderLen = 16 << 20 // bytes of header JSON
	maxKeyLen    = 256
	maxShapeLen  = 32

	// maxFloat16 is the largest finite binary16 value.
	maxFloat16 = 65504
)

// Spec describes the contents of a cache.
type Spec struct {
	// Key identifies everything the features depend on (weights, data,
	// transform, cut point). The caller computes it; it must be 1 to 256
	// lowercase hexadecimal digits. Open refuses a cache built for another
	// key (ErrStale).
	Key string
	// N is the number of examples (≥ 1), Variants the number of
	// augmentation variants of each (≥ 1).
	N, Variants int
	// Shape is the shape of one feature vector, e.g. [2048 1 1] or
	// [C H W]; every dimension is ≥ 1. D = Dim() is its product.
	Shape []int
	// Meta is free-form and stored verbatim (keys and values must be
	// valid UTF-8).
	Meta map[string]string
}

// Dim returns D, the number of float16 values of one feature vector: the
// product of Shape (1 for an empty Shape, which is not a valid Spec).
func (s Spec) Dim() int {
	d := 1
	for _, x := range s.Shape {
		d *= x
	}
	return d
}

// Sentinel errors. Errors returned by this package wrap one of them (or an
// error of package os) and name the file concerned and what was wrong.
var (
	// ErrCorrupt: the file is not a valid cache (bad magic, header, size,
	// padding or checksum), or not a regular file at all.
	ErrCorrupt = errors.New("corrupt feature cache")
	// ErrStale: the cache is valid but was built for another key.
	ErrStale = errors.New("stale feature cache")
	// ErrUnsupportedVersion: the header states a format version other than
	// FormatVersion.
	ErrUnsupportedVersion = errors.New("unsupported feature cache format version")
	// ErrInvalidSpec: Build was given an invalid Spec or BuildOptions.
	ErrInvalidSpec = errors.New("invalid feature cache spec")
	// ErrOverflow: fill produced a value that float16 cannot represent
	// (|x| > 65504, ±Inf included). Returned inside a *ValueError.
	ErrOverflow = errors.New("value overflows float16")
	// ErrNaN: fill produced a NaN. Returned inside a *ValueError.
	ErrNaN = errors.New("NaN feature value")
)

// ValueError reports a feature value that Build refused to store. It
// wraps ErrOverflow or ErrNaN.
type ValueError struct {
	Example int // example index in [0, N)
	Variant int // variant index in [0, Variants)
	Element int // index within the feature vector, in [0, D)
	Value   float32
	Err     error // ErrOverflow or ErrNaN
}

func (e *ValueError) Error() string {
	what := "overflows float16 (|x| > 65504)"
	if errors.Is(e.Err, ErrNaN) {
		what = "is NaN"
	}
	return fmt.Sprintf("example %d variant %d element %d: value %g %s", e.Example, e.Variant, e.Element, e.Value, what)
}

// Unwrap returns ErrOverflow or ErrNaN.
func (e *ValueError) Unwrap() error { return e.Err }

// checkSpec validates s and returns D. The error message names the field.
func checkSpec(s Spec) (dim int, err error) {
	if err := checkKey(s.Key); err != nil {
		return 0, err
	}
	if s.N < 1 {
		return 0, fmt.Errorf("N = %d, want ≥ 1", s.N)
	}
	if s.Variants < 1 {
		return 0, fmt.Errorf("Variants = %d, want ≥ 1", s.Variants)
	}
	if len(s.Shape) == 0 || len(s.Shape) > maxShapeLen {
		return 0, fmt.Errorf("shape %v has %d dimensions, want 1 to %d", s.Shape, len(s.Shape), maxShapeLen)
	}
	dim = 1
	for _, x := range s.Shape {
		if x < 1 {
			return 0, fmt.Errorf("shape %v has a dimension < 1", s.Shape)
		}
		var ok bool
		if dim, ok = mul(dim, x); !ok {
			return 0, fmt.Errorf("shape %v is too large", s.Shape)
		}
	}
	if _, _, ok := dataSizes(s.N, s.Variants, dim); !ok {
		return 0, fmt.Errorf("N·Variants·D = %d·%d·%d is too large", s.N, s.Variants, dim)
	}
	for k, v := range s.Meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return 0, fmt.Errorf("meta entry %q: not valid UTF-8", k)
		}
	}
	return dim, nil
}

func checkKey(key string) error {
	if len(key) == 0 || len(key) > maxKeyLen {
		return fmt.Errorf("key has %d characters, want 1 to %d", len(key), maxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("key %q is not lowercase hexadecimal", key)
		}
	}
	return nil
}

// dataSizes returns the byte sizes of the feature and label sections, and
// false if the file could not be addressed (the total, with a maximal
// header, must fit an int).
func dataSizes(n, variants, dim int) (feat, label int, ok bool) {
	rows, ok1 := mul(n, variants)
	elems, ok2 := mul(rows, dim)
	feat, ok3 := mul(elems, 2)
	label, ok4 := mul(n, 4)
	if !ok1 || !ok2 || !ok3 || !ok4 || feat > math.MaxInt-label-(prefixLen+maxHeaderLen+dataAlign) {
		return 0, 0, false
	}
	return feat, label, true
}

func mul(a, b int) (int, bool) {
	if a < 0 || b < 0 || (a != 0 && b > math.MaxInt/a) {
		return 0, false
	}
	return a * b, true
}
