package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dptrain/data"
)

// TestProgressBar drives the renderer with a fake clock: lines every 30 s
// with the rate of this run (not counting resumed images) and the ETA; a
// bar redrawn in place; nothing with none.
func TestProgressBar(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want []string
	}{
		{"lines", []string{"prepare:  40.0%  400/1000 images  10 images/s  ETA 1m0s  skipped 2  (resumed at 100)\n"}},
		{"bar", []string{"\r[============                  ]  40.0%  400/1000 images  10 images/s  ETA 1m0s", "100.0%", "\n"}},
		{"none", nil},
	} {
		var out bytes.Buffer
		b, err := newProgressBar(tc.mode, &out)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1000, 0)
		b.timeNow = func() time.Time { return now }
		b.start, b.last = now, now
		for done := 101; done <= 400; done++ {
			now = now.Add(100 * time.Millisecond)
			b.update(data.PrepareProgress{Done: done, Total: 1000, Skipped: 2, Resumed: 100})
		}
		if tc.mode == "lines" && strings.Count(out.String(), "\n") != 1 {
			t.Errorf("lines: %q: expected one line in 30 s", out.String())
		}
		b.update(data.PrepareProgress{Done: 1000, Total: 1000, Skipped: 2, Resumed: 100})
		b.finish()
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: %q: expected %q", tc.mode, out.String(), w)
			}
		}
		if tc.mode == "none" && out.Len() != 0 {
			t.Errorf("none: printed %q", out.String())
		}
	}
	if _, err := newProgressBar("fancy", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--progress \"fancy\"") {
		t.Errorf("bad mode: %v", err)
	}
}

// TestPrepareCommandShortSide: --short-side writes the variable layout,
// --progress bar draws the final 100%, and both sizes at once are refused.
func TestPrepareCommandShortSide(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	pngTree(t, src, map[string]int{"dog": 3, "cat": 2}, 12, 16)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"prepare", "--src", src, "--out", out, "--short-side", "8", "--progress", "bar"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "prepared 5 images (3 channels, shorter side 8, longer up to 11, 2 classes)") || !strings.Contains(stderr.String(), "100.0%  5/5 images") {
		t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	ds, err := data.Open("prepared:"+out, "", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	if h, w, err := ds.(data.SizedImager).ImageSized(0, make([]uint8, 3*8*11)); h != 8 || w != 11 || err != nil {
		t.Fatalf("stored %d×%d, %v: expected 8×11", h, w, err)
	}
	stderr.Reset()
	if code := run([]string{"prepare", "--src", src, "--out", filepath.Join(dir, "o2"), "--short-side", "8", "--image-size", "8"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "expected one of them") {
		t.Fatalf("both sizes: exit %d %q", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "o2")); !os.IsNotExist(err) {
		t.Errorf("refused prepare left %s", filepath.Join(dir, "o2"))
	}
}
