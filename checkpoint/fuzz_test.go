package checkpoint

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

func FuzzReadSafetensors(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, ts := range []map[string]Tensor{
		{},
		{"a": makeTensor(rng, 2, 3), "b": makeTensor(rng)},
		{"w": makeTensor(rng, 4), "z": {Shape: []int{0, 5}}},
	} {
		var buf bytes.Buffer
		if _, err := EncodeSafetensors(&buf, ts, map[string]string{"format": "pt"}); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	var raw bytes.Buffer
	if _, err := EncodeSafetensorsRaw(&raw, map[string]Raw{
		"i": {DType: I64, Shape: []int{1}, Data: make([]byte, 8)},
		"h": {DType: F16, Shape: []int{2}, Data: []byte{0, 0x3c, 0, 0x7c}},
	}, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(raw.Bytes())
	f.Add(mkST(`{"a":{"dtype":"F32","shape":[1000000000000000000,1000000000000000000,0],"data_offsets":[0,0]}}`, nil))
	f.Add(mkST(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)))
	f.Add(mkST(`{"__metadata__":{"k":"v"},"x":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}}`, []byte{1, 2}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{'})

	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		raws, meta, err := DecodeSafetensorsRaw(b)
		if !bytes.Equal(b, orig) {
			t.Fatal("the decoder modified its input")
		}
		if err != nil {
			if raws != nil || meta != nil {
				t.Fatal("results returned with an error")
			}
			return
		}
		for name, r := range raws {
			if len(r.Data) != numel("fuzz", name, r.Shape)*r.DType.Size() {
				t.Fatalf("%q: %d bytes for %s %v", name, len(r.Data), r.DType, r.Shape)
			}
		}
		// Accepted files re-encode canonically and decode to the same tensors.
		var enc bytes.Buffer
		if _, err := EncodeSafetensorsRaw(&enc, raws, meta); err != nil {
			t.Fatal(err)
		}
		again, meta2, err := DecodeSafetensorsRaw(enc.Bytes())
		if err != nil {
			t.Fatalf("re-encoded file rejected: %v", err)
		}
		if len(again) != len(raws) || len(meta2) != len(meta) {
			t.Fatalf("re-decoded %d tensors %d metadata, want %d %d", len(again), len(meta2), len(raws), len(meta))
		}
		for k, v := range meta {
			if meta2[k] != v {
				t.Fatalf("metadata %q: %q, want %q", k, meta2[k], v)
			}
		}
		for name, r := range raws {
			g, ok := again[name]
			if !ok || g.DType != r.DType || !slices.Equal(g.Shape, r.Shape) || !bytes.Equal(g.Data, r.Data) {
				t.Fatalf("tensor %q changed in a round trip", name)
			}
		}
		// The float32 view decodes exactly when every dtype is convertible.
		allConvertible := true
		for _, r := range raws {
			allConvertible = allConvertible && convertible(r.DType)
		}
		ts, _, err := DecodeSafetensors(b)
		if allConvertible != (err == nil) {
			t.Fatalf("DecodeSafetensors: %v, with all dtypes convertible: %v", err, allConvertible)
		}
		for name, r := range raws {
			if err == nil && len(ts[name].Data)*r.DType.Size() != len(r.Data) {
				t.Fatalf("%q: %d floats from %d bytes of %s", name, len(ts[name].Data), len(r.Data), r.DType)
			}
		}
	})
}
