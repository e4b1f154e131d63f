package train

import (
	"path/filepath"
	"testing"
)

// TestShippedConfigsValid: every config in configs/ parses (no unknown
// keys) and passes the checks made before data is opened.
func TestShippedConfigsValid(t *testing.T) {
	files, err := filepath.Glob("../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs found (%v)", err)
	}
	for _, f := range files {
		c, err := LoadConfigFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if err := c.validate(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
