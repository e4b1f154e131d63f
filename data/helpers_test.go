package data

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// cifarJPEGDir is the shared CIFAR-10 JPEG folder (see ../../shared/README.md).
const cifarJPEGDir = "../../shared/data/cifar10-jpeg"

// cifarTar returns the path of the shared CIFAR-10 tar for split; it fails
// the test in CI (CI=true) and skips it elsewhere when the folder is missing.
func cifarTar(tb testing.TB, split string) string {
	tb.Helper()
	p := filepath.Join(cifarJPEGDir, split+".tar")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CIFAR-10 JPEG data missing in CI: %v", err)
		}
		tb.Skipf("CIFAR-10 JPEG data not available (%v); skipping", err)
	}
	return p
}

func sqrtF(x float64) float64 { return math.Sqrt(x) }

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}
