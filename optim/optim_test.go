package optim

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"dptrain/internal/par"
)

func mustOpt(t testing.TB, cfg Config, sizes []int, decay []bool) Optimizer {
	t.Helper()
	o, err := New(cfg, sizes, decay)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestOptimizerHandComputed runs three steps of each optimizer on one
// scalar parameter p0 = 1 and compares with values derived by hand (the
// derivations are in the comments; float32 arithmetic, so tolerance 1e-6).
func TestOptimizerHandComputed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		lr    float64
		grads []float32
		want  []float64
	}{
		// SGD, λ = 0.01, η = 0.1: decay factor 1 − ηλ = 0.999.
		// p1 = 1·0.999 − 0.1·0.5 = 0.949
		// p2 = 0.949·0.999 − 0.1·(−1) = 0.948051 + 0.1 = 1.048051
		// p3 = 1.048051·0.999 − 0.1·2 = 1.047002949 − 0.2 = 0.847002949
		{"sgd", Config{Kind: KindSGD, WeightDecay: 0.01}, 0.1,
			[]float32{0.5, -1, 2}, []float64{0.949, 1.048051, 0.847002949}},
		// Heavy ball, μ = 0.9, η = 0.1 (PyTorch: v ← μv + g, p ← p − ηv).
		// v1 = 1,                p1 = 1 − 0.1 = 0.9
		// v2 = 0.9 + 2 = 2.9,    p2 = 0.9 − 0.29 = 0.61
		// v3 = 2.61 + 3 = 5.61,  p3 = 0.61 − 0.561 = 0.049
		{"momentum", Config{Kind: KindMomentum, Momentum: 0.9}, 0.1,
			[]float32{1, 2, 3}, []float64{0.9, 0.61, 0.049}},
		// Nesterov, μ = 0.9, η = 0.1 (PyTorch: v ← μv + g, p ← p − η(g + μv)).
		// v1 = 1,    u1 = 1 + 0.9 = 1.9,       p1 = 1 − 0.19 = 0.81
		// v2 = 2.9,  u2 = 2 + 2.61 = 4.61,     p2 = 0.81 − 0.461 = 0.349
		// v3 = 5.61, u3 = 3 + 5.049 = 8.049,   p3 = 0.349 − 0.8049 = −0.4559
		{"nesterov", Config{Kind: KindNesterov, Momentum: 0.9}, 0.1,
			[]float32{1, 2, 3}, []float64{0.81, 0.349, -0.4559}},
		// The same with λ = 0.1 (factor 0.99):
		// p1 = 0.99 − 0.19 = 0.8; p2 = 0.792 − 0.461 = 0.331;
		// p3 = 0.32769 − 0.8049 = −0.47721
		{"nesterov-wd", Config{Kind: KindNesterov, Momentum: 0.9, WeightDecay: 0.1}, 0.1,
			[]float32{1, 2, 3}, []float64{0.8, 0.331, -0.47721}},
		// Adam, β = (0.9, 0.999), ε = 1e-8, η = 0.01:
		// t1: m = 0.1, v = 0.001, m̂ = 1, v̂ = 1, p1 = 1 − 0.01/(1+1e-8) = 0.9900000001
		// t2 (g = −2): m = 0.09 − 0.2 = −0.11, v = 0.000999 + 0.004 = 0.004999,
		//   m̂ = −0.11/0.19 = −0.578947368, v̂ = 0.004999/0.001999 = 2.500750375,
		//   √v̂ = 1.581376, p2 = 0.99 + 0.01·0.366102 = 0.993661035
		// t3 (g = 0.5): m = −0.099 + 0.05 = −0.049, v = 0.004994001 + 0.00025 = 0.005244001,
		//   m̂ = −0.049/0.271 = −0.180811808, v̂ = 0.005244001/0.002997001 = 1.749749500,
		//   √v̂ = 1.322781, p3 = 0.993661035 + 0.01·0.136690 = 0.995027942
		{"adam", Config{Kind: KindAdam, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, 0.01,
			[]float32{1, -2, 0.5}, []float64{0.9900000001, 0.993661035, 0.995027942}},
		// AdamW: the same moments with λ = 0.1 (factor 1 − 0.001 = 0.999):
		// p1 = 0.999 − 0.0099999999 = 0.9890000001
		// p2 = 0.9890000001·0.999 + 0.00366102 = 0.991672035
		// p3 = 0.991672035·0.999 + 0.00136690 = 0.992047270
		{"adamw", Config{Kind: KindAdam, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}, 0.01,
			[]float32{1, -2, 0.5}, []float64{0.9890000001, 0.991672035, 0.992047270}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := mustOpt(t, tc.cfg, []int{1}, nil)
			p := [][]float32{{1}}
			for i, g := range tc.grads {
				grads := [][]float32{{g}}
				o.Step(p, grads, tc.lr)
				if grads[0][0] != g {
					t.Fatalf("step %d modified the gradient", i+1)
				}
				if got := float64(p[0][0]); math.Abs(got-tc.want[i]) > 1e-6 {
					t.Errorf("step %d: p = %.9f, want %.9f", i+1, got, tc.want[i])
				}
			}
			if o.Steps() != int64(len(tc.grads)) {
				t.Errorf("Steps() = %d", o.Steps())
			}
		})
	}
}

// refStep is a plain float64 transcription of the update rules, used to
// check the parallel float32 kernels on large tensors.
func refStep(cfg Config, p, g, a, b []float64, lr float64, t int, decay bool) {
	dec := 1.0
	if decay {
		dec = 1 - lr*cfg.WeightDecay
	}
	for i := range p {
		switch cfg.Kind {
		case KindSGD:
			p[i] = p[i]*dec - lr*g[i]
		case KindMomentum:
			a[i] = cfg.Momentum*a[i] + g[i]
			p[i] = p[i]*dec - lr*a[i]
		case KindNesterov:
			a[i] = cfg.Momentum*a[i] + g[i]
			p[i] = p[i]*dec - lr*(g[i]+cfg.Momentum*a[i])
		case KindAdam:
			a[i] = cfg.Beta1*a[i] + (1-cfg.Beta1)*g[i]
			b[i] = cfg.Beta2*b[i] + (1-cfg.Beta2)*g[i]*g[i]
			mh := a[i] / (1 - math.Pow(cfg.Beta1, float64(t)))
			vh := b[i] / (1 - math.Pow(cfg.Beta2, float64(t)))
			p[i] = p[i]*dec - lr*mh/(math.Sqrt(vh)+cfg.Eps)
		}
	}
}

// TestOptimizerLargeAgainstReference runs every optimizer on two tensors,
// one large enough to be split across goroutines and one excluded from
// weight decay, and compares with refStep.
func TestOptimizerLargeAgainstReference(t *testing.T) {
	sizes := []int{5*optGrain + 17, 33}
	decay := []bool{true, false}
	for _, kind := range []Kind{KindSGD, KindMomentum, KindNesterov, KindAdam} {
		cfg := DefaultConfig(kind)
		cfg.WeightDecay = 0.05
		for _, threads := range []int{1, 3} {
			old := par.SetThreads(threads)
			r := rand.New(rand.NewPCG(1, 2))
			o := mustOpt(t, cfg, sizes, decay)
			params, grads := make([][]float32, 2), make([][]float32, 2)
			ref := make([][4][]float64, 2)
			for j, n := range sizes {
				params[j], grads[j] = make([]float32, n), make([]float32, n)
				for k := range ref[j] {
					ref[j][k] = make([]float64, n)
				}
				for i := range params[j] {
					params[j][i] = float32(r.NormFloat64())
					ref[j][0][i] = float64(params[j][i])
				}
			}
			for step := 1; step <= 4; step++ {
				for j := range sizes {
					for i := range grads[j] {
						grads[j][i] = float32(r.NormFloat64())
						ref[j][1][i] = float64(grads[j][i])
					}
					refStep(cfg, ref[j][0], ref[j][1], ref[j][2], ref[j][3], 0.05, step, decay[j])
				}
				o.Step(params, grads, 0.05)
			}
			worst := 0.0
			for j := range sizes {
				for i, v := range params[j] {
					worst = max(worst, math.Abs(float64(v)-ref[j][0][i])/(1+math.Abs(ref[j][0][i])))
				}
			}
			if worst > 1e-5 {
				t.Errorf("%s, %d threads: worst relative error %.2g against the float64 reference", kind, threads, worst)
			}
			par.SetThreads(old)
		}
	}
}

func TestOptimizerDecayMask(t *testing.T) {
	o := mustOpt(t, Config{Kind: KindSGD, WeightDecay: 0.5}, []int{1, 1}, []bool{false, true})
	p := [][]float32{{2}, {2}}
	o.Step(p, [][]float32{{0}, {0}}, 0.1)
	// Zero gradient: only decay moves p: masked 2 → 2; decayed 2·(1 − 0.05) = 1.9.
	if p[0][0] != 2 || math.Abs(float64(p[1][0])-1.9) > 1e-7 {
		t.Errorf("after one step p = %v, want [2 1.9]", p)
	}
}

// TestOptimizerSaveRestore checks that a restored optimizer continues
// exactly as the uninterrupted one.
func TestOptimizerSaveRestore(t *testing.T) {
	sizes := []int{7, 3}
	for _, kind := range []Kind{KindSGD, KindMomentum, KindNesterov, KindAdam} {
		cfg := DefaultConfig(kind)
		cfg.WeightDecay = 0.01
		r := rand.New(rand.NewPCG(3, 4))
		grads := make([][][]float32, 5)
		for s := range grads {
			grads[s] = [][]float32{make([]float32, 7), make([]float32, 3)}
			for _, g := range grads[s] {
				for i := range g {
					g[i] = float32(r.NormFloat64())
				}
			}
		}
		init := func() [][]float32 { return [][]float32{{1, 2, 3, 4, 5, 6, 7}, {-1, 0, 1}} }
		a := mustOpt(t, cfg, sizes, nil)
		pa := init()
		for s := range grads {
			a.Step(pa, grads[s], 0.1)
		}
		b := mustOpt(t, cfg, sizes, nil)
		pb := init()
		for s := range 2 {
			b.Step(pb, grads[s], 0.1)
		}
		st := b.State()
		// A checkpoint copies the tensors before the optimizer moves on.
		saved := State{Kind: st.Kind, Steps: st.Steps, Scalars: st.Scalars, Tensors: map[string][]float32{}}
		for k, v := range st.Tensors {
			saved.Tensors[k] = slices.Clone(v)
		}
		c := mustOpt(t, cfg, sizes, nil)
		if err := c.Restore(saved); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		for s := 2; s < len(grads); s++ {
			c.Step(pb, grads[s], 0.1)
		}
		for j := range pa {
			if !slices.Equal(pa[j], pb[j]) {
				t.Errorf("%s: tensor %d after restore %v, uninterrupted %v", kind, j, pb[j], pa[j])
			}
		}
		if c.Steps() != 5 {
			t.Errorf("%s: Steps() = %d after restore and 3 steps", kind, c.Steps())
		}
	}
}

func TestOptimizerRestoreErrors(t *testing.T) {
	cfg := DefaultConfig(KindAdam)
	good := mustOpt(t, cfg, []int{4, 2}, nil).State()
	for _, tc := range []struct {
		name string
		edit func(s *State)
		want string
	}{
		{"kind", func(s *State) { s.Kind = string(KindSGD) }, `kind "sgd" saved`},
		{"beta1", func(s *State) { s.Scalars["beta1"] = 0.8 }, "beta1 0.8 saved"},
		{"missing", func(s *State) { delete(s.Tensors, "adam_v/1"); s.Tensors["x"] = nil }, `"adam_v/1" missing`},
		{"size", func(s *State) { s.Tensors["adam_m/0"] = make([]float32, 5) }, `"adam_m/0" has 5 elements, want 4`},
		{"count", func(s *State) { s.Tensors["extra"] = nil }, "5 tensors saved, want 4"},
		{"steps", func(s *State) { s.Steps = -1 }, "steps -1"},
	} {
		s := State{Kind: good.Kind, Steps: good.Steps, Scalars: map[string]float64{}, Tensors: map[string][]float32{}}
		for k, v := range good.Scalars {
			s.Scalars[k] = v
		}
		for k, v := range good.Tensors {
			s.Tensors[k] = v
		}
		tc.edit(&s)
		err := mustOpt(t, cfg, []int{4, 2}, nil).Restore(s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestOptimizerConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Kind: "adagrad"}, "optimizer.kind"},
		{Config{Kind: KindSGD, Momentum: 0.9}, "optimizer.momentum"},
		{Config{Kind: KindMomentum}, "optimizer.momentum: want a value in (0, 1)"},
		{Config{Kind: KindNesterov, Momentum: 1}, "optimizer.momentum"},
		{Config{Kind: KindSGD, WeightDecay: -1}, "optimizer.weight_decay"},
		{Config{Kind: KindSGD, WeightDecay: math.NaN()}, "optimizer.weight_decay"},
		{Config{Kind: KindAdam, Beta1: 1, Beta2: 0.9, Eps: 1e-8}, "optimizer.beta1"},
		{Config{Kind: KindAdam, Beta1: 0.9, Beta2: -0.1, Eps: 1e-8}, "optimizer.beta2"},
		{Config{Kind: KindAdam, Beta1: 0.9, Beta2: 0.99}, "optimizer.eps"},
	} {
		_, err := New(tc.cfg, []int{1}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
	}
	for _, kind := range []Kind{KindSGD, KindMomentum, KindNesterov, KindAdam} {
		if err := DefaultConfig(kind).Validate(); err != nil {
			t.Errorf("default %s: %v", kind, err)
		}
	}
}

func TestOptimizerMisusePanics(t *testing.T) {
	o := mustOpt(t, DefaultConfig(KindMomentum), []int{2}, nil)
	for name, f := range map[string]func(){
		"count":  func() { o.Step([][]float32{{1, 2}, {3}}, [][]float32{{1, 2}}, 0.1) },
		"length": func() { o.Step([][]float32{{1, 2}}, [][]float32{{1}}, 0.1) },
		"lr":     func() { o.Step([][]float32{{1, 2}}, [][]float32{{1, 2}}, -1) },
		"mask":   func() { New(DefaultConfig(KindSGD), []int{1, 2}, []bool{true}) },
	} {
		func() {
			defer func() {
				if _, ok := recover().(*UsageError); !ok {
					t.Errorf("%s: no *UsageError panic", name)
				}
			}()
			f()
		}()
	}
}

func TestOptimizerAllocs(t *testing.T) {
	sizes := []int{4 * optGrain, 10}
	p := [][]float32{make([]float32, sizes[0]), make([]float32, sizes[1])}
	g := [][]float32{make([]float32, sizes[0]), make([]float32, sizes[1])}
	for _, kind := range []Kind{KindSGD, KindMomentum, KindNesterov, KindAdam} {
		o := mustOpt(t, DefaultConfig(kind), sizes, nil)
		o.Step(p, g, 0.1)
		if a := testing.AllocsPerRun(5, func() { o.Step(p, g, 0.1) }); a != 0 {
			t.Errorf("%s: %v allocations per Step", kind, a)
		}
	}
}

// BenchmarkOptimizerStep updates 11.7M parameters (ResNet-18) in one tensor.
func BenchmarkOptimizerStep(b *testing.B) {
	p := [][]float32{make([]float32, resnet18Params)}
	g := [][]float32{make([]float32, resnet18Params)}
	for i := range g[0] {
		g[0][i] = float32(i%7) - 3
	}
	for _, kind := range []Kind{KindSGD, KindMomentum, KindNesterov, KindAdam} {
		b.Run(string(kind), func(b *testing.B) {
			cfg := DefaultConfig(kind)
			cfg.WeightDecay = 1e-4
			o := mustOpt(b, cfg, []int{resnet18Params}, nil)
			o.Step(p, g, 1e-3)
			b.SetBytes(4 * resnet18Params)
			b.ResetTimer()
			for range b.N {
				o.Step(p, g, 1e-3)
			}
		})
	}
}

// resnet18Params is the parameter count of ResNet-18 (11,689,512).
const resnet18Params = 11_689_512
