package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"dptrain/tensor"
)

// arenaModels are the models whose backward passes TestArenaMatchesOwnBuffers
// runs: every container shape (plain sequences with Flatten and Linear,
// basic blocks with identity and projection shortcuts, pre-activation
// blocks with the shortcut on the pre-activation and on the input,
// MaxPool, multiplicity K = 2).
var arenaModels = []struct {
	name  string
	build func(t *testing.T, r *rand.Rand) *Model
	rows  int
	k     int
	heavy bool // with -short, only the non-private step and the automatic rules
}{
	{"cnn-mnist", func(t *testing.T, _ *rand.Rand) *Model { return smallModel(t, "cnn-mnist", 1, 28, 28) }, 8, 1, false},
	{"cnn-cifar", func(t *testing.T, _ *rand.Rand) *Model { return smallModel(t, "cnn-cifar", 3, 32, 32) }, 6, 1, false},
	{"wrn-16-4", func(t *testing.T, _ *rand.Rand) *Model { return smallModel(t, "wrn-16-4", 3, 8, 8) }, 6, 2, false},
	{"resnet18", func(t *testing.T, _ *rand.Rand) *Model { return smallModel(t, "resnet18", 3, 16, 16) }, 4, 1, true},
	{"small-resnet-ws", func(_ *testing.T, r *rand.Rand) *Model { return smallResNet(r, true) }, 12, 2, false},
	// frozen BatchNorm (outputFree: in-place ReLUs over its output) under a
	// frozen prefix (no input gradient below it)
	{"resnet18-bn-frozen-prefix", func(t *testing.T, _ *rand.Rand) *Model {
		m, err := NewModel(ModelConfig{Name: "resnet18", Norm: "batch", NumClasses: 10, InputShape: [3]int{3, 16, 16}, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.FreezeLayers(6); err != nil {
			t.Fatal(err)
		}
		return m
	}, 4, 1, true},
	{"scatternet-cnn", func(t *testing.T, _ *rand.Rand) *Model { return smallModel(t, "scatternet-cnn", 3, 32, 32) }, 4, 1, false},
	// a conv whose weight is frozen and bias trained: no dy kept
	{"cnn-cifar-frozen-conv-weight", func(t *testing.T, _ *rand.Rand) *Model {
		m := smallModel(t, "cnn-cifar", 3, 32, 32)
		for _, p := range m.Params() {
			if p.Name == "conv2.weight" {
				p.Frozen = true
			}
		}
		return m
	}, 4, 1, false},
}

// TestArenaMatchesOwnBuffers: backward passes on the arena's lent buffers,
// with in-place ReLUs and residual sums (outputFree), give the same bits as
// on each layer's own buffers (the path of direct Layer calls) and separate
// outputs, for private steps under every rule and for non-private steps,
// over several steps with different inputs. The arena poisons
// (NaN-fills) every buffer it frees, and the test poisons again between
// the per-example pass and AccumulateClipped, so that a gradient released
// while still read (or read after its pass) would change the result. After
// each pass no buffer is left lent (nothing leaks from one pass to the
// next).
func TestArenaMatchesOwnBuffers(t *testing.T) {
	t.Cleanup(func() { inPlace = true })
	for _, tc := range arenaModels {
		for _, method := range stepMethods {
			if tc.heavy && testing.Short() && method != "accumulate" && method != "auto" {
				continue
			}
			t.Run(fmt.Sprintf("%s/%s", tc.name, method), func(t *testing.T) {
				lent := tc.build(t, rand.New(rand.NewPCG(61, 62)))
				own := tc.build(t, rand.New(rand.NewPCG(61, 62)))
				own.ownBuffers = true
				lent.arena.poison = true
				r := rand.New(rand.NewPCG(63, 64))
				for step := range 3 {
					x := randTensor(r, tc.rows, lent.InputShape[0], lent.InputShape[1], lent.InputShape[2])
					dy := randTensor(r, tc.rows, lent.NumClasses)
					coef := randCoef(r, tc.rows/tc.k)
					inPlace = false
					perLayer := step != 1
					want := arenaStep(own, x, dy, coef, tc.k, method, perLayer)
					inPlace = true
					got := arenaStep(lent, x, dy, coef, tc.k, method, perLayer)
					if d := want.diff(got); d != "" {
						t.Fatalf("step %d: arena vs own buffers: %s", step, d)
					}
					for i, s := range lent.arena.slots {
						if s.state == slotLent {
							t.Fatalf("step %d: arena slot %d (%d floats) still lent after the pass", step, i, cap(s.buf))
						}
					}
				}
				if own.arena.floats() != 0 {
					t.Fatalf("the own-buffer model used the arena (%d floats)", own.arena.floats())
				}
				if lent.arena.floats() == 0 {
					t.Fatal("the arena lent nothing")
				}
				if n := inPlaceLayers(lent.Layers); n == 0 {
					t.Fatal("no in-place ReLU or residual sum ran")
				}
			})
		}
	}
}

// inPlaceLayers counts the ReLUs, Tanhs and residual blocks whose last forward
// pass wrote over another layer's output.
func inPlaceLayers(ls []Layer) int {
	n := 0
	for _, l := range ls {
		switch l := l.(type) {
		case *ReLU:
			if l.own == nil || !sameData(l.y, l.own) {
				n++
			}
		case *Tanh:
			if l.own == nil || !sameData(l.y, l.own) {
				n++
			}
		case *Residual:
			if l.own == nil || !sameData(l.out, l.own) {
				n++
			}
			n += inPlaceLayers(l.Children())
		}
	}
	return n
}

// arenaStep is runStep with the arena's free buffers poisoned between the
// per-example pass and AccumulateClipped.
func arenaStep(m *Model, x, dyLogits *tensor.Tensor, coef []float32, k int, method string, perLayer bool) *bitsOf {
	return runStepWith(m, x, dyLogits, coef, k, method, perLayer, func() {
		for i := range m.arena.slots {
			if s := &m.arena.slots[i]; s.state == slotFree {
				m.arena.poisonSlot(s)
			}
		}
	})
}

// TestArenaLending checks the arena's own rules: best fit, release only of
// lent buffers, keep until reset, unknown buffers untouched.
func TestArenaLending(t *testing.T) {
	var a gradArena
	big := a.get(4, 100)
	small := a.get(10)
	if len(a.slots) != 2 || !a.lent(big) || !a.lent(small) {
		t.Fatalf("two lent slots expected, got %d", len(a.slots))
	}
	a.release(big)
	a.release(small)
	if got := a.get(5); &got.Data[0] != &small.Data[0] {
		t.Fatal("get(5) did not take the smallest free buffer that fits")
	}
	if got := a.get(300); &got.Data[0] != &big.Data[0] || len(got.Data) != 300 || got.Shape[0] != 300 {
		t.Fatalf("get(300) did not reuse the 400-float buffer: %v", got.Shape)
	}
	if got := a.get(1000); len(a.slots) != 3 || len(got.Data) != 1000 {
		t.Fatal("get(1000) with no free buffer that fits did not allocate")
	}
	a.keep(big)
	a.release(big)
	if a.lent(big) {
		t.Fatal("a kept buffer reports lent")
	}
	if got := a.get(300); &got.Data[0] == &big.Data[0] {
		t.Fatal("a kept buffer was lent again before the reset")
	}
	foreign := tensor.New(10)
	a.release(foreign)
	a.keep(foreign)
	if a.lent(foreign) || a.slot(foreign) != nil {
		t.Fatal("a buffer the arena did not lend was taken for one of its own")
	}
	a.reset()
	for i, s := range a.slots {
		if s.state != slotFree {
			t.Fatalf("slot %d not free after reset", i)
		}
	}
	if got := a.get(0); len(got.Data) != 0 || len(a.slots) != 4 {
		t.Fatalf("get(0): %d values, %d slots (want an empty tensor, no slot)", len(got.Data), len(a.slots))
	}
}
