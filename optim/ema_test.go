package optim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func mustEMA(t testing.TB, params [][]float32, decay float64, warmup bool) *EMA {
	t.Helper()
	e, err := NewEMA(params, decay, warmup)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEMAHandComputed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		decay  float64
		warmup bool
		ps     []float32 // successive parameter values, starting at 0
		want   []float64
	}{
		// d = 0.5: e = 0.5·0 + 0.5·1 = 0.5, 0.5·0.5 + 0.5·1 = 0.75, 0.5·0.75 = 0.375.
		{"plain", 0.5, false, []float32{1, 1, 0}, []float64{0.5, 0.75, 0.375}},
		// Warm-up, decay 0.9: d_0 = min(0.9, 1/10) = 0.1 → e = 0.9·1 = 0.9;
		// d_1 = 2/11 → e = 0.9·2/11 = 0.1636363636 (p = 0);
		// d_2 = 3/12 = 0.25 → e = 0.25·0.1636363636 + 0.75·2 = 1.5409090909.
		{"warmup", 0.9, true, []float32{1, 0, 2}, []float64{0.9, 0.1636363636, 1.5409090909}},
	} {
		p := [][]float32{{0}}
		e := mustEMA(t, p, tc.decay, tc.warmup)
		for i, v := range tc.ps {
			p[0][0] = v
			e.Update(p)
			if got := float64(e.Params()[0][0]); math.Abs(got-tc.want[i]) > 1e-7 {
				t.Errorf("%s: update %d: %.10f, want %.10f", tc.name, i, got, tc.want[i])
			}
		}
		if e.Updates() != int64(len(tc.ps)) {
			t.Errorf("%s: Updates() = %d", tc.name, e.Updates())
		}
	}
}

func TestEMADecayAt(t *testing.T) {
	e := mustEMA(t, nil, 0.9, true)
	// (1+t)/(10+t) reaches 0.9 at t = (10·0.9 − 1)/0.1 = 80.
	for _, tc := range []struct {
		t    int64
		want float64
	}{{0, 0.1}, {10, 0.55}, {79, 80.0 / 89}, {80, 0.9}, {1000, 0.9}} {
		if got := e.DecayAt(tc.t); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("DecayAt(%d) = %v, want %v", tc.t, got, tc.want)
		}
	}
	if d := mustEMA(t, nil, 0.999, false).DecayAt(0); d != 0.999 {
		t.Errorf("no warm-up: DecayAt(0) = %v", d)
	}
}

// TestEMALarge checks the parallel path against a float64 loop, that the
// input is neither retained nor modified, and that a constant stays exact.
func TestEMALarge(t *testing.T) {
	n := 3*emaGrain + 5
	r := rand.New(rand.NewPCG(5, 6))
	p := [][]float32{make([]float32, n), {3, 3}}
	for i := range p[0] {
		p[0][i] = float32(r.NormFloat64())
	}
	ref := make([]float64, n)
	for i, v := range p[0] {
		ref[i] = float64(v)
	}
	e := mustEMA(t, p, 0.99, true)
	p[1][0] = 100 // not retained: the average of tensor 1 still starts at 3
	if e.Params()[1][0] != 3 {
		t.Fatal("NewEMA retained its input")
	}
	p[1][0] = 3
	for step := range int64(20) {
		for i := range p[0] {
			p[0][i] = float32(r.NormFloat64())
		}
		before := slices.Clone(p[0])
		e.Update(p)
		if !slices.Equal(before, p[0]) {
			t.Fatal("Update modified params")
		}
		d := e.DecayAt(step)
		for i := range ref {
			ref[i] = d*ref[i] + (1-d)*float64(p[0][i])
		}
	}
	for i, v := range e.Params()[0] {
		if math.Abs(float64(v)-ref[i]) > 1e-6 {
			t.Fatalf("element %d: %v, want %v", i, v, ref[i])
		}
	}
	if got := e.Params()[1]; got[0] != 3 || got[1] != 3 {
		t.Errorf("average of a constant tensor = %v, want [3 3]", got)
	}
}

func TestEMASaveRestore(t *testing.T) {
	seq := [][]float32{{1, 2}, {3, -1}, {0, 0}, {5, 5}, {-2, 1}}
	a := mustEMA(t, [][]float32{{0, 0}}, 0.8, true)
	for _, p := range seq {
		a.Update([][]float32{p})
	}
	b := mustEMA(t, [][]float32{{0, 0}}, 0.8, true)
	for _, p := range seq[:2] {
		b.Update([][]float32{p})
	}
	st := b.State()
	st.Tensors["ema/0"] = slices.Clone(st.Tensors["ema/0"])
	c := mustEMA(t, [][]float32{{9, 9}}, 0.8, true)
	if err := c.Restore(st); err != nil {
		t.Fatal(err)
	}
	for _, p := range seq[2:] {
		c.Update([][]float32{p})
	}
	if !slices.Equal(c.Params()[0], a.Params()[0]) || c.Updates() != 5 {
		t.Errorf("restored EMA %v after %d updates, uninterrupted %v", c.Params()[0], c.Updates(), a.Params()[0])
	}
	for _, tc := range []struct {
		edit func(s *State)
		want string
	}{
		{func(s *State) { s.Kind = "adam" }, `kind "adam"`},
		{func(s *State) { s.Scalars["decay"] = 0.9 }, "decay 0.9 saved"},
		{func(s *State) { s.Scalars["warmup"] = 0 }, "warmup 0 saved"},
		{func(s *State) { s.Tensors["ema/0"] = []float32{1} }, `"ema/0" has 1 elements, want 2`},
		{func(s *State) { s.Tensors = map[string][]float32{"ema/1": {1, 2}} }, `"ema/0" missing`},
		{func(s *State) { s.Steps = -3 }, "steps -3"},
	} {
		s := a.State()
		s.Scalars = map[string]float64{"decay": 0.8, "warmup": 1}
		tc.edit(&s)
		if err := mustEMA(t, [][]float32{{0, 0}}, 0.8, true).Restore(s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
	}
}

func TestEMAErrorsAndAllocs(t *testing.T) {
	for _, d := range []float64{-0.1, 1, math.NaN()} {
		if _, err := NewEMA(nil, d, false); err == nil || !strings.Contains(err.Error(), "ema.decay") {
			t.Errorf("decay %v: error %v", d, err)
		}
	}
	p := [][]float32{make([]float32, 4*emaGrain)}
	e := mustEMA(t, p, 0.9, false)
	func() {
		defer func() {
			if _, ok := recover().(*UsageError); !ok {
				t.Error("mismatched Update did not panic with *UsageError")
			}
		}()
		e.Update([][]float32{{1}})
	}()
	e.Update(p)
	if a := testing.AllocsPerRun(5, func() { e.Update(p) }); a != 0 {
		t.Errorf("%v allocations per Update", a)
	}
}

// BenchmarkEMAUpdate averages 11.7M parameters (ResNet-18).
func BenchmarkEMAUpdate(b *testing.B) {
	p := [][]float32{make([]float32, resnet18Params)}
	e := mustEMA(b, p, 0.999, true)
	e.Update(p)
	b.SetBytes(4 * resnet18Params)
	b.ResetTimer()
	for range b.N {
		e.Update(p)
	}
}
