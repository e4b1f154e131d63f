package fault

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOnlyTestsInjectFaults: no non-test source file of the module sets
// Injected (or any of its fields), so a production binary always runs the
// correct mechanism.
func TestOnlyTestsInjectFaults(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	// an assignment to Injected or a field (alone or in a list), or its
	// address taken
	set := regexp.MustCompile(`\bInjected(\.[A-Za-z]+)?\s*(,[^=]*)?(=|\+=|-=|\*=)[^=]|&\s*(fault\.)?Injected\b`)
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if set.MatchString(line) {
				t.Errorf("%s:%d sets a mechanism fault outside a test: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("scanned %d Go files under %s: not the module", files, root)
	}
	if Active() {
		t.Fatalf("a fault is set at start: %+v", Injected)
	}
}
