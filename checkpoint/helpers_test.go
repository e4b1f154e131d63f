package checkpoint

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// makeTensor returns a tensor of the given shape filled from rng.
func makeTensor(rng *rand.Rand, shape ...int) Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	t := Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, n)}
	for i := range t.Data {
		t.Data[i] = float32(rng.NormFloat64())
	}
	return t
}

// makeCheckpoint builds a deterministic checkpoint for step, about scale×16 KB
// of tensors, with special float values to test bit-exactness.
func makeCheckpoint(step int64, scale int) *Checkpoint {
	rng := rand.New(rand.NewPCG(uint64(step), 0x5eed))
	w := map[string]Tensor{
		"conv1.weight": makeTensor(rng, 16, 1, 8, 8*scale),
		"conv1.bias":   makeTensor(rng, 16),
		"fc.weight":    makeTensor(rng, 10, 32*scale),
		"fc.bias":      makeTensor(rng, 10),
		"gn.scale":     {Shape: []int{}, Data: []float32{float32(step)}},
	}
	w["conv1.bias"].Data[0] = float32(math.Inf(-1))
	w["conv1.bias"].Data[1] = float32(math.Copysign(0, -1))
	w["conv1.bias"].Data[2] = math.Float32frombits(0x7fc00123) // a NaN payload
	w["conv1.bias"].Data[3] = math.Float32frombits(1)          // smallest subnormal
	mom := map[string]Tensor{}
	ema := map[string]Tensor{}
	for _, k := range sortedKeys(w) {
		v := w[k]
		mom[k+".momentum"] = makeTensor(rng, v.Shape...)
		ema[k] = makeTensor(rng, v.Shape...)
	}
	mom["empty"] = Tensor{Shape: []int{0, 3}, Data: []float32{}}
	return &Checkpoint{
		Step:    step,
		Tensors: map[string]map[string]Tensor{"weights": w, "optimizer": mom, "ema": ema},
		Blobs: map[string][]byte{
			"state.json":  []byte(`{"rng":[1,2,3],"sampler":{"epoch":2}}`),
			"ledger.json": []byte(`{"events":[{"q":0.01,"sigma":1.1,"count":` + strconv.FormatInt(step, 10) + `}]}`),
			"config.yaml": []byte("model: cnn-mnist\n"),
			"empty.bin":   {},
		},
		Meta:    map[string]string{"model": "cnn-mnist", "run": "test"},
		Created: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC),
	}
}

// tensorsEqual compares bit for bit (NaN payloads and signed zeros included).
func tensorsEqual(a, b map[string]Tensor) (string, bool) {
	if len(a) != len(b) {
		return "count", false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok {
			return k + " missing", false
		}
		if len(x.Shape) != len(y.Shape) || len(x.Data) != len(y.Data) {
			return k + " shape", false
		}
		for i := range x.Shape {
			if x.Shape[i] != y.Shape[i] {
				return k + " shape", false
			}
		}
		for i := range x.Data {
			if math.Float32bits(x.Data[i]) != math.Float32bits(y.Data[i]) {
				return k + " data", false
			}
		}
	}
	return "", true
}

// checkSame fails t unless got holds the same contents as want.
func checkSame(t testing.TB, got, want *Checkpoint) {
	t.Helper()
	if got.Step != want.Step {
		t.Fatalf("step %d, want %d", got.Step, want.Step)
	}
	if !got.Created.Equal(want.Created) {
		t.Errorf("created %v, want %v", got.Created, want.Created)
	}
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d groups, want %d", len(got.Tensors), len(want.Tensors))
	}
	for g, ts := range want.Tensors {
		if what, ok := tensorsEqual(got.Tensors[g], ts); !ok {
			t.Fatalf("group %q differs: %s", g, what)
		}
	}
	if len(got.Blobs) != len(want.Blobs) {
		t.Fatalf("%d blobs, want %d", len(got.Blobs), len(want.Blobs))
	}
	for k, v := range want.Blobs {
		if string(got.Blobs[k]) != string(v) {
			t.Fatalf("blob %q = %q, want %q", k, got.Blobs[k], v)
		}
	}
	if len(got.Meta) != len(want.Meta) {
		t.Fatalf("meta %v, want %v", got.Meta, want.Meta)
	}
	for k, v := range want.Meta {
		if got.Meta[k] != v {
			t.Fatalf("meta %v, want %v", got.Meta, want.Meta)
		}
	}
}

// mustPanicUsage fails t unless f panics with a *UsageError.
func mustPanicUsage(t *testing.T, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if _, ok := r.(*UsageError); !ok {
			t.Fatalf("panic value %v (%T), want *UsageError", r, r)
		}
	}()
	f()
}
