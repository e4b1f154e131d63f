package checkpoint

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Format constants written in every manifest.
const (
	Magic         = "dptrain-checkpoint"
	FormatVersion = 1
	// ManifestName is written last; its presence marks a complete write.
	ManifestName = "manifest.json"
	// WeightsGroup is the tensor group holding the model weights, written to
	// weights.safetensors for PyTorch users.
	WeightsGroup = "weights"
	// TensorExt is the file extension of a tensor group.
	TensorExt = ".safetensors"
)

// Checkpoint is everything a trainer needs to resume exactly. The package
// interprets only Step; the rest is written and read back byte for byte.
type Checkpoint struct {
	// Step is the number of completed steps (≥ 0). It names the directory.
	Step int64
	// Tensors maps a group to its named float32 tensors; each group is one
	// safetensors file "<group>.safetensors". Conventional groups:
	// "weights" (the model, WeightsGroup), "optimizer", "ema". Group names
	// match [a-z0-9][a-z0-9_-]{0,63}.
	Tensors map[string]map[string]Tensor
	// Blobs maps a file name to opaque contents ("state.json" for RNG and
	// sampler state, "ledger.json", "config.yaml", ...). Names match
	// [A-Za-z0-9][A-Za-z0-9._-]{0,127}, do not end in ".safetensors" and are
	// not "manifest.json".
	Blobs map[string][]byte
	// Meta is free-form string metadata kept in the manifest.
	Meta map[string]string
	// Created is the save time; Save uses time.Now when it is zero. Load
	// returns the time recorded in the manifest.
	Created time.Time
}

// Entry is a checkpoint directory found by List (not yet verified).
type Entry struct {
	Step int64
	Path string
}

// dirPrefix and the temporary prefixes. Readers only look at names that
// start with dirPrefix, or oldPrefix when the ckpt dir is absent.
const (
	dirPrefix = "ckpt-"
	tmpPrefix = ".tmp-ckpt-"
	oldPrefix = ".old-ckpt-"
	delPrefix = ".del-"
)

// DirName returns the directory name of a checkpoint at step:
// "ckpt-" and the step zero-padded to 10 digits.
func DirName(step int64) string {
	if step < 0 {
		usagePanic("DirName", "negative step %d", step)
	}
	return fmt.Sprintf("%s%010d", dirPrefix, step)
}

// parseDirName parses "ckpt-<step>" in canonical form.
func parseDirName(name string) (int64, bool) {
	digits, ok := strings.CutPrefix(name, dirPrefix)
	if !ok || len(digits) < 10 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	step, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || DirName(step) != name {
		return 0, false
	}
	return step, true
}

// parseOldName parses ".old-ckpt-<step>-<random>" (a checkpoint set aside
// while being replaced).
func parseOldName(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, ".old-")
	if !ok {
		return 0, false
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return 0, false
	}
	return parseDirName(rest[:i])
}

func isGroupName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func isBlobName(s string) bool {
	if len(s) == 0 || len(s) > 128 || s == ManifestName || strings.HasSuffix(s, TensorExt) {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-' && c != '.') {
			return false
		}
	}
	return true
}

// validate panics on API misuse (see UsageError).
func (ck *Checkpoint) validate(op string) {
	if ck == nil {
		usagePanic(op, "nil checkpoint")
	}
	if ck.Step < 0 {
		usagePanic(op, "negative step %d", ck.Step)
	}
	for g, ts := range ck.Tensors {
		if !isGroupName(g) {
			usagePanic(op, "tensor group %q is not a valid name (want [a-z0-9][a-z0-9_-]{0,63})", g)
		}
		for name, t := range ts {
			checkTensorName(op, name)
			if n := numel(op, name, t.Shape); n != len(t.Data) {
				usagePanic(op, "group %q tensor %q: %d values for shape %v (want %d)", g, name, len(t.Data), t.Shape, n)
			}
		}
	}
	for b := range ck.Blobs {
		if !isBlobName(b) {
			usagePanic(op, "blob %q is not a valid name (want [A-Za-z0-9][A-Za-z0-9._-]{0,127}, not %q, not ending in %q)", b, ManifestName, TensorExt)
		}
	}
}
