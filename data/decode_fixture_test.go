package data

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureGradient is the 40×30 RGB image the files in testdata were made
// from (by PIL: cmyk.jpg, progressive.jpg, grey.jpg; rgb16.png by hand, 16
// bits per sample, the green samples +1 in the low byte).
func fixtureGradient(x, y int) [3]uint8 {
	return [3]uint8{uint8(x * 6 % 256), uint8(y * 8 % 256), uint8((x + y) * 4 % 256)}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeFixtures decodes the colour models a real image set holds
// (CMYK JPEG, progressive JPEG, greyscale JPEG, 16-bit PNG) in the build
// under test and compares them with the gradient they encode.
func TestDecodeFixtures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		grey    bool    // the file holds the gradient's luma
		maxMean float64 // mean |Δ| allowed (lossy formats)
	}{
		{"cmyk.jpg", false, 3},
		{"progressive.jpg", false, 3},
		{"grey.jpg", true, 3},
		{"rgb16.png", false, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			pix, h, w, err := DecodeImage(readFixture(t, tc.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			if h != 30 || w != 40 {
				t.Fatalf("decoded %d×%d: expected 30×40", h, w)
			}
			var sum float64
			hw := h * w
			for y := range h {
				for x := range w {
					g := fixtureGradient(x, y)
					if tc.grey {
						l := (299*int(g[0]) + 587*int(g[1]) + 114*int(g[2]) + 500) / 1000
						g = [3]uint8{uint8(l), uint8(l), uint8(l)}
						if p := y*w + x; pix[p] != pix[hw+p] || pix[p] != pix[2*hw+p] {
							t.Fatalf("grey JPEG at (%d,%d): channels %d %d %d differ", x, y, pix[p], pix[hw+p], pix[2*hw+p])
						}
					}
					for c := range 3 {
						d := int(pix[c*hw+y*w+x]) - int(g[c])
						sum += float64(max(d, -d))
					}
				}
			}
			if mean := sum / float64(3*hw); mean > tc.maxMean {
				t.Errorf("mean |Δ| %.3f from the gradient: expected ≤ %v", mean, tc.maxMean)
			}
			// At a reduced size both builds agree on the size.
			if !strings.HasSuffix(tc.file, ".jpg") {
				return
			}
			_, rh, rw, err := DecodeImageAtLeast(readFixture(t, tc.file), nil, 15)
			if err != nil || rh != 15 || rw != 20 {
				t.Errorf("DecodeImageAtLeast(…, 15) = %d×%d, %v: expected 15×20 (1/2)", rh, rw, err)
			}
		})
	}
}

// setJPEGSize rewrites the size in a baseline JPEG's SOF0 header.
func setJPEGSize(t *testing.T, b []byte, w, h int) []byte {
	t.Helper()
	b = bytes.Clone(b)
	for i := 2; i+9 < len(b); {
		if b[i] != 0xff {
			t.Fatal("bad JPEG marker")
		}
		if b[i+1] == 0xc0 || b[i+1] == 0xc2 {
			binary.BigEndian.PutUint16(b[i+5:], uint16(h))
			binary.BigEndian.PutUint16(b[i+7:], uint16(w))
			return b
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
	t.Fatal("no SOF marker")
	return nil
}

// setPNGSize rewrites the size in a PNG's IHDR (and its CRC).
func setPNGSize(b []byte, w, h int) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint32(b[16:], uint32(w))
	binary.BigEndian.PutUint32(b[20:], uint32(h))
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// TestDecodeRefusesBadImages: each bad input is an error that says what is
// wrong, decided before a decompression bomb allocates anything.
func TestDecodeRefusesBadImages(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, smoothImage(64, 80), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	png16 := readFixture(t, "rgb16.png")
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated JPEG", good[:len(good)/2], ""},
		{"JPEG header only", good[:200], ""},
		{"JPEG bomb 20000×20000", setJPEGSize(t, good, 20000, 20000), "20000×20000"},
		{"JPEG of zero width", setJPEGSize(t, good, 0, 64), ""},
		{"PNG bomb 20000×20000", setPNGSize(png16, 20000, 20000), "20000×20000"},
		{"truncated PNG", png16[:len(png16)/2], ""},
		{"text file", []byte("hello, not an image\n"), "unknown image format"},
		{"empty file", nil, "unknown image format"},
		{"GIF", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), "unknown image format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held := decodeBudget.peak
			pix, h, w, err := DecodeImageAtLeast(tc.b, nil, 8)
			if err == nil {
				t.Fatalf("decoded %d×%d (%d bytes): expected an error", h, w, len(pix))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: expected it to mention %q", err, tc.want)
			}
			if strings.Contains(tc.name, "bomb") && decodeBudget.peak > held {
				t.Errorf("the bomb reserved decode memory (peak %d → %d): expected a refusal from the header", held, decodeBudget.peak)
			}
			t.Logf("%s: %v", tc.name, err)
			// The decoder is not left in a bad state.
			if _, h, w, err := DecodeImage(good, nil); err != nil || h != 64 || w != 80 {
				t.Errorf("a good JPEG after it: %d×%d, %v: expected 64×80", h, w, err)
			}
		})
	}
}

// darknetPhotos are the real photos Debian's darknet package ships
// (768×576 and similar), or nil when it is not installed.
func darknetPhotos(t testing.TB) map[string][]byte {
	t.Helper()
	names, _ := filepath.Glob("/usr/share/darknet/data/*.jpg")
	if len(names) == 0 {
		if os.Getenv("DPTRAIN_REQUIRE_PHOTOS") != "" {
			t.Fatal("DPTRAIN_REQUIRE_PHOTOS is set but /usr/share/darknet/data/*.jpg is missing (apt-get install darknet)")
		}
		t.Skip("no real photos: apt-get install darknet")
	}
	out := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(n)] = b
	}
	return out
}

// cifarJPEGs returns up to n JPEG members of the CIFAR-10 test tar.
func cifarJPEGs(t testing.TB, n int) map[string][]byte {
	t.Helper()
	f, err := os.Open("../../shared/data/cifar10-jpeg/test.tar")
	if err != nil {
		t.Skipf("CIFAR-10 JPEG tar: %v", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	out := map[string][]byte{}
	for len(out) < n {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, ".jpg") {
			continue
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
	return out
}

// pixelDiff returns the mean and largest absolute difference of a and b.
func pixelDiff(a, b []uint8) (mean float64, worst int) {
	var sum int
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
		worst = max(worst, d)
	}
	return float64(sum) / float64(len(a)), worst
}

// TestPrepareBadInputs runs prepare on a tar holding good images and one
// bad input of each kind the issue names: without --skip-bad-images each
// is an error naming the member; with it, a counted skip and every good
// image prepared; never a panic, never a file outside the output folder.
func TestPrepareBadInputs(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, smoothImage(30, 40), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	base := []member{{name: "cat/", typ: tar.TypeDir}, {name: "cat/a.jpg", body: good}, {name: "dog/b.jpg", body: good},
		{name: "cat/cmyk.jpg", body: readFixture(t, "cmyk.jpg")}, {name: "dog/rgb16.png", body: readFixture(t, "rgb16.png")}}
	for _, tc := range []struct {
		name string
		m    member
		want string // in the error
	}{
		{"truncated JPEG", member{name: "cat/trunc.jpg", body: good[:len(good)*2/3]}, "cat/trunc.jpg"},
		{"decompression bomb", member{name: "dog/bomb.jpg", body: setJPEGSize(t, good, 20000, 20000)}, "20000×20000"},
		{"PNG bomb", member{name: "dog/bomb.png", body: setPNGSize(readFixture(t, "rgb16.png"), 20000, 20000)}, "dog/bomb.png"},
		{"not an image", member{name: "cat/notes.jpg", body: []byte("meeting notes\n")}, "cat/notes.jpg"},
		{"not named as an image", member{name: "cat/readme.txt", body: []byte("hi")}, "cat/readme.txt"},
		{"member leaving the root", member{name: "../../escape.jpg", body: good}, "\"..\""},
		{"absolute member", member{name: "/etc/evil.jpg", body: good}, "absolute member name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "set.tar")
			writeFile(t, src, tarBytes(t, append(append([]member(nil), base...), tc.m)))
			out := filepath.Join(dir, "sub", "out")
			_, err := Prepare(PrepareOptions{Src: src, Out: out, ImageSize: 16})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("without skipping: %v: expected an error with %q", err, tc.want)
			}
			rep, err := Prepare(PrepareOptions{Src: src, Out: out, ImageSize: 16, SkipBadImages: true})
			if err != nil {
				t.Fatalf("with skipping: %v", err)
			}
			if rep.Manifest.Count != 4 || len(rep.Skipped) != 1 || rep.Manifest.Skipped != 1 {
				t.Fatalf("with skipping: %d images, %d skipped (%v): expected 4 and 1", rep.Manifest.Count, len(rep.Skipped), rep.Skipped)
			}
			// Nothing was written beside the tar or above the output.
			var extra []string
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && p != src && filepath.Dir(p) != out {
					extra = append(extra, p)
				}
				return nil
			})
			if len(extra) > 0 {
				t.Errorf("files written outside the output folder: %v", extra)
			}
		})
	}
}
