package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// lockName is the lock file in --out: one process trains in a folder at a
// time (see lockOut).
const lockName = ".dptrain.lock"

// checkOutFolder refuses an --out folder that already holds files but no
// dptrain run (no checkpoints/ and no privacy journal): the run would
// overwrite report.md, summary.json, metrics.jsonl and the plots there
// without a word. An empty or missing folder, or one holding a run (which
// is then resumed or refused by resume), is accepted.
func checkOutFolder(out string) error {
	ents, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	var others []string
	for _, e := range ents {
		switch e.Name() {
		case "checkpoints", journalName:
			return nil
		case lockName:
			continue
		}
		others = append(others, e.Name())
	}
	if len(others) == 0 {
		return nil
	}
	shown := others
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("… %d more", len(others)-5))
	}
	return fmt.Errorf("--out %s already holds files (%s) but no dptrain run (no checkpoints/ or %s): a run would overwrite report.md, summary.json, metrics.jsonl and plots there; use a new or empty folder", filepath.Clean(out), strings.Join(shown, ", "), journalName)
}
