package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"os"
	"slices"
	"unicode/utf8"
)

// MaxHeaderSize bounds the JSON header of a safetensors file (100 MiB, as in
// the reference implementation); a larger declared length is an error.
const MaxHeaderSize = 100 << 20

// DecodeSafetensorsRaw parses a whole safetensors file held in b and returns
// its tensors, raw (Data aliases b: copy it to keep it past b's lifetime), and
// its metadata (nil when absent). It validates everything: the header length
// against the buffer, the header as one JSON object (valid UTF-8, no
// duplicate names, only whitespace after it), each tensor's dtype, shape and
// data_offsets (in range, size = elements × dtype size), and that the tensors
// tile the data buffer exactly, without gaps or overlaps. Errors are
// *SafetensorsError naming the tensor concerned.
func DecodeSafetensorsRaw(b []byte) (map[string]Raw, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, stErr("", "%d bytes: shorter than the 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, nil, stErr("", "header length %d exceeds the limit %d", n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return nil, nil, stErr("", "header length %d exceeds the %d bytes after the length field", n, len(b)-8)
	}
	hdr := b[8 : 8+n]
	buf := b[8+n:]
	if n < 2 || hdr[0] != '{' {
		return nil, nil, stErr("", "header does not start with '{'")
	}
	if !utf8.Valid(hdr) {
		return nil, nil, stErr("", "header is not valid UTF-8")
	}
	entries, meta, err := parseHeader(hdr)
	if err != nil {
		return nil, nil, err
	}
	type span struct {
		name       string
		begin, end int64
	}
	spans := make([]span, 0, len(entries))
	out := make(map[string]Raw, len(entries))
	for name, raw := range entries {
		t, begin, end, err := parseInfo(name, raw, int64(len(buf)))
		if err != nil {
			return nil, nil, err
		}
		t.Data = buf[begin:end:end]
		out[name] = t
		spans = append(spans, span{name, begin, end})
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.begin != b.begin {
			return cmpInt64(a.begin, b.begin)
		}
		if a.end != b.end {
			return cmpInt64(a.end, b.end)
		}
		return cmpString(a.name, b.name)
	})
	var prev int64
	for _, s := range spans {
		switch {
		case s.begin > prev:
			return nil, nil, stErr(s.name, "data_offsets begin at %d, leaving a gap after byte %d of the data buffer", s.begin, prev)
		case s.begin < prev:
			return nil, nil, stErr(s.name, "data_offsets [%d,%d] overlap another tensor ending at %d", s.begin, s.end, prev)
		}
		prev = s.end
	}
	if prev != int64(len(buf)) {
		return nil, nil, stErr("", "data buffer has %d bytes but the tensors cover %d", len(buf), prev)
	}
	return out, meta, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// parseHeader splits the header object into tensor entries and metadata.
func parseHeader(hdr []byte) (map[string]json.RawMessage, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, stErr("", "header is not a JSON object")
	}
	entries := make(map[string]json.RawMessage)
	var meta map[string]string
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, stErr("", "header JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, stErr("", "header JSON: unexpected %v", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, stErr(key, "header JSON: %v", err)
		}
		if key == metadataKey {
			if seenMeta {
				return nil, nil, stErr("", "duplicate %s", metadataKey)
			}
			seenMeta = true
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, nil, stErr("", "%s: want an object of strings: %v", metadataKey, err)
			}
			continue
		}
		if _, dup := entries[key]; dup {
			return nil, nil, stErr(key, "duplicate tensor name")
		}
		entries[key] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, stErr("", "header JSON object is not closed")
	}
	for _, c := range hdr[dec.InputOffset():] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return nil, nil, stErr("", "header has trailing data after the JSON object (want space padding)")
		}
	}
	return entries, meta, nil
}

// parseInfo validates one tensor entry against a data buffer of bufLen bytes.
func parseInfo(name string, raw json.RawMessage, bufLen int64) (Raw, int64, int64, error) {
	if name == "" {
		return Raw{}, 0, 0, stErr(name, "empty tensor name")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Raw{}, 0, 0, stErr(name, "want an object with dtype, shape, data_offsets")
	}
	var dt string
	var shape []int64
	var offs []int64
	for _, f := range []struct {
		key string
		dst any
	}{{"dtype", &dt}, {"shape", &shape}, {"data_offsets", &offs}} {
		v, ok := fields[f.key]
		if !ok {
			return Raw{}, 0, 0, stErr(name, "missing field %q", f.key)
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return Raw{}, 0, 0, stErr(name, "field %q: %v", f.key, err)
		}
	}
	d := DType(dt)
	size := int64(d.Size())
	if size == 0 {
		return Raw{}, 0, 0, stErr(name, "unknown dtype %q", dt)
	}
	if shape == nil {
		return Raw{}, 0, 0, stErr(name, "shape is null (want a list of dimensions)")
	}
	if len(offs) != 2 {
		return Raw{}, 0, 0, stErr(name, "data_offsets has %d values (want [begin,end])", len(offs))
	}
	begin, end := offs[0], offs[1]
	if begin < 0 || end < begin || end > bufLen {
		return Raw{}, 0, 0, stErr(name, "data_offsets [%d,%d] out of range for a %d-byte data buffer", begin, end, bufLen)
	}
	dims := make([]int, len(shape))
	for i, s := range shape {
		if s < 0 || int64(int(s)) != s {
			return Raw{}, 0, 0, stErr(name, "shape %v: dimension %d out of range", shape, s)
		}
		dims[i] = int(s)
	}
	// Bytes needed, saturating at 2^64-1 (no dimension is negative).
	need, over := uint64(size), false
	for _, s := range shape {
		hi, lo := bits.Mul64(need, uint64(s))
		if hi != 0 {
			over = true
		}
		need = lo
		if s == 0 {
			need, over = 0, false
			break
		}
	}
	if over {
		return Raw{}, 0, 0, stErr(name, "shape %v of %s needs over 2^64 bytes, data_offsets [%d,%d] hold %d", shape, d, begin, end, end-begin)
	}
	if need != uint64(end-begin) {
		return Raw{}, 0, 0, stErr(name, "shape %v of %s needs %d bytes, data_offsets [%d,%d] hold %d", shape, d, need, begin, end, end-begin)
	}
	return Raw{DType: d, Shape: dims}, begin, end, nil
}

// DecodeSafetensors is DecodeSafetensorsRaw followed by a conversion of every
// tensor to float32 (see ReadSafetensors for the conversions). The result
// does not alias b.
func DecodeSafetensors(b []byte) (map[string]Tensor, map[string]string, error) {
	raws, meta, err := DecodeSafetensorsRaw(b)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]Tensor, len(raws))
	for name, r := range raws {
		if !convertible(r.DType) {
			return nil, nil, stErr(name, "dtype %s cannot be converted to F32", r.DType)
		}
		data := make([]float32, len(r.Data)/r.DType.Size())
		toFloat32(data, r.DType, r.Data)
		out[name] = Tensor{Shape: r.Shape, Data: data}
	}
	return out, meta, nil
}

// ReadSafetensors reads a safetensors file, such as weights exported from
// PyTorch, and returns its tensors as float32 and its metadata. F32 is read
// as is; F16, BF16, BOOL and integers up to 2^24 in magnitude convert exactly;
// F64 and larger integers round to nearest; F8 types are refused. Errors name
// the file and the tensor.
func ReadSafetensors(path string) (map[string]Tensor, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: reading safetensors: %w", err)
	}
	ts, meta, err := DecodeSafetensors(b)
	if err != nil {
		return nil, nil, withPath(path, err)
	}
	return ts, meta, nil
}
