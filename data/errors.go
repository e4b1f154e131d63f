package data

import (
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"strings"
)

// FormatError reports bad input data: the file, the tar member or byte
// offset when known, and what was expected. Data that is valid but not
// supported is a FormatError too, for which errors.Is(err,
// errors.ErrUnsupported) is true.
type FormatError struct {
	File   string // path of the file (or directory) that is wrong
	Member string // tar member or image file inside File, if any
	Offset int64  // byte offset in File, or -1 when not meaningful
	Msg    string // what is wrong / what was expected
	Err    error  // underlying error, if any
	// Unsupported marks data that is valid but uses a feature this
	// package does not read (an idx file of floats, a prepared manifest
	// of a newer version). See Is.
	Unsupported bool
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Member != "" {
		b.WriteString(": ")
		b.WriteString(e.Member)
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, ": offset %d", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *FormatError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, errors.ErrUnsupported) report data that is valid
// but not supported: e.Unsupported, or an image that image/jpeg or
// image/png refuse with their UnsupportedError. Corrupt data is not
// unsupported.
func (e *FormatError) Is(target error) bool {
	if target != errors.ErrUnsupported {
		return false
	}
	var je jpeg.UnsupportedError
	var pe png.UnsupportedError
	return e.Unsupported || errors.As(e.Err, &je) || errors.As(e.Err, &pe)
}

func formatErr(file string, off int64, format string, args ...any) *FormatError {
	return &FormatError{File: file, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// UsageError is the panic value for misuse of this package's API (shapes,
// indices, buffer sizes): a programming error, not bad data.
type UsageError string

func (e UsageError) Error() string { return "data: " + string(e) }

func usagef(format string, args ...any) UsageError {
	return UsageError(fmt.Sprintf(format, args...))
}

// BadImage is one image skipped under OpenOptions.SkipBadImages.
type BadImage struct {
	File   string // the directory image file or the tar archive
	Member string // tar member, empty for a directory image
	Err    error
}

func (b BadImage) String() string {
	if b.Member != "" {
		return b.File + ": " + b.Member + ": " + b.Err.Error()
	}
	return b.File + ": " + b.Err.Error()
}

// Skipper is implemented by datasets that may have skipped bad images while
// opening (ImageFolder with SkipBadImages).
type Skipper interface {
	Skipped() []BadImage
}
