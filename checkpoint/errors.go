package checkpoint

import (
	"errors"
	"fmt"
)

// UsageError is the panic value for misuse of the API: a nil checkpoint, a
// negative step, a tensor whose data length disagrees with its shape, a group
// or blob name that cannot be a file name. These are programming errors in
// the caller, not bad data.
type UsageError struct {
	Op  string
	Msg string
}

func (e *UsageError) Error() string { return "checkpoint: " + e.Op + ": " + e.Msg }

func usagePanic(op, format string, args ...any) {
	panic(&UsageError{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// Sentinel errors. Errors returned by this package wrap one of them (test with
// errors.Is) and name the directory, file, tensor or field concerned.
var (
	// ErrNoCheckpoint: the directory holds no checkpoint at all (or does not
	// exist). A trainer may start from scratch.
	ErrNoCheckpoint = errors.New("no checkpoint")
	// ErrNoValidCheckpoint: checkpoints exist but none is valid. A trainer
	// must not silently start from scratch: the privacy already spent would
	// be forgotten.
	ErrNoValidCheckpoint = errors.New("no valid checkpoint")
	// ErrIncomplete: a checkpoint directory without manifest.json (an
	// interrupted or foreign write).
	ErrIncomplete = errors.New("incomplete checkpoint")
	// ErrBadManifest: manifest.json is not valid JSON, has the wrong magic,
	// or lacks or misstates a field.
	ErrBadManifest = errors.New("bad manifest")
	// ErrUnsupportedVersion: the manifest was written by a newer (or an
	// unknown) format version.
	ErrUnsupportedVersion = errors.New("unsupported checkpoint format version")
	// ErrMissingFile: a file listed in the manifest does not exist.
	ErrMissingFile = errors.New("missing file")
	// ErrChecksum: a file's size or SHA-256 differs from the manifest.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrSafetensors: a safetensors file is malformed.
	ErrSafetensors = errors.New("malformed safetensors")
)

// SafetensorsError describes a malformed safetensors file or buffer. It wraps
// ErrSafetensors.
type SafetensorsError struct {
	Path   string // file name, "" for an in-memory buffer
	Tensor string // tensor concerned, "" for the file as a whole
	Msg    string
}

func (e *SafetensorsError) Error() string {
	s := "checkpoint: "
	if e.Path != "" {
		s += e.Path + ": "
	}
	if e.Tensor != "" {
		s += fmt.Sprintf("tensor %q: ", e.Tensor)
	}
	return s + e.Msg
}

// Unwrap makes errors.Is(err, ErrSafetensors) true.
func (e *SafetensorsError) Unwrap() error { return ErrSafetensors }

func stErr(tensor, format string, args ...any) error {
	return &SafetensorsError{Tensor: tensor, Msg: fmt.Sprintf(format, args...)}
}

// withPath returns err with Path set when it is a *SafetensorsError, or err
// wrapped with the path otherwise.
func withPath(path string, err error) error {
	var se *SafetensorsError
	if errors.As(err, &se) {
		c := *se
		c.Path = path
		return &c
	}
	return fmt.Errorf("checkpoint: %s: %w", path, err)
}
