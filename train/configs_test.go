package train

import (
	"os"
	"path/filepath"
	"strings"
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
		// Private configs train in the default secure mode and say which
		// mode their README row used.
		if c.IsPrivate() {
			text, _ := os.ReadFile(f)
			if c.Noise != "" {
				t.Errorf("%s sets noise: %s; shipped configs must use the secure default", f, c.Noise)
			}
			if !strings.Contains(string(text), "# Randomness: ") {
				t.Errorf("%s does not say which noise mode its README row used", f)
			}
		}
	}
}
