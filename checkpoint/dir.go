package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// List returns the checkpoint directories in dir, oldest first, without
// verifying them: every "ckpt-<step>", and a checkpoint set aside by a
// replacement that crashed (".old-ckpt-<step>-…") when its step has no
// "ckpt-<step>". Temporary directories of interrupted writes are ignored. A
// missing dir gives an empty list.
func List(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: listing checkpoints: %w", err)
	}
	byStep := make(map[int64]string)
	var old []Entry
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		name := de.Name()
		if step, ok := parseDirName(name); ok {
			byStep[step] = filepath.Join(dir, name)
		} else if step, ok := parseOldName(name); ok {
			old = append(old, Entry{Step: step, Path: filepath.Join(dir, name)})
		}
	}
	for _, e := range old { // ReadDir sorts by name: the first one wins
		if _, ok := byStep[e.Step]; !ok {
			byStep[e.Step] = e.Path
		}
	}
	out := make([]Entry, 0, len(byStep))
	for step, p := range byStep {
		out = append(out, Entry{Step: step, Path: p})
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmpInt64(a.Step, b.Step) })
	return out, nil
}

// LoadLatest loads the newest valid checkpoint in dir. Newer checkpoints that
// fail Load are reported in skipped, newest first, each error naming the
// checkpoint and why. With no checkpoint at all err wraps ErrNoCheckpoint
// (start from scratch); when every checkpoint is invalid err wraps
// ErrNoValidCheckpoint (do not start from scratch: privacy was spent).
func LoadLatest(dir string) (ck *Checkpoint, path string, skipped []error, err error) {
	es, err := List(dir)
	if err != nil {
		return nil, "", nil, err
	}
	if len(es) == 0 {
		return nil, "", nil, fmt.Errorf("checkpoint: %s: %w", dir, ErrNoCheckpoint)
	}
	for i := len(es) - 1; i >= 0; i-- {
		ck, err := Load(es[i].Path)
		if err == nil {
			return ck, es[i].Path, skipped, nil
		}
		skipped = append(skipped, err)
	}
	return nil, "", skipped, fmt.Errorf("checkpoint: %s: %w: all %d checkpoints are invalid; newest: %v",
		dir, ErrNoValidCheckpoint, len(es), skipped[0])
}

// Prune keeps the newest keep valid checkpoints in dir and removes every
// checkpoint, valid or not, older than the oldest one kept. Invalid
// checkpoints newer than that are left for inspection (LoadLatest reports
// them). If fewer than keep are valid, nothing is removed. Each removal first
// renames the directory aside (".del-ckpt-…"), so a crash mid-removal never
// leaves a half-deleted checkpoint visible. It returns the removed paths.
// keep < 1 panics.
func Prune(dir string, keep int) (removed []string, err error) {
	if keep < 1 {
		usagePanic("Prune", "keep = %d (want ≥ 1)", keep)
	}
	es, err := List(dir)
	if err != nil {
		return nil, err
	}
	valid := 0
	cut := -1 // es[:cut] are removed
	for i := len(es) - 1; i >= 0; i-- {
		if Verify(es[i].Path) == nil {
			valid++
			if valid == keep {
				cut = i
				break
			}
		}
	}
	if cut <= 0 {
		return nil, nil
	}
	for _, e := range es[:cut] {
		aside, err := setAside(e.Path, ".del-")
		if err != nil {
			return removed, fmt.Errorf("checkpoint: removing %s: %w", e.Path, err)
		}
		if err := os.RemoveAll(aside); err != nil {
			return removed, fmt.Errorf("checkpoint: removing %s: %w", e.Path, err)
		}
		removed = append(removed, e.Path)
	}
	return removed, SyncDir(dir)
}
