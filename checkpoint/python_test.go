package checkpoint

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pyReader parses a safetensors file with nothing but Python's json and
// struct modules (an independent reader) and prints its contents as JSON.
const pyReader = `
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n, = struct.unpack("<Q", b[:8])
h = json.loads(b[8:8+n].decode("utf-8"))
data = b[8+n:]
fmt = {"F32": "f", "F64": "d", "I64": "q", "U8": "B", "F16": "e"}
out = {"__metadata__": h.pop("__metadata__", None), "aligned": (8+n) % 8 == 0, "tensors": {}}
for k, v in h.items():
    s, e = v["data_offsets"]
    f = fmt[v["dtype"]]
    cnt = (e - s) // struct.calcsize(f)
    out["tensors"][k] = {"shape": v["shape"], "dtype": v["dtype"],
                         "data": list(struct.unpack("<%d%s" % (cnt, f), data[s:e]))}
print(json.dumps(out))
`

// pyWriter writes a safetensors file the way other tools do (json.dumps
// header, no padding, tensors in insertion order).
const pyWriter = `
import json, struct, sys
ts = [("w.f16", "F16", [2, 2], struct.pack("<4e", 1.0, -0.5, 65504.0, 2.0**-24)),
      ("w.f64", "F64", [3], struct.pack("<3d", 0.1, -2.5, 1e10)),
      ("steps", "I64", [], struct.pack("<q", 123456)),
      ("bf", "BF16", [2], struct.pack("<2H", 0x3f80, 0xbe20))]
h, off, buf = {"__metadata__": {"format": "pt"}}, 0, b""
for name, dt, shape, raw in ts:
    h[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
    off += len(raw); buf += raw
hb = json.dumps(h).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(hb)) + hb + buf)
`

func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not available")
	}
	return p
}

func TestSafetensorsReadByPython(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "weights.safetensors")
	ck := makeCheckpoint(3, 1)
	w := ck.Tensors["weights"]
	if err := WriteSafetensors(p, w, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", pyReader, p).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got struct {
		Meta    map[string]string `json:"__metadata__"`
		Aligned bool
		Tensors map[string]struct {
			Shape []int
			DType string
			Data  []any // numbers, or strings for non-finite values
		}
	}
	// Python prints NaN and Infinity unquoted; make them JSON strings.
	s := string(out)
	for _, r := range [][2]string{{"-Infinity", `"-Inf"`}, {"Infinity", `"Inf"`}, {"NaN", `"NaN"`}} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	if err := json.Unmarshal([]byte(s), &got); err != nil {
		t.Fatalf("python output %q: %v", out, err)
	}
	if got.Meta["format"] != "pt" || !got.Aligned || len(got.Tensors) != len(w) {
		t.Fatalf("python read meta %v, aligned %v, %d tensors", got.Meta, got.Aligned, len(got.Tensors))
	}
	for name, want := range w {
		g := got.Tensors[name]
		if g.DType != "F32" || len(g.Shape) != len(want.Shape) || len(g.Data) != len(want.Data) {
			t.Fatalf("%s: python read %s %v with %d values", name, g.DType, g.Shape, len(g.Data))
		}
		for i, v := range want.Data {
			switch x := g.Data[i].(type) {
			case float64:
				if float32(x) != v || math.Signbit(x) != math.Signbit(float64(v)) {
					t.Fatalf("%s[%d]: python read %v, want %v", name, i, x, v)
				}
			case string:
				ok := x == "NaN" && math.IsNaN(float64(v)) || x == "-Inf" && math.IsInf(float64(v), -1) ||
					x == "Inf" && math.IsInf(float64(v), 1)
				if !ok {
					t.Fatalf("%s[%d]: python read %v, want %v", name, i, x, v)
				}
			default:
				t.Fatalf("%s[%d]: python printed %v", name, i, x)
			}
		}
	}
}

func TestSafetensorsWrittenByPython(t *testing.T) {
	py := python(t)
	p := filepath.Join(t.TempDir(), "ext.safetensors")
	if out, err := exec.Command(py, "-c", pyWriter, p).CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	got, meta, err := ReadSafetensors(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Tensor{
		"w.f16": {Shape: []int{2, 2}, Data: []float32{1, -0.5, 65504, 1.0 / (1 << 24)}},
		"w.f64": {Shape: []int{3}, Data: []float32{0.1, -2.5, 1e10}},
		"steps": {Shape: []int{}, Data: []float32{123456}},
		"bf":    {Shape: []int{2}, Data: []float32{1, -0.15625}},
	}
	if what, ok := tensorsEqual(got, want); !ok || meta["format"] != "pt" {
		t.Fatalf("read %v %v, want %v (%s)", got, meta, want, what)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
}
