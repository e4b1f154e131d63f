package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpts") // created by Save
	ck := makeCheckpoint(1234, 2)
	orig := makeCheckpoint(1234, 2) // an identical copy, to check ck is unmodified
	path, err := Save(dir, ck)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "ckpt-0000001234"); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	checkSame(t, ck, orig)

	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, got, ck)

	// The layout: one file per group and blob, the manifest, nothing else.
	des, err := os.ReadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	want := []string{"config.yaml", "ema.safetensors", "empty.bin", "ledger.json", "manifest.json",
		"optimizer.safetensors", "state.json", "weights.safetensors"}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Errorf("%d entries in %s, want only the checkpoint", len(des), dir)
	}

	// The manifest, checked independently of Load.
	mb, err := os.ReadFile(filepath.Join(path, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Magic         string `json:"magic"`
		FormatVersion int    `json:"format_version"`
		Step          int64  `json:"step"`
		Created       string `json:"created"`
		Files         map[string]struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"files"`
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	if m.Magic != "dptrain-checkpoint" || m.FormatVersion != 1 || m.Step != 1234 || m.Created != "2024-05-06T07:08:09.123456789Z" {
		t.Errorf("manifest %+v", m)
	}
	if len(m.Files) != len(want)-1 {
		t.Errorf("manifest lists %d files, want %d", len(m.Files), len(want)-1)
	}
	for name, fi := range m.Files {
		b, err := os.ReadFile(filepath.Join(path, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != fi.SHA256 || int64(len(b)) != fi.Size {
			t.Errorf("%s: manifest says %s/%d, file is %x/%d", name, fi.SHA256, fi.Size, sum, len(b))
		}
	}

	// weights.safetensors stands alone for other tools.
	ws, meta, err := ReadSafetensors(filepath.Join(path, "weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if what, ok := tensorsEqual(ws, ck.Tensors["weights"]); !ok {
		t.Errorf("weights.safetensors differs: %s", what)
	}
	if meta["format"] != "pt" || meta["dptrain.step"] != "1234" || meta["dptrain.group"] != "weights" {
		t.Errorf("weights metadata %v", meta)
	}
	if err := Verify(path); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestSaveMinimal(t *testing.T) {
	// No tensors, no blobs, no meta, step 0.
	dir := t.TempDir()
	p, err := Save(dir, &Checkpoint{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != 0 || got.Tensors != nil || got.Blobs != nil || got.Meta != nil || got.Created.IsZero() {
		t.Errorf("loaded %+v", got)
	}
}

func TestSaveReplacesSameStep(t *testing.T) {
	dir := t.TempDir()
	a := makeCheckpoint(5, 1)
	if _, err := Save(dir, a); err != nil {
		t.Fatal(err)
	}
	b := makeCheckpoint(5, 1)
	b.Blobs["state.json"] = []byte(`{"second":true}`)
	b.Tensors["weights"]["fc.bias"].Data[0] = 42
	p, err := Save(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, got, b)
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Errorf("%d entries after replacing, want 1", len(des))
	}
}

func TestSaveMisuse(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]*Checkpoint{
		"nil":            nil,
		"negative step":  {Step: -1},
		"group upper":    {Tensors: map[string]map[string]Tensor{"Weights": {}}},
		"group slash":    {Tensors: map[string]map[string]Tensor{"a/b": {}}},
		"group empty":    {Tensors: map[string]map[string]Tensor{"": {}}},
		"group dot":      {Tensors: map[string]map[string]Tensor{".x": {}}},
		"tensor shape":   {Tensors: map[string]map[string]Tensor{"weights": {"a": {Shape: []int{3}, Data: []float32{1}}}}},
		"tensor name":    {Tensors: map[string]map[string]Tensor{"weights": {"": {Shape: []int{}, Data: []float32{1}}}}},
		"blob manifest":  {Blobs: map[string][]byte{"manifest.json": nil}},
		"blob tensorext": {Blobs: map[string][]byte{"x.safetensors": nil}},
		"blob hidden":    {Blobs: map[string][]byte{".hidden": nil}},
		"blob dotdot":    {Blobs: map[string][]byte{"..": nil}},
		"blob path":      {Blobs: map[string][]byte{"a/b": nil}},
		"blob empty":     {Blobs: map[string][]byte{"": nil}},
	}
	for name, ck := range tests {
		t.Run(name, func(t *testing.T) { mustPanicUsage(t, func() { Save(dir, ck) }) })
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("misuse left %d entries", len(des))
	}
	mustPanicUsage(t, func() { DirName(-1) })
	mustPanicUsage(t, func() { Prune(dir, 0) })
}

func TestDirNames(t *testing.T) {
	tests := []struct {
		name string
		step int64
		ok   bool
	}{
		{"ckpt-0000000000", 0, true},
		{"ckpt-0000000123", 123, true},
		{"ckpt-12345678901", 12345678901, true},
		{"ckpt-123", 0, false},
		{"ckpt-00000000123", 0, false}, // not canonical
		{"ckpt-000000012a", 0, false},
		{"ckpt--000000012", 0, false},
		{".tmp-ckpt-0000000001-123", 0, false},
		{"xckpt-0000000001", 0, false},
	}
	for _, tc := range tests {
		step, ok := parseDirName(tc.name)
		if ok != tc.ok || step != tc.step {
			t.Errorf("parseDirName(%q) = %d, %v; want %d, %v", tc.name, step, ok, tc.step, tc.ok)
		}
		if tc.ok && DirName(tc.step) != tc.name {
			t.Errorf("DirName(%d) = %q, want %q", tc.step, DirName(tc.step), tc.name)
		}
	}
	if s, ok := parseOldName(".old-ckpt-0000000042-98765"); !ok || s != 42 {
		t.Errorf("parseOldName = %d, %v", s, ok)
	}
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	if es, err := List(filepath.Join(dir, "absent")); err != nil || len(es) != 0 {
		t.Fatalf("List of a missing dir: %v, %v", es, err)
	}
	for _, s := range []int64{30, 2, 100} {
		if _, err := Save(dir, makeCheckpoint(s, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Noise that List must ignore.
	for _, n := range []string{".tmp-ckpt-0000000200-1", "ckpt-7", "other", ".del-ckpt-0000000001-5"} {
		if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ckpt-0000000300"), nil, 0o644); err != nil { // a file, not a dir
		t.Fatal(err)
	}
	es, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var steps []int64
	for _, e := range es {
		steps = append(steps, e.Step)
		if e.Path != filepath.Join(dir, DirName(e.Step)) {
			t.Errorf("path %s for step %d", e.Path, e.Step)
		}
	}
	if !slices.Equal(steps, []int64{2, 30, 100}) {
		t.Errorf("steps %v, want [2 30 100]", steps)
	}
}
