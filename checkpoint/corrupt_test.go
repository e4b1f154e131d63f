package checkpoint

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// saveSteps saves deterministic checkpoints at the given steps in dir.
func saveSteps(t *testing.T, dir string, steps ...int64) []string {
	t.Helper()
	var paths []string
	for _, s := range steps {
		p, err := Save(dir, makeCheckpoint(s, 1))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// editManifest rewrites path/manifest.json through f.
func editManifest(t *testing.T, path string, f func(m map[string]any)) {
	t.Helper()
	mp := filepath.Join(path, ManifestName)
	b, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mp, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, file string, off int64) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0x10
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadLatestFallsBack(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, p string) // p: the newest checkpoint
		kind    error
		mention string
	}{
		{"flipped byte in tensor data", func(t *testing.T, p string) {
			flipByte(t, filepath.Join(p, "weights.safetensors"), -3)
		}, ErrChecksum, "weights.safetensors"},
		{"flipped byte in safetensors header", func(t *testing.T, p string) {
			flipByte(t, filepath.Join(p, "ema.safetensors"), 20)
		}, ErrChecksum, "ema.safetensors"},
		{"flipped byte in blob", func(t *testing.T, p string) {
			flipByte(t, filepath.Join(p, "ledger.json"), 0)
		}, ErrChecksum, "ledger.json"},
		{"truncated tensor file", func(t *testing.T, p string) {
			if err := os.Truncate(filepath.Join(p, "optimizer.safetensors"), 100); err != nil {
				t.Fatal(err)
			}
		}, ErrChecksum, "size 100 bytes"},
		{"empty tensor file", func(t *testing.T, p string) {
			if err := os.Truncate(filepath.Join(p, "weights.safetensors"), 0); err != nil {
				t.Fatal(err)
			}
		}, ErrChecksum, "weights.safetensors"},
		{"missing blob", func(t *testing.T, p string) {
			if err := os.Remove(filepath.Join(p, "state.json")); err != nil {
				t.Fatal(err)
			}
		}, ErrMissingFile, "state.json"},
		{"missing tensor file", func(t *testing.T, p string) {
			if err := os.Remove(filepath.Join(p, "weights.safetensors")); err != nil {
				t.Fatal(err)
			}
		}, ErrMissingFile, "weights.safetensors"},
		{"manifest missing", func(t *testing.T, p string) {
			if err := os.Remove(filepath.Join(p, ManifestName)); err != nil {
				t.Fatal(err)
			}
		}, ErrIncomplete, "no manifest.json"},
		{"empty directory", func(t *testing.T, p string) {
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}, ErrIncomplete, "no manifest.json"},
		{"garbage manifest", func(t *testing.T, p string) {
			if err := os.WriteFile(filepath.Join(p, ManifestName), []byte("{\"magic\": \"dptrain-che\x00"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, ErrBadManifest, "not valid JSON"},
		{"truncated manifest", func(t *testing.T, p string) {
			if err := os.Truncate(filepath.Join(p, ManifestName), 40); err != nil {
				t.Fatal(err)
			}
		}, ErrBadManifest, "not valid JSON"},
		{"bad magic", func(t *testing.T, p string) {
			editManifest(t, p, func(m map[string]any) { m["magic"] = "something-else" })
		}, ErrBadManifest, `"magic" is "something-else"`},
		{"no magic", func(t *testing.T, p string) {
			editManifest(t, p, func(m map[string]any) { delete(m, "magic") })
		}, ErrBadManifest, `missing field "magic"`},
		{"future version", func(t *testing.T, p string) {
			editManifest(t, p, func(m map[string]any) { m["format_version"] = 2 })
		}, ErrUnsupportedVersion, "newer dptrain"},
		{"version zero", func(t *testing.T, p string) {
			editManifest(t, p, func(m map[string]any) { m["format_version"] = 0 })
		}, ErrUnsupportedVersion, "format_version 0"},
		{"no step", func(t *testing.T, p string) {
			editManifest(t, p, func(m map[string]any) { delete(m, "step") })
		}, ErrBadManifest, `missing field "step"`},
		{"step disagrees with directory", func(t *testing.T, p string) {
			editManifest(t, p, func(m map[string]any) { m["step"] = 25 })
		}, ErrBadManifest, "named for step 20"},
		{"bad created", func(t *testing.T, p string) {
			editManifest(t, p, func(m map[string]any) { m["created"] = "yesterday" })
		}, ErrBadManifest, `"created"`},
		{"path escape in file list", func(t *testing.T, p string) {
			editManifest(t, p, func(m map[string]any) {
				m["files"].(map[string]any)["../ckpt-0000000010/state.json"] = map[string]any{"sha256": strings.Repeat("0", 64), "size": 1}
			})
		}, ErrBadManifest, "not a valid checkpoint file name"},
		{"bad sha field", func(t *testing.T, p string) {
			editManifest(t, p, func(m map[string]any) {
				m["files"].(map[string]any)["state.json"].(map[string]any)["sha256"] = "xyz"
			})
		}, ErrBadManifest, "64 hex digits"},
		{"checksummed but malformed safetensors", func(t *testing.T, p string) {
			// Valid checksum over a broken file: a writer bug, still caught.
			fp := filepath.Join(p, "ema.safetensors")
			bad := mkST(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8))
			fi, err := writeFileSync(fp+".new", func(w io.Writer) error { _, err := w.Write(bad); return err })
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(fp+".new", fp); err != nil {
				t.Fatal(err)
			}
			editManifest(t, p, func(m map[string]any) {
				m["files"].(map[string]any)["ema.safetensors"] = map[string]any{"sha256": fi.SHA256, "size": fi.Size}
			})
		}, ErrSafetensors, `ema.safetensors: tensor "a"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := saveSteps(t, dir, 10, 20)
			tc.corrupt(t, paths[1])

			err := Verify(paths[1])
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("Verify: %v; want %v mentioning %q", err, tc.kind, tc.mention)
			}
			ck, path, skipped, err := LoadLatest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if path != paths[0] || ck.Step != 10 {
				t.Fatalf("LoadLatest gave step %d at %s, want step 10", ck.Step, path)
			}
			checkSame(t, ck, makeCheckpoint(10, 1))
			if len(skipped) != 1 {
				t.Fatalf("skipped %v, want one error", skipped)
			}
			if !errors.Is(skipped[0], tc.kind) {
				t.Errorf("skipped error %v, want %v", skipped[0], tc.kind)
			}
			if msg := skipped[0].Error(); !strings.Contains(msg, paths[1]) || !strings.Contains(msg, tc.mention) {
				t.Errorf("skipped error %q should name %s and mention %q", msg, paths[1], tc.mention)
			}
		})
	}
}

func TestLoadLatestNoCheckpoint(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Join(dir, "absent")} {
		_, _, skipped, err := LoadLatest(d)
		if !errors.Is(err, ErrNoCheckpoint) || errors.Is(err, ErrNoValidCheckpoint) || len(skipped) != 0 {
			t.Errorf("LoadLatest(%s): %v, skipped %v; want ErrNoCheckpoint", d, err, skipped)
		}
	}
	// Only an interrupted write: still no checkpoint.
	if err := os.MkdirAll(filepath.Join(dir, ".tmp-ckpt-0000000005-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := LoadLatest(dir); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("with a stale temporary dir: %v, want ErrNoCheckpoint", err)
	}
}

func TestLoadLatestAllInvalid(t *testing.T) {
	dir := t.TempDir()
	paths := saveSteps(t, dir, 1, 2)
	flipByte(t, filepath.Join(paths[0], "weights.safetensors"), -1)
	if err := os.Remove(filepath.Join(paths[1], ManifestName)); err != nil {
		t.Fatal(err)
	}
	ck, _, skipped, err := LoadLatest(dir)
	if ck != nil || !errors.Is(err, ErrNoValidCheckpoint) || errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("got %v, %v; want ErrNoValidCheckpoint", ck, err)
	}
	if len(skipped) != 2 || !errors.Is(skipped[0], ErrIncomplete) || !errors.Is(skipped[1], ErrChecksum) {
		t.Errorf("skipped %v: want [incomplete step 2, checksum step 1]", skipped)
	}
}

func TestStaleTemporariesIgnoredAndCleaned(t *testing.T) {
	dir := t.TempDir()
	saveSteps(t, dir, 10)
	// A half-written newer checkpoint, as a crash mid-Save leaves it, and a
	// half-deleted one from a crash mid-Prune.
	tmp := filepath.Join(dir, ".tmp-ckpt-0000000020-777")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "weights.safetensors"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	del := filepath.Join(dir, ".del-ckpt-0000000005-abc")
	if err := os.MkdirAll(filepath.Join(del, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	ck, _, skipped, err := LoadLatest(dir)
	if err != nil || ck.Step != 10 || len(skipped) != 0 {
		t.Fatalf("LoadLatest: step %v, skipped %v, err %v; want step 10, nothing skipped", ck, skipped, err)
	}
	saveSteps(t, dir, 30)
	for _, p := range []string{tmp, del} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Save left %s: %v", p, err)
		}
	}
}

func TestReplaceInterruptedBetweenRenames(t *testing.T) {
	// A replacement of step 20 that crashed after renaming the old directory
	// aside and before renaming the new one in.
	dir := t.TempDir()
	paths := saveSteps(t, dir, 10, 20)
	aside := filepath.Join(dir, ".old-ckpt-0000000020-xyz")
	if err := os.Rename(paths[1], aside); err != nil {
		t.Fatal(err)
	}
	ck, path, skipped, err := LoadLatest(dir)
	if err != nil || ck.Step != 20 || path != aside || len(skipped) != 0 {
		t.Fatalf("LoadLatest: %v at %s, skipped %v, err %v; want step 20 from %s", ck, path, skipped, err, aside)
	}
	checkSame(t, ck, makeCheckpoint(20, 1))
	// The next Save puts it back under its name.
	saveSteps(t, dir, 30)
	es, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 || es[1].Path != paths[1] {
		t.Fatalf("after Save: %v, want step 20 restored at %s", es, paths[1])
	}
	if err := Verify(paths[1]); err != nil {
		t.Error(err)
	}
	// A set-aside copy next to its own ckpt dir is stale: ignored, cleaned.
	if err := os.Mkdir(filepath.Join(dir, ".old-ckpt-0000000030-q"), 0o755); err != nil {
		t.Fatal(err)
	}
	if es, _ := List(dir); len(es) != 3 || es[2].Path != filepath.Join(dir, DirName(30)) {
		t.Errorf("List: %v", es)
	}
	saveSteps(t, dir, 40)
	if des, _ := os.ReadDir(dir); len(des) != 4 {
		t.Errorf("%d entries after Save, want 4 checkpoints", len(des))
	}
}

func TestPrune(t *testing.T) {
	tests := []struct {
		name        string
		steps       []int64
		corrupt     []int64 // steps whose weights get a flipped byte
		keep        int
		wantRemain  []int64
		wantRemoved []int64
	}{
		{"keep 2 of 5", []int64{1, 2, 3, 4, 5}, nil, 2, []int64{4, 5}, []int64{1, 2, 3}},
		{"keep more than there are", []int64{1, 2}, nil, 3, []int64{1, 2}, nil},
		{"keep all", []int64{1, 2}, nil, 2, []int64{1, 2}, nil},
		{"corrupt newest kept for inspection", []int64{1, 2, 3, 4, 5}, []int64{4, 5}, 2, []int64{2, 3, 4, 5}, []int64{1}},
		{"corrupt old ones removed", []int64{1, 2, 3, 4}, []int64{1, 2}, 1, []int64{4}, []int64{1, 2, 3}},
		{"too few valid: nothing removed", []int64{1, 2, 3}, []int64{2, 3}, 2, []int64{1, 2, 3}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			saveSteps(t, dir, tc.steps...)
			for _, s := range tc.corrupt {
				flipByte(t, filepath.Join(dir, DirName(s), "weights.safetensors"), -1)
			}
			removed, err := Prune(dir, tc.keep)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, s := range tc.wantRemoved {
				want = append(want, filepath.Join(dir, DirName(s)))
			}
			if !slices.Equal(removed, want) {
				t.Errorf("removed %v, want %v", removed, want)
			}
			es, err := List(dir)
			if err != nil {
				t.Fatal(err)
			}
			var remain []int64
			for _, e := range es {
				remain = append(remain, e.Step)
			}
			if !slices.Equal(remain, tc.wantRemain) {
				t.Errorf("remaining %v, want %v", remain, tc.wantRemain)
			}
			if des, _ := os.ReadDir(dir); len(des) != len(tc.wantRemain) {
				t.Errorf("%d entries left, want %d (no leftovers)", len(des), len(tc.wantRemain))
			}
		})
	}
}
