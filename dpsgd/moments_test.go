package dpsgd

import (
	"math"
	"math/rand/v2"
	"testing"

	"dptrain/tensor"
)

// TestChannelMomentsAgainstNaive: sums of clipped per-example channel means
// and mean squares, and the exact (σ_n = 0) statistics, against a float64
// loop written from the definitions.
func TestChannelMomentsAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const b, c, h, w = 7, 5, 3, 4
	z := tensor.New(b, c, h, w)
	for i := range z.Data {
		z.Data[i] = float32(rng.NormFloat64()*2 + 1)
	}
	orig := append([]float32(nil), z.Data...)
	for _, clip := range [][2]float64{{0, 0}, {1.5, 4}, {100, 100}} {
		cm := NewChannelMoments(c, clip[0], clip[1], false)
		cm.Add(z)
		wantM, wantS := make([]float64, c), make([]float64, c)
		clipped := 0
		for i := 0; i < b; i++ {
			m, s := make([]float64, c), make([]float64, c)
			for ch := 0; ch < c; ch++ {
				for p := 0; p < h*w; p++ {
					v := float64(orig[(i*c+ch)*h*w+p])
					m[ch] += v / (h * w)
					s[ch] += v * v / (h * w)
				}
			}
			for _, pair := range []struct {
				v    []float64
				clip float64
			}{{m, clip[0]}, {s, clip[1]}} {
				n := 0.0
				for _, x := range pair.v {
					n += x * x
				}
				n = math.Sqrt(n)
				// DESIGN §2's clip factor min(1, C/(‖v‖+1e-6)).
				if f := pair.clip / (n + 1e-6); pair.clip > 0 && f < 1 {
					clipped++
					for k := range pair.v {
						pair.v[k] *= f
					}
				}
			}
			for ch := range m {
				wantM[ch] += m[ch]
				wantS[ch] += s[ch]
			}
		}
		for ch := 0; ch < c; ch++ {
			// 1e-7: the clip factor is rounded down to float32.
			if math.Abs(cm.sumMean[ch]-wantM[ch]) > 1e-7*(1+math.Abs(wantM[ch])) || math.Abs(cm.sumSq[ch]-wantS[ch]) > 1e-7*(1+math.Abs(wantS[ch])) {
				t.Fatalf("clip %v: channel %d: sums %g %g, want %g %g", clip, ch, cm.sumMean[ch], cm.sumSq[ch], wantM[ch], wantS[ch])
			}
		}
		if cm.clippedM+cm.clippedS != clipped {
			t.Errorf("clip %v: %d vectors clipped, want %d", clip, cm.clippedM+cm.clippedS, clipped)
		}
		if clip[0] == 0 {
			mean, variance, _ := cm.Release(nil, 0, b)
			for ch := 0; ch < c; ch++ {
				var s1, s2 float64
				for i := 0; i < b; i++ {
					for p := 0; p < h*w; p++ {
						v := float64(orig[(i*c+ch)*h*w+p])
						s1 += v
						s2 += v * v
					}
				}
				mu := s1 / (b * h * w)
				va := s2/(b*h*w) - mu*mu
				if math.Abs(mean[ch]-mu) > 1e-9 || math.Abs(variance[ch]-va) > 1e-9 {
					t.Errorf("channel %d: μ=%g v=%g, want %g %g", ch, mean[ch], variance[ch], mu, va)
				}
			}
		}
	}
	for i := range orig {
		if z.Data[i] != orig[i] {
			t.Fatal("add modified its input")
		}
	}
}

// TestChannelMomentsNoiseScale: the released mean and mean square carry
// noise of standard deviation σ_n·C_μ/N and σ_n·C_s/N per channel. The sums
// are set so that v = S/N − μ² stays positive, which makes S/N = v + μ²
// recoverable from the release.
func TestChannelMomentsNoiseScale(t *testing.T) {
	const c, n, sigmaN, clipM, clipS, sq = 64, 1000, 3.0, 2.0, 5.0, 100.0
	cm := NewChannelMoments(c, clipM, clipS, false)
	for k := range cm.sumSq {
		cm.sumSq[k] = sq * n // S/N = 100 before noise; Σ m_i = 0
	}
	noise := NewSeededNoise(5)
	var ssM, ssS float64
	const reps = 200
	for range reps {
		mean, variance, _ := cm.Release(noise, sigmaN, n)
		for k := range mean {
			if variance[k] == 0 {
				t.Fatal("variance clamped at 0: the test's sums are too small")
			}
			ssM += mean[k] * mean[k]
			d := variance[k] + mean[k]*mean[k] - sq
			ssS += d * d
		}
	}
	if got, want := math.Sqrt(ssM/(reps*c)), sigmaN*clipM/n; math.Abs(got/want-1) > 0.05 {
		t.Errorf("noise std on the mean %g, want %g", got, want)
	}
	if got, want := math.Sqrt(ssS/(reps*c)), sigmaN*clipS/n; math.Abs(got/want-1) > 0.05 {
		t.Errorf("noise std on the mean square %g, want %g", got, want)
	}
}

// recordingNoise is a NoiseSource that records the float64 releases it is
// asked for and adds a known noise, n_i = (i+1)·std/8, to each element; the
// float32 path fails the test.
type recordingNoise struct {
	t     *testing.T
	dsts  [][]float64
	stds  []float64
	added [][]float64
}

func (r *recordingNoise) AddGaussian(dst []float32, std float64) {
	r.t.Errorf("AddGaussian(%d float32, %g): the release must noise the float64 sums themselves", len(dst), std)
}

func (r *recordingNoise) AddGaussian64(dst []float64, std float64) {
	r.dsts = append(r.dsts, append([]float64(nil), dst...))
	r.stds = append(r.stds, std)
	n := make([]float64, len(dst))
	for i := range dst {
		n[i] = float64(i+1) * std / 8
		dst[i] += n[i]
	}
	r.added = append(r.added, n)
}

func (r *recordingNoise) Mode() NoiseMode                { return "recording" }
func (r *recordingNoise) MarshalBinary() ([]byte, error) { return nil, nil }
func (r *recordingNoise) UnmarshalBinary([]byte) error   { return nil }

// TestChannelMomentsReleaseNoisesSums: the release applies the noise to M
// and S themselves (AddGaussian64 on the sums, std σ_n·C_μ and σ_n·C_s) and
// computes μ and v from the noisy values only; σ_n = 0 draws nothing.
func TestChannelMomentsReleaseNoisesSums(t *testing.T) {
	const c, n, sigmaN, clipM, clipS = 4, 7, 1.5, 2.0, 3.0
	cm := NewChannelMoments(c, clipM, clipS, false)
	for k := range c {
		cm.sumMean[k] = 1.2 + float64(k) + 0x1p-40
		cm.sumSq[k] = 3*float64(k) + 0x1p-41
	}
	wantM := append([]float64(nil), cm.sumMean...)
	wantS := append([]float64(nil), cm.sumSq...)
	rec := &recordingNoise{t: t}
	mean, variance, _ := cm.Release(rec, sigmaN, n)
	if len(rec.dsts) != 2 || rec.stds[0] != sigmaN*clipM || rec.stds[1] != sigmaN*clipS {
		t.Fatalf("%d AddGaussian64 calls with stds %v, want 2 with %g and %g", len(rec.dsts), rec.stds, sigmaN*clipM, sigmaN*clipS)
	}
	for k := range c {
		if rec.dsts[0][k] != wantM[k] || rec.dsts[1][k] != wantS[k] {
			t.Fatalf("channel %d: noised %g and %g, want the sums %g and %g", k, rec.dsts[0][k], rec.dsts[1][k], wantM[k], wantS[k])
		}
		mu := (wantM[k] + rec.added[0][k]) / n
		v := math.Max((wantS[k]+rec.added[1][k])/n-mu*mu, 0)
		if mean[k] != mu || variance[k] != v {
			t.Errorf("channel %d: μ=%g v=%g, want %g %g from the noisy sums", k, mean[k], variance[k], mu, v)
		}
	}
	if cm.sumMean[0] != wantM[0] || cm.sumSq[0] != wantS[0] {
		t.Error("release changed the accumulated sums")
	}
	rec = &recordingNoise{t: t}
	mean, _, _ = cm.Release(rec, 0, n)
	if len(rec.dsts) != 0 || mean[1] != wantM[1]/n {
		t.Errorf("σ_n = 0: %d noise calls, μ[1] = %g, want none and %g", len(rec.dsts), mean[1], wantM[1]/n)
	}
}

// TestChannelMomentsReleaseSecureGrid: with the secure source, the released
// sum M̃ = N·μ is a multiple of the sampler's grid g whatever the low bits
// of M (review finding F2): here M/g has fractional part 0.37, which M + n
// with noise n drawn apart on the grid would keep.
func TestChannelMomentsReleaseSecureGrid(t *testing.T) {
	const c, n, sigmaN, clipM, clipS = 256, 50_000, 12.0, 2.0, 5.0
	noise := NewSecureNoise()
	g := noise.Grid(sigmaN * clipM)
	cm := NewChannelMoments(c, clipM, clipS, false)
	for k := range c {
		cm.sumMean[k] = 1 + (float64(k)+0.37)*g
		cm.sumSq[k] = 1e4
	}
	mean, _, _ := cm.Release(noise, sigmaN, n)
	for k, mu := range mean {
		q := mu * n / g // exact up to the rounding of M̃/N: |q|·2^-52
		if f := math.Abs(q - math.Round(q)); f > 1e-3 {
			t.Fatalf("channel %d: released N·μ = %.17g is %.3g grid steps off the grid %g", k, mu*n, f, g)
		}
	}
}

// TestClipToBound: after clipping, no vector's norm exceeds the bound (the
// sensitivity the accounting assumes), short vectors are untouched, and a
// non-finite vector is zeroed.
func TestClipToBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 2000 {
		v := make([]float64, 1+rng.IntN(300))
		scale := math.Exp(rng.NormFloat64() * 3)
		for k := range v {
			v[k] = rng.NormFloat64() * scale
		}
		orig := append([]float64(nil), v...)
		bound := math.Exp(rng.NormFloat64() * 2)
		clipped := clipTo(v, bound)
		n := 0.0
		for _, x := range v {
			n += x * x
		}
		if math.Sqrt(n) > bound {
			t.Fatalf("case %d: norm %g after clipping to %g", i, math.Sqrt(n), bound)
		}
		if !clipped {
			for k := range v {
				if v[k] != orig[k] {
					t.Fatalf("case %d: unclipped vector changed", i)
				}
			}
		}
	}
	v := []float64{1, math.Inf(1), 2}
	if !clipTo(v, 1) || v[0] != 0 || v[2] != 0 {
		t.Errorf("non-finite vector: %v, want zeros", v)
	}
}

// TestChannelMomentsReleaseReportsEvent: the release reports exactly the
// mechanism it ran: two Gaussian releases with σ_n, or nothing at σ_n = 0.
func TestChannelMomentsReleaseReportsEvent(t *testing.T) {
	cm := NewChannelMoments(2, 1, 1, false)
	cm.Add(tensor.FromData([]float32{1, 2, 3, 4}, 1, 2, 1, 2))
	_, _, ev := cm.Release(NewSeededNoise(1), 3, 10)
	want := DataNormEvent(3)
	if ev == nil || ev.String() != want.String() {
		t.Fatalf("event %v, want %v", ev, want)
	}
	if _, _, ev := cm.Release(nil, 0, 10); ev != nil {
		t.Fatalf("σ_n = 0: event %v, want none", ev)
	}
}
