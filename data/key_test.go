package data

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// refStreamSeed is the PRF as specified, written out independently of
// streamSeed: SHA-256(key ‖ tag ‖ step ‖ index ‖ k), little-endian, 1 + 8 +
// 8 + 4 bytes after the key.
func refStreamSeed(key Key, tag byte, step int64, index, k int) [32]byte {
	b := append([]byte(nil), key[:]...)
	b = append(b, tag)
	b = binary.LittleEndian.AppendUint64(b, uint64(step))
	b = binary.LittleEndian.AppendUint64(b, uint64(index))
	b = binary.LittleEndian.AppendUint32(b, uint32(k))
	return sha256.Sum256(b)
}

func firstWords(r *rand.ChaCha8, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = r.Uint64()
	}
	return out
}

// TestStreamIsChaCha8FromKey: the generator of every (tag, step, index, k)
// is a *rand.ChaCha8 seeded with the 32-byte SHA-256 PRF of the Key.
func TestStreamIsChaCha8FromKey(t *testing.T) {
	key := KeyFromSeed(42)
	for _, tt := range []struct {
		tag      streamTag
		step     int64
		index, k int
	}{
		{streamPoisson, 0, 0, 0},
		{streamPoisson, 1 << 40, 0, 0},
		{streamShuffle, 3, 0, 0},
		{streamAugment, 7, 1281166, 3},
		{streamAugment, -1, 0, math.MaxUint32},
	} {
		seed := refStreamSeed(key, byte(tt.tag), tt.step, tt.index, tt.k)
		if got := streamSeed(&key, tt.tag, tt.step, tt.index, tt.k); got != seed {
			t.Errorf("%+v: streamSeed is not SHA-256(key ‖ tag ‖ step ‖ index ‖ k)", tt)
		}
		var r *rand.ChaCha8 = newStream(&key, tt.tag, tt.step, tt.index, tt.k)
		if !slices.Equal(firstWords(r, 8), firstWords(rand.NewChaCha8(seed), 8)) {
			t.Errorf("%+v: newStream is not ChaCha8(PRF seed)", tt)
		}
		var held rand.ChaCha8
		seedStream(&held, &key, tt.tag, tt.step, tt.index, tt.k)
		if !slices.Equal(firstWords(&held, 8), firstWords(rand.NewChaCha8(seed), 8)) {
			t.Errorf("%+v: seedStream does not reseed as newStream", tt)
		}
	}
	defer func() {
		if _, ok := recover().(UsageError); !ok {
			t.Error("k = 2^32 did not panic with a UsageError (it would alias k = 0)")
		}
	}()
	streamSeed(&key, streamAugment, 0, 0, math.MaxUint32+1)
}

// refPoisson is the sampler's algorithm run on the helper's generator.
func refPoisson(key Key, n int, q float64, step int64) []int {
	r := rand.New(newStream(&key, streamPoisson, step, 0, 0))
	var out []int
	for pos := -1.0; ; {
		pos += math.Floor(math.Log(1-r.Float64())/math.Log1p(-q)) + 1
		if pos >= float64(n) {
			return out
		}
		out = append(out, int(pos))
	}
}

// TestSamplersUseKeyedChaCha8: Poisson batches, shuffle permutations and
// augmentations are exactly what the helper's ChaCha8 stream for their
// (key, step, …) gives with the same algorithm.
func TestSamplersUseKeyedChaCha8(t *testing.T) {
	key := KeyFromSeed(9)
	for _, tt := range []struct {
		n int
		q float64
	}{{1000, 0.05}, {50, 0.7}, {1281167, 0.001}} {
		s := PoissonSampler{N: tt.n, Rate: tt.q, Key: key}
		for _, step := range []int64{0, 1, 99} {
			got, want := s.Sample(step, nil), refPoisson(key, tt.n, tt.q, step)
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Fatalf("poisson N=%d q=%v step %d: Sample is not the keyed ChaCha8 stream's batch (%d vs %d indices)", tt.n, tt.q, step, len(got), len(want))
			}
		}
	}

	sh := &ShuffleSampler{N: 40, BatchSize: 8, Key: key}
	for _, epoch := range []int64{0, 2} {
		perm := make([]int, 40)
		for i := range perm {
			perm[i] = i
		}
		rand.New(newStream(&key, streamShuffle, epoch, 0, 0)).Shuffle(40, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		for b := range int64(5) {
			if got := sh.Sample(epoch*5+b, nil); !slices.Equal(got, perm[b*8:(b+1)*8]) {
				t.Fatalf("shuffle epoch %d batch %d: %v, want %v", epoch, b, got, perm[b*8:(b+1)*8])
			}
		}
	}

	// Augmentation: the augmenter's generator is a held *rand.ChaCha8,
	// reseeded per (step, index, k) as newStream would seed it.
	const c, h, w, pad = 3, 9, 7, 2
	tr := Transform{Crop: CropRandom, Pad: pad, Flip: true}
	a := newAugmenter(tr, key, c, h, w)
	var src *rand.ChaCha8 = &a.src
	for _, args := range [][3]int{{0, 0, 0}, {5, 17, 1}, {1 << 33, 3, 7}} {
		step, idx, k := int64(args[0]), args[1], args[2]
		a.seedFor(step, idx, k)
		if !slices.Equal(firstWords(src, 4), firstWords(newStream(&key, streamAugment, step, idx, k), 4)) {
			t.Fatalf("augmenter (%d,%d,%d): generator is not the keyed ChaCha8 stream", step, idx, k)
		}
	}
	_, img := testImage(h, w, 6)
	dst := make([]float32, c*h*w)
	seenFlip := map[bool]bool{}
	for idx := range 40 {
		r := rand.New(newStream(&key, streamAugment, 11, idx, 2))
		oy, ox := r.IntN(2*pad+1)-pad, r.IntN(2*pad+1)-pad
		flip := r.IntN(2) == 1
		seenFlip[flip] = true
		if err := tr.Apply(dst, img, c, h, w, key, 11, idx, 2); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(dst, window(img, c, h, w, oy, ox, h, w, false, flip)) {
			t.Fatalf("example %d: augmentation is not the window drawn from the keyed ChaCha8 stream", idx)
		}
	}
	if len(seenFlip) != 2 {
		t.Fatal("40 augmentations never or always flipped")
	}
}

// TestKeyFromSeedAndSecretKey: KeyFromSeed is the documented hash, is
// deterministic and differs between seeds; NewSecretKey differs between
// calls.
func TestKeyFromSeedAndSecretKey(t *testing.T) {
	seen := map[Key]uint64{}
	for _, seed := range []uint64{0, 1, 2, 1 << 32, math.MaxUint64} {
		k := KeyFromSeed(seed)
		if k != KeyFromSeed(seed) {
			t.Fatalf("KeyFromSeed(%d) not deterministic", seed)
		}
		want := sha256.Sum256(binary.LittleEndian.AppendUint64([]byte(keyFromSeedDomain), seed))
		if k != want {
			t.Fatalf("KeyFromSeed(%d) is not SHA-256(domain ‖ seed)", seed)
		}
		if prev, ok := seen[k]; ok {
			t.Fatalf("seeds %d and %d give the same key", prev, seed)
		}
		seen[k] = seed
	}
	a, err := NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a == (Key{}) {
		t.Fatalf("NewSecretKey gave %x and %x", a, b)
	}
	if _, ok := seen[a]; ok {
		t.Fatal("NewSecretKey returned a seeded key")
	}
}

// TestStreamSeedsDistinct: changing any one of key, stream, step, index or
// k (including swaps between fields) gives a different seed and different
// output.
func TestStreamSeedsDistinct(t *testing.T) {
	type in struct {
		key      Key
		tag      streamTag
		step     int64
		index, k int
	}
	k1, k2 := KeyFromSeed(1), KeyFromSeed(2)
	inputs := []in{
		{k1, streamAugment, 0, 0, 0},
		{k2, streamAugment, 0, 0, 0},
		{k1, streamPoisson, 0, 0, 0},
		{k1, streamShuffle, 0, 0, 0},
		{k1, streamAugment, 1, 0, 0},
		{k1, streamAugment, 0, 1, 0},
		{k1, streamAugment, 0, 0, 1},
		{k1, streamAugment, 1 << 32, 0, 0},
		{k1, streamAugment, 0, 1 << 32, 0},
		{k1, streamAugment, -1, 0, 0},
		{k1, streamPoisson, 1, 0, 0},
		{k1, streamPoisson, 2, 0, 0},
		{k1, streamAugment, 3, 5, 1},
		{k1, streamAugment, 3, 1, 5},
		{k1, streamAugment, 5, 3, 1},
	}
	seeds := map[[32]byte]in{}
	outs := map[uint64]in{}
	for _, x := range inputs {
		s := streamSeed(&x.key, x.tag, x.step, x.index, x.k)
		if prev, ok := seeds[s]; ok {
			t.Fatalf("%+v and %+v share a seed", prev, x)
		}
		seeds[s] = x
		u := newStream(&x.key, x.tag, x.step, x.index, x.k).Uint64()
		if prev, ok := outs[u]; ok {
			t.Fatalf("%+v and %+v start with the same output", prev, x)
		}
		outs[u] = x
	}
}

// TestKeyDeterminesBatches: the same key gives identical batches and
// augmentations, another key different ones; consecutive steps' Poisson
// batches overlap as independent draws would.
func TestKeyDeterminesBatches(t *testing.T) {
	k1, k2 := KeyFromSeed(3), KeyFromSeed(4)
	p1, p1b, p2 := PoissonSampler{N: 5000, Rate: 0.1, Key: k1}, PoissonSampler{N: 5000, Rate: 0.1, Key: k1}, PoissonSampler{N: 5000, Rate: 0.1, Key: k2}
	s1, s1b, s2 := &ShuffleSampler{N: 100, BatchSize: 10, Key: k1}, &ShuffleSampler{N: 100, BatchSize: 10, Key: k1}, &ShuffleSampler{N: 100, BatchSize: 10, Key: k2}
	for step := range int64(5) {
		if !slices.Equal(p1.Sample(step, nil), p1b.Sample(step, nil)) || slices.Equal(p1.Sample(step, nil), p2.Sample(step, nil)) {
			t.Fatalf("poisson step %d: same key differs or different keys agree", step)
		}
		if !slices.Equal(s1.Sample(step, nil), s1b.Sample(step, nil)) || slices.Equal(s1.Sample(step, nil), s2.Sample(step, nil)) {
			t.Fatalf("shuffle step %d: same key differs or different keys agree", step)
		}
	}
	// Overlap of steps s and s+1: |A∩B| ~ Binomial(N, q²).
	const n, q, T = 5000, 0.1, 200
	var overlap float64
	in := make([]bool, n)
	prev := p1.Sample(0, nil)
	for step := int64(1); step <= T; step++ {
		clear(in)
		for _, i := range prev {
			in[i] = true
		}
		cur := p1.Sample(step, nil)
		for _, i := range cur {
			if in[i] {
				overlap++
			}
		}
		prev = cur
	}
	mu, sd := T*n*q*q, math.Sqrt(T*n*q*q*(1-q*q))
	if z := (overlap - mu) / sd; math.Abs(z) > 5 {
		t.Errorf("consecutive batches overlap in %.0f examples over %d steps, expected %.0f (z=%.1f)", overlap, T, mu, z)
	}

	_, img := testImage(16, 16, 8)
	tr := Transform{Crop: CropRandomResized, Height: 8, Width: 8, Flip: true}
	a, b, c := make([]float32, 3*64), make([]float32, 3*64), make([]float32, 3*64)
	differ := 0
	for idx := range 10 {
		tr.Apply(a, img, 3, 16, 16, k1, 2, idx, 0)
		tr.Apply(b, img, 3, 16, 16, k1, 2, idx, 0)
		tr.Apply(c, img, 3, 16, 16, k2, 2, idx, 0)
		if !slices.Equal(a, b) {
			t.Fatalf("example %d: the same key gave different augmentations", idx)
		}
		if !slices.Equal(a, c) {
			differ++
		}
	}
	if differ < 9 {
		t.Fatalf("different keys gave the same augmentation for %d of 10 examples", 10-differ)
	}
}

// streamBatches collects the physical batches of steps [0, steps) of a
// Stream as deep copies.
func streamBatches(t *testing.T, ds Dataset, tr Transform, opt LoaderOptions, s Sampler, steps int64) []Batch {
	t.Helper()
	l, err := NewLoader(ds, tr, opt)
	if err != nil {
		t.Fatal(err)
	}
	st := l.Stream(s, 0)
	defer st.Close()
	var out []Batch
	for {
		b, err := st.Next()
		if err != nil {
			t.Fatal(err)
		}
		c := *b
		c.X, c.Labels, c.Indices = slices.Clone(b.X), slices.Clone(b.Labels), slices.Clone(b.Indices)
		out = append(out, c)
		last := b.Last() && b.Step == steps-1
		st.Release(b)
		if last {
			return out
		}
	}
}

func sameBatches(a, b []Batch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Step != y.Step || x.Part != y.Part || x.Parts != y.Parts || x.LogicalSize != y.LogicalSize ||
			!slices.Equal(x.Indices, y.Indices) || !slices.Equal(x.Labels, y.Labels) ||
			// Bit-identical, not merely equal as floats.
			!slices.EqualFunc(x.X, y.X, func(u, v float32) bool { return math.Float32bits(u) == math.Float32bits(v) }) {
			return false
		}
	}
	return true
}

// TestStreamWorkersAndKey: a Stream's batches are bit-identical with 1 and
// 4 loader workers under the same key, and differ under another key.
func TestStreamWorkersAndKey(t *testing.T) {
	ds := synthDataset(400, 3, 12, 12, 5)
	tr := Transform{Crop: CropRandom, Pad: 3, Height: 10, Width: 10, Flip: true, Mean: CIFAR10Mean, Std: CIFAR10Std}
	k1, k2 := KeyFromSeed(21), KeyFromSeed(22)
	run := func(workers int, key Key) []Batch {
		s := PoissonSampler{N: ds.Len(), Rate: 0.1, Key: key}
		return streamBatches(t, ds, tr, LoaderOptions{K: 2, Physical: 16, Workers: workers, Key: key}, s, 6)
	}
	one, four := run(1, k1), run(4, k1)
	if len(one) <= 6 {
		t.Fatalf("only %d physical batches for 6 steps: the test needs several parts per step", len(one))
	}
	if !sameBatches(one, four) {
		t.Fatal("batches differ between 1 and 4 loader workers with the same key")
	}
	if sameBatches(one, run(4, k2)) {
		t.Fatal("different keys gave the same batches")
	}
	// The augmentation key alone changes the pixels, not the membership.
	s := PoissonSampler{N: ds.Len(), Rate: 0.1, Key: k1}
	other := streamBatches(t, ds, tr, LoaderOptions{K: 2, Physical: 16, Workers: 2, Key: k2}, s, 6)
	if len(other) != len(one) || !slices.Equal(other[0].Indices, one[0].Indices) || slices.Equal(other[0].X, one[0].X) {
		t.Fatal("the loader key did not change the augmentations alone")
	}
}

// TestAugmentRandomness: every transform that draws (flip, random crops)
// varies with the example index under one key; deterministic ones (which
// skip the PRF) do not depend on key, step or index.
func TestAugmentRandomness(t *testing.T) {
	_, img := testImage(12, 12, 5)
	for _, tt := range []struct {
		name   string
		tr     Transform
		random bool
	}{
		{"flip only", Transform{Flip: true}, true},
		{"random crop", Transform{Crop: CropRandom, Pad: 2}, true},
		{"random resized", Transform{Crop: CropRandomResized, Height: 6, Width: 6}, true},
		{"none", Transform{}, false},
		{"centre", Transform{Crop: CropCenter, Height: 6, Width: 6}, false},
		{"centre resized", Transform{Crop: CropCenterResized, Height: 6, Width: 6}, false},
	} {
		_, oh, ow := tt.tr.OutShape(3, 12, 12)
		first, out := make([]float32, 3*oh*ow), make([]float32, 3*oh*ow)
		if err := tt.tr.Apply(first, img, 3, 12, 12, KeyFromSeed(1), 0, 0, 0); err != nil {
			t.Fatal(err)
		}
		distinct := 0
		for i := 1; i < 32; i++ {
			tt.tr.Apply(out, img, 3, 12, 12, KeyFromSeed(uint64(i%3)), int64(i%5), i, i%2)
			if !slices.Equal(out, first) {
				distinct++
			}
		}
		if tt.random && distinct < 8 || !tt.random && distinct > 0 {
			t.Errorf("%s: %d of 31 other (key, step, index, k) changed the output", tt.name, distinct)
		}
	}
}

// TestKeyFromSeedIsTodays pins the key of a seeded run to the value its
// batches and augmentations were drawn with (the domain string and the
// encoding are part of every seeded run, like internal/seed's tags), and
// the stream tags to theirs.
func TestKeyFromSeedIsTodays(t *testing.T) {
	for _, tc := range []struct {
		seed uint64
		want string
	}{
		{0, "8557abfbeefd70648ba05b57f851be5007dade91cd70cc5400d82c7e6c4c3368"},
		{42, "d7081acc5bbf24e125a8cb9a73b018e0bb3cc43cc83649c3a8d9ce637a86dd05"},
	} {
		k := KeyFromSeed(tc.seed)
		if got := hex.EncodeToString(k[:]); got != tc.want {
			t.Errorf("KeyFromSeed(%d) = %s, want %s", tc.seed, got, tc.want)
		}
	}
	if streamPoisson != 1 || streamShuffle != 2 || streamAugment != 3 {
		t.Errorf("stream tags %d %d %d, want 1 2 3", streamPoisson, streamShuffle, streamAugment)
	}
}
