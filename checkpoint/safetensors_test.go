package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mkST assembles a safetensors file from a header and a data buffer.
func mkST(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestEncodeSafetensorsLayout(t *testing.T) {
	var buf bytes.Buffer
	n, err := EncodeSafetensors(&buf, map[string]Tensor{
		"b":   {Shape: []int{2}, Data: []float32{1, -2}},
		"a.w": {Shape: []int{}, Data: []float32{0.5}},
	}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	// Written by hand from the format description: names sorted, offsets
	// consecutive, header padded with spaces to a multiple of 8.
	hdr := `{"__metadata__":{"format":"pt"},"a.w":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	want := mkST(hdr, []byte{0, 0, 0, 0x3f, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0})
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("encoded\n%q\nwant\n%q", buf.Bytes(), want)
	}
	if n != int64(len(want)) {
		t.Errorf("returned %d bytes, wrote %d", n, len(want))
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name    string
		tensors map[string]Tensor
		meta    map[string]string
	}{
		{"empty", map[string]Tensor{}, nil},
		{"metadata only", nil, map[string]string{"k": "v", "": "", "ü\"\\<>&": "\n\t"}},
		{"scalar", map[string]Tensor{"s": {Shape: []int{}, Data: []float32{3}}}, nil},
		{"zero-size", map[string]Tensor{"z": {Shape: []int{4, 0, 2}, Data: nil}, "y": makeTensor(rng, 3)}, nil},
		{"many", map[string]Tensor{
			"layer1.0.conv1.weight": makeTensor(rng, 64, 64, 3, 3),
			"layer1.0.gn1.weight":   makeTensor(rng, 64),
			"fc.weight":             makeTensor(rng, 10, 512),
			"名前 with \"quotes\"":    makeTensor(rng, 2, 2),
		}, map[string]string{"format": "pt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if _, err := EncodeSafetensors(&buf, tc.tensors, tc.meta); err != nil {
				t.Fatal(err)
			}
			hl := binary.LittleEndian.Uint64(buf.Bytes())
			if (8+hl)%8 != 0 {
				t.Errorf("header length %d: data not 8-byte aligned", hl)
			}
			got, meta, err := DecodeSafetensors(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if what, ok := tensorsEqual(got, tc.tensors); !ok && !(len(got) == 0 && len(tc.tensors) == 0) {
				t.Fatalf("tensors differ: %s", what)
			}
			if len(meta) != len(tc.meta) {
				t.Fatalf("meta %v, want %v", meta, tc.meta)
			}
			for k, v := range tc.meta {
				if meta[k] != v {
					t.Fatalf("meta %v, want %v", meta, tc.meta)
				}
			}
			// Deterministic: encoding again gives the same bytes.
			var again bytes.Buffer
			if _, err := EncodeSafetensors(&again, got, meta); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), buf.Bytes()) {
				t.Error("re-encoding the decoded tensors changed the bytes")
			}
		})
	}
}

func TestEncodeSafetensorsRawTypes(t *testing.T) {
	le := binary.LittleEndian
	f64 := le.AppendUint64(le.AppendUint64(nil, math.Float64bits(1.5)), math.Float64bits(-1e300))
	i64 := le.AppendUint64(le.AppendUint64(nil, uint64(1<<40)), uint64(0xffffffffffffffff)) // 2^40, -1
	raws := map[string]Raw{
		"f64": {DType: F64, Shape: []int{2}, Data: f64},
		"i64": {DType: I64, Shape: []int{2, 1}, Data: i64},
		"u8":  {DType: U8, Shape: []int{3}, Data: []byte{0, 7, 255}},
	}
	var buf bytes.Buffer
	if _, err := EncodeSafetensorsRaw(&buf, raws, nil); err != nil {
		t.Fatal(err)
	}
	got, _, err := DecodeSafetensorsRaw(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for k, r := range raws {
		if got[k].DType != r.DType || !bytes.Equal(got[k].Data, r.Data) || len(got[k].Shape) != len(r.Shape) {
			t.Errorf("%s: got %+v, want %+v", k, got[k], r)
		}
	}
	fs, _, err := DecodeSafetensors(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	wants := map[string][]float32{
		"f64": {1.5, float32(math.Inf(-1))}, // -1e300 overflows float32
		"i64": {1 << 40, -1},
		"u8":  {0, 7, 255},
	}
	for k, w := range wants {
		for i := range w {
			if fs[k].Data[i] != w[i] {
				t.Errorf("%s[%d] = %v, want %v", k, i, fs[k].Data[i], w[i])
			}
		}
	}
}

func TestConvertToFloat32(t *testing.T) {
	le := binary.LittleEndian
	u16 := func(vs ...uint16) []byte {
		var b []byte
		for _, v := range vs {
			b = le.AppendUint16(b, v)
		}
		return b
	}
	tests := []struct {
		dtype DType
		src   []byte
		want  []float32
	}{
		// IEEE binary16 values from the standard's tables.
		{F16, u16(0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000, 0x3555),
			[]float32{1, -2, 65504, 1.0 / (1 << 24), 1023.0 / (1 << 24), 1.0 / (1 << 14), float32(math.Copysign(0, -1)), 0.333251953125}},
		{F16, u16(0x7c00, 0xfc00), []float32{float32(math.Inf(1)), float32(math.Inf(-1))}},
		{BF16, u16(0x3f80, 0xc040, 0x3e20), []float32{1, -3, 0.15625}},
		{I8, []byte{0xff, 0x80, 0x7f}, []float32{-1, -128, 127}},
		{Bool, []byte{0, 1}, []float32{0, 1}},
		{I16, u16(0xffff, 0x7fff), []float32{-1, 32767}},
		{U16, u16(0xffff), []float32{65535}},
		{I32, le.AppendUint32(nil, 0xfffffffe), []float32{-2}},
		{U32, le.AppendUint32(nil, 1<<24), []float32{1 << 24}},
		{U64, le.AppendUint64(nil, 1<<63), []float32{1 << 63}},
	}
	for _, tc := range tests {
		got := make([]float32, len(tc.want))
		toFloat32(got, tc.dtype, tc.src)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(tc.want[i]) {
				t.Errorf("%s %x: [%d] = %v, want %v", tc.dtype, tc.src, i, got[i], tc.want[i])
			}
		}
	}
	nan := make([]float32, 1)
	toFloat32(nan, F16, u16(0x7e00))
	if !math.IsNaN(float64(nan[0])) {
		t.Errorf("F16 0x7e00 = %v, want NaN", nan[0])
	}
}

func TestDecodeSafetensorsErrors(t *testing.T) {
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	ok := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	tests := []struct {
		name   string
		file   []byte
		tensor string // tensor the error must name ("" for none)
		substr string
	}{
		{"short", []byte{1, 2, 3}, "", "shorter than the 8-byte"},
		{"header past end", mkST(ok, f32(2))[:20], "", "exceeds the"},
		{"header too big", binary.LittleEndian.AppendUint64(nil, 1<<40), "", "exceeds the limit"},
		{"zero header", mkST("", nil), "", "does not start with '{'"},
		{"not an object", mkST(`[1,2]`, nil), "", "does not start with '{'"},
		{"bad utf8", mkST("{\"\xff\":{}}", nil), "", "UTF-8"},
		{"bad json", mkST(`{"a":{"dtype":"F32",}}`, nil), "a", "header JSON"},
		{"unclosed", mkST(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`, f32(2)), "", "JSON"},
		{"trailing garbage", mkST(ok+"xx", f32(2)), "", "trailing data"},
		{"duplicate name", mkST(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, f32(2)), "a", "duplicate"},
		{"duplicate metadata", mkST(`{"__metadata__":{},"__metadata__":{}}`, nil), "", "duplicate __metadata__"},
		{"metadata not strings", mkST(`{"__metadata__":{"k":1}}`, nil), "", "object of strings"},
		{"entry not object", mkST(`{"a":[1]}`, nil), "a", "want an object"},
		{"missing dtype", mkST(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, f32(2)), "a", `missing field "dtype"`},
		{"missing shape", mkST(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, f32(2)), "a", `missing field "shape"`},
		{"missing offsets", mkST(`{"a":{"dtype":"F32","shape":[2]}}`, f32(2)), "a", `missing field "data_offsets"`},
		{"unknown dtype", mkST(`{"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}}`, f32(2)), "a", `unknown dtype "F31"`},
		{"negative dim", mkST(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, f32(2)), "a", "out of range"},
		{"fractional dim", mkST(`{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}`, f32(2)), "a", `field "shape"`},
		{"null shape", mkST(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,8]}}`, f32(2)), "a", "shape is null"},
		{"three offsets", mkST(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}`, f32(2)), "a", "3 values"},
		{"offsets past end", mkST(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32(1)), "a", "out of range"},
		{"offsets reversed", mkST(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, f32(2)), "a", "out of range"},
		{"size mismatch", mkST(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32(2)), "a", "needs"},
		{"huge shape", mkST(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}`, f32(2)), "a", "needs over 2^64"},
		{"dtype size mismatch", mkST(`{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}`, f32(2)), "a", "needs 16 bytes"},
		{"gap", mkST(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32(2)), "a", "gap"},
		{"overlap", mkST(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32(2)), "b", "overlap"},
		{"uncovered tail", mkST(ok, f32(3)), "", "cover 8"},
		{"empty name", mkST(`{"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32(2)), "", "empty tensor name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := DecodeSafetensorsRaw(tc.file)
			if err == nil {
				t.Fatal("no error")
			}
			var se *SafetensorsError
			if !errors.As(err, &se) || !errors.Is(err, ErrSafetensors) {
				t.Fatalf("error %v (%T) is not a *SafetensorsError", err, err)
			}
			if se.Tensor != tc.tensor {
				t.Errorf("error names tensor %q, want %q: %v", se.Tensor, tc.tensor, err)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("error %q does not mention %q", err, tc.substr)
			}
		})
	}
}

func TestReadSafetensorsFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	in := map[string]Tensor{"x": {Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}}
	if err := WriteSafetensors(p, in, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	got, meta, err := ReadSafetensors(p)
	if err != nil {
		t.Fatal(err)
	}
	if what, ok := tensorsEqual(got, in); !ok || meta["format"] != "pt" {
		t.Fatalf("read back %v %v (%s)", got, meta, what)
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Errorf("WriteSafetensors left %d entries in the directory, want 1", len(des))
	}

	// Errors name the file and the tensor.
	bad := filepath.Join(dir, "bad.safetensors")
	if err := os.WriteFile(bad, mkST(`{"x":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = ReadSafetensors(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `"x"`) || !errors.Is(err, ErrSafetensors) {
		t.Errorf("error %v: want one naming %s and tensor \"x\"", err, bad)
	}
	_, _, err = ReadSafetensors(filepath.Join(dir, "absent.safetensors"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "absent.safetensors") {
		t.Errorf("missing file: error %v", err)
	}
}

func TestEncodeSafetensorsMisuse(t *testing.T) {
	var buf bytes.Buffer
	tests := map[string]func(){
		"data/shape": func() {
			EncodeSafetensors(&buf, map[string]Tensor{"a": {Shape: []int{2}, Data: []float32{1}}}, nil)
		},
		"negative dim": func() {
			EncodeSafetensors(&buf, map[string]Tensor{"a": {Shape: []int{-1}}}, nil)
		},
		"empty name": func() {
			EncodeSafetensors(&buf, map[string]Tensor{"": {Shape: []int{}, Data: []float32{1}}}, nil)
		},
		"reserved name": func() {
			EncodeSafetensors(&buf, map[string]Tensor{metadataKey: {Shape: []int{}, Data: []float32{1}}}, nil)
		},
		"bad metadata": func() {
			EncodeSafetensors(&buf, nil, map[string]string{"k": "\xff"})
		},
		"raw unknown dtype": func() {
			EncodeSafetensorsRaw(&buf, map[string]Raw{"a": {DType: "X", Shape: []int{1}, Data: []byte{0}}}, nil)
		},
		"raw length": func() {
			EncodeSafetensorsRaw(&buf, map[string]Raw{"a": {DType: F64, Shape: []int{1}, Data: []byte{0}}}, nil)
		},
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) { mustPanicUsage(t, f) })
	}
}

func TestDecodeSafetensorsLenient(t *testing.T) {
	// Files from other writers: unaligned header, trailing newline padding,
	// fields in another order, an unknown extra field, null metadata.
	hdr := "{\"__metadata__\":null,\"b\":{\"data_offsets\":[0,2],\"shape\":[1],\"dtype\":\"BF16\",\"extra\":1},\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}\n"
	got, meta, err := DecodeSafetensors(mkST(hdr, []byte{0x80, 0x3f, 9, 10}))
	if err != nil {
		t.Fatal(err)
	}
	if meta != nil || got["b"].Data[0] != 1 || got["a"].Data[1] != 10 {
		t.Errorf("got %v %v", got, meta)
	}
}

func TestPortableF32Path(t *testing.T) {
	// The element-by-element path used on big-endian hosts gives the same
	// bytes and values as the block copy.
	ts := map[string]Tensor{"a": makeTensor(rand.New(rand.NewPCG(5, 5)), 300, 301), "b": {Shape: []int{1}, Data: []float32{float32(math.NaN())}}}
	encode := func() []byte {
		var buf bytes.Buffer
		if _, err := EncodeSafetensors(&buf, ts, nil); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	fast := encode()
	fastTs, _, err := DecodeSafetensors(fast)
	if err != nil {
		t.Fatal(err)
	}
	saved := nativeLittle
	nativeLittle = false
	defer func() { nativeLittle = saved }()
	slow := encode()
	if !bytes.Equal(fast, slow) {
		t.Fatal("portable encoder wrote different bytes")
	}
	slowTs, _, err := DecodeSafetensors(slow)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []map[string]Tensor{fastTs, slowTs} {
		if what, ok := tensorsEqual(got, ts); !ok {
			t.Fatalf("decoded tensors differ: %s", what)
		}
	}
}
