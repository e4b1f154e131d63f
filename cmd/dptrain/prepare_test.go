package main

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dptrain/data"
)

// pngTree writes root/<class>/<i>.png images of size h×w.
func pngTree(t *testing.T, root string, classes map[string]int, h, w int) {
	t.Helper()
	for c, n := range classes {
		os.MkdirAll(filepath.Join(root, c), 0o755)
		for i := range n {
			img := image.NewRGBA(image.Rect(0, 0, w, h))
			for k := range img.Pix {
				img.Pix[k] = uint8(k*7 + i)
			}
			var b bytes.Buffer
			png.Encode(&b, img)
			if err := os.WriteFile(filepath.Join(root, c, string(rune('a'+i))+".png"), b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestPrepareCommand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	pngTree(t, src, map[string]int{"dog": 3, "cat": 2}, 12, 16)
	os.WriteFile(filepath.Join(src, "cat", "junk.png"), []byte("\x89PNG\r\n\x1a\nnope"), 0o644)
	out := filepath.Join(dir, "out")

	var stdout, stderr bytes.Buffer
	code := run([]string{"prepare", "--src", src, "--out", out, "--image-size", "8"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), filepath.Join(src, "cat", "junk.png")) {
		t.Fatalf("bad image: exit %d, stderr %q", code, stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	code = run([]string{"prepare", "--src", src, "--out", out, "--image-size", "8", "--resize", "fit", "--skip-bad-images", "--workers", "2"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "prepared 5 images (3×8×8, 2 classes) into 1 shards") || !strings.Contains(stdout.String(), "skipped 1") ||
		!strings.Contains(stderr.String(), "skipped: "+filepath.Join(src, "cat", "junk.png")) {
		t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	ds, err := data.Open("prepared:"+out, "", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c, h, w := ds.Shape(); ds.Len() != 5 || c != 3 || h != 8 || w != 8 || strings.Join(ds.Classes(), ",") != "cat,dog" {
		t.Fatalf("prepared %d images %d×%d×%d %v", ds.Len(), c, h, w, ds.Classes())
	}
}

func TestPrepareCommandErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--out", dir}, 1, "--src is required"},
		{[]string{"--src", dir}, 1, "--out is required"},
		{[]string{"--src", dir, "--out", dir, "--resize", "stretch"}, 1, "--resize: resize mode \"stretch\": expected shorter-center or fit"},
		{[]string{"--src", dir, "--out", dir, "--image-size", "-3"}, 1, "--image-size -3"},
		{[]string{"--src", filepath.Join(dir, "none"), "--out", filepath.Join(dir, "o")}, 1, "none"},
		{[]string{"--src", dir, "--out", filepath.Join(dir, "o")}, 1, "no class folders"},
		{[]string{"--bogus"}, 2, "flag provided but not defined"},
		{[]string{"--src", dir, "extra"}, 2, "unexpected argument"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"prepare"}, tt.args...), &stdout, &stderr)
		if code != tt.code || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d stderr %q, want %d and %q", tt.args, code, stderr.String(), tt.code, tt.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"prepare", "-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "--image-size") {
		t.Fatalf("help: exit %d %q", code, stdout.String())
	}
}
