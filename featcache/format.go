package featcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// header is the JSON header of a cache file.
type header struct {
	FormatVersion int               `json:"format_version"`
	Key           string            `json:"key"`
	N             int               `json:"n"`
	Variants      int               `json:"variants"`
	Dim           int               `json:"dim"`
	Shape         []int             `json:"shape"`
	Meta          map[string]string `json:"meta,omitempty"`
	DataSHA256    string            `json:"data_sha256"`
}

// chunkHeader is the JSON header of a chunk file.
type chunkHeader struct {
	FormatVersion int    `json:"format_version"`
	Key           string `json:"key"`
	Fingerprint   string `json:"fingerprint"` // SHA-256 of the build's spec.json
	Chunk         int    `json:"chunk"`
	Lo            int    `json:"lo"`
	Hi            int    `json:"hi"`
	DataSHA256    string `json:"data_sha256"`
}

// dataOffset returns where the data section starts after a header of
// hlen bytes.
func dataOffset(hlen int) int {
	return (prefixLen + hlen + dataAlign - 1) / dataAlign * dataAlign
}

// encodePrefix returns everything before the data section: magic, header
// length, header SHA-256, header and zero padding.
func encodePrefix(magic string, hdr []byte) []byte {
	b := make([]byte, dataOffset(len(hdr)))
	copy(b, magic)
	binary.LittleEndian.PutUint64(b[8:], uint64(len(hdr)))
	sum := sha256.Sum256(hdr)
	copy(b[16:prefixLen], sum[:])
	copy(b[prefixLen:], hdr)
	return b
}

// corruptf returns an error wrapping ErrCorrupt, without the file name.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// readPrefix checks the prefix of a file of the given size (magic, header
// length, header checksum, zero padding) and returns the header bytes and
// the offset of the data section, which may lie at or beyond size only if
// the data section is empty or truncated; the caller checks the size.
func readPrefix(r io.ReaderAt, size int64, magic string) (hdr []byte, off int64, err error) {
	if size == 0 {
		return nil, 0, corruptf("empty file")
	}
	if size < prefixLen {
		return nil, 0, corruptf("file too short (%d bytes) for the %d-byte prefix", size, prefixLen)
	}
	var p [prefixLen]byte
	if _, err := r.ReadAt(p[:], 0); err != nil {
		return nil, 0, fmt.Errorf("reading prefix: %w", err)
	}
	if string(p[:8]) != magic {
		return nil, 0, corruptf("bad magic %q, want %q", p[:8], magic)
	}
	hlen := binary.LittleEndian.Uint64(p[8:16])
	if hlen == 0 || hlen > maxHeaderLen || int64(hlen) > size-prefixLen {
		return nil, 0, corruptf("header length %d out of range (file size %d, limit %d)", hlen, size, maxHeaderLen)
	}
	off = int64(dataOffset(int(hlen)))
	if off > size {
		return nil, 0, corruptf("file too short (%d bytes) for the header and its padding (%d bytes)", size, off)
	}
	buf := make([]byte, off-prefixLen)
	if _, err := r.ReadAt(buf, prefixLen); err != nil {
		return nil, 0, fmt.Errorf("reading header: %w", err)
	}
	hdr = buf[:hlen]
	if sum := sha256.Sum256(hdr); !bytes.Equal(sum[:], p[16:prefixLen]) {
		return nil, 0, corruptf("header checksum mismatch (SHA-256 of the %d header bytes)", hlen)
	}
	for _, c := range buf[hlen:] {
		if c != 0 {
			return nil, 0, corruptf("nonzero padding after the header")
		}
	}
	return hdr, off, nil
}

// decodeJSON decodes a header: first its format_version alone (so that a
// newer version is reported as such), then strictly (no unknown fields).
func decodeJSON(hdr []byte, v any) error {
	var ver struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(hdr, &ver); err != nil {
		return corruptf("header is not valid JSON: %v", err)
	}
	if ver.FormatVersion == nil {
		return corruptf("header lacks format_version")
	}
	if *ver.FormatVersion != FormatVersion {
		return fmt.Errorf("%w: format version %d, this package reads %d", ErrUnsupportedVersion, *ver.FormatVersion, FormatVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return corruptf("bad header: %v", err)
	}
	return nil
}

// decodeSHA256 parses a 64-digit lowercase hex SHA-256.
func decodeSHA256(field, s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != s {
		return nil, corruptf("header field %s = %q is not a lowercase hex SHA-256", field, s)
	}
	return b, nil
}

// checkedFile is a cache file whose structure (everything but the data
// checksum) has been verified.
type checkedFile struct {
	h        header
	spec     Spec
	dim      int
	off      int64 // data section
	featLen  int   // bytes of features
	labelLen int   // bytes of labels
	sum      []byte
}

// checkFile verifies a cache file's prefix, header, size and key. It does
// not read the data section.
func checkFile(r io.ReaderAt, size int64, key string) (*checkedFile, error) {
	hdr, off, err := readPrefix(r, size, fileMagic)
	if err != nil {
		return nil, err
	}
	cf := &checkedFile{off: off}
	if err := decodeJSON(hdr, &cf.h); err != nil {
		return nil, err
	}
	h := &cf.h
	cf.spec = Spec{Key: h.Key, N: h.N, Variants: h.Variants, Shape: h.Shape, Meta: h.Meta}
	if cf.dim, err = checkSpec(cf.spec); err != nil {
		return nil, corruptf("header: %v", err)
	}
	if h.Dim != cf.dim {
		return nil, corruptf("header: dim %d, but shape %v has %d elements", h.Dim, h.Shape, cf.dim)
	}
	if cf.sum, err = decodeSHA256("data_sha256", h.DataSHA256); err != nil {
		return nil, err
	}
	cf.featLen, cf.labelLen, _ = dataSizes(h.N, h.Variants, cf.dim)
	want := off + int64(cf.featLen) + int64(cf.labelLen)
	switch {
	case size < want:
		return nil, corruptf("truncated: file size %d, want %d", size, want)
	case size > want:
		return nil, corruptf("trailing bytes: file size %d, want %d", size, want)
	}
	if h.Key != key {
		return nil, fmt.Errorf("%w: built for key %s, want key %s", ErrStale, h.Key, key)
	}
	return cf, nil
}

// Exists reports whether path holds a cache for key whose prefix, header
// and size are valid. It reads only the header: it does not verify the
// data checksum, which Open does.
func Exists(path, key string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	_, err = checkFile(f, fi.Size(), key)
	return err == nil
}

// errPath prefixes err with the package and the file name.
func errPath(path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("featcache: %w", err) // already names the file
	}
	return fmt.Errorf("featcache: %s: %w", path, err)
}
