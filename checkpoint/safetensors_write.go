package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Tensor is a dense row-major float32 array: len(Data) equals the product of
// Shape (1 for an empty Shape, a scalar).
type Tensor struct {
	Shape []int
	Data  []float32
}

// Raw is a tensor of any safetensors element type, its elements stored
// little-endian in Data (len(Data) = product of Shape × DType.Size()).
type Raw struct {
	DType DType
	Shape []int
	Data  []byte
}

// metadataKey is the reserved header key for string metadata.
const metadataKey = "__metadata__"

// numel returns the product of shape (0 when a dimension is 0, whatever the
// others), panicking (op) on a negative dimension or an overflow.
func numel(op, name string, shape []int) int {
	for _, d := range shape {
		if d < 0 {
			usagePanic(op, "tensor %q: negative dimension in shape %v", name, shape)
		}
		if d == 0 {
			return 0
		}
	}
	n := 1
	for _, d := range shape {
		if n > math.MaxInt/d {
			usagePanic(op, "tensor %q: shape %v overflows", name, shape)
		}
		n *= d
	}
	return n
}

func checkTensorName(op, name string) {
	if name == "" || name == metadataKey || !utf8.ValidString(name) {
		usagePanic(op, "invalid tensor name %q (want non-empty UTF-8, not %q)", name, metadataKey)
	}
}

// entry is one tensor to encode: its header fields and how to write its data.
type entry struct {
	name   string
	dtype  DType
	shape  []int
	nbytes int64
	write  func(w io.Writer, buf []byte) error
}

// EncodeSafetensors writes tensors and meta to w in the safetensors format,
// all as F32, names in sorted (byte) order, the header padded with spaces to
// a multiple of 8 bytes. It returns the number of bytes written. Inputs are
// not modified. A tensor whose data length disagrees with its shape, or an
// empty or reserved name, panics with *UsageError.
func EncodeSafetensors(w io.Writer, tensors map[string]Tensor, meta map[string]string) (int64, error) {
	const op = "EncodeSafetensors"
	es := make([]entry, 0, len(tensors))
	for name, t := range tensors {
		checkTensorName(op, name)
		n := numel(op, name, t.Shape)
		if len(t.Data) != n {
			usagePanic(op, "tensor %q: %d values for shape %v (want %d)", name, len(t.Data), t.Shape, n)
		}
		data := t.Data
		es = append(es, entry{name: name, dtype: F32, shape: t.Shape, nbytes: 4 * int64(n),
			write: func(w io.Writer, buf []byte) error { return writeF32(w, buf, data) }})
	}
	return encode(w, es, meta)
}

// EncodeSafetensorsRaw is EncodeSafetensors for tensors of any known element
// type, given as little-endian bytes.
func EncodeSafetensorsRaw(w io.Writer, tensors map[string]Raw, meta map[string]string) (int64, error) {
	const op = "EncodeSafetensorsRaw"
	es := make([]entry, 0, len(tensors))
	for name, t := range tensors {
		checkTensorName(op, name)
		size := t.DType.Size()
		if size == 0 {
			usagePanic(op, "tensor %q: unknown dtype %q", name, t.DType)
		}
		n := numel(op, name, t.Shape)
		if n > math.MaxInt/size || len(t.Data) != n*size {
			usagePanic(op, "tensor %q: %d bytes for %s shape %v (want %d×%d)", name, len(t.Data), t.DType, t.Shape, n, size)
		}
		data := t.Data
		es = append(es, entry{name: name, dtype: t.DType, shape: t.Shape, nbytes: int64(len(data)),
			write: func(w io.Writer, _ []byte) error { _, err := w.Write(data); return err }})
	}
	return encode(w, es, meta)
}

func encode(w io.Writer, es []entry, meta map[string]string) (int64, error) {
	for k, v := range meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			usagePanic("EncodeSafetensors", "metadata %q: %q is not valid UTF-8", k, v)
		}
	}
	slices.SortFunc(es, func(a, b entry) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	header := buildHeader(es, meta)
	var total int64
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	n, err := w.Write(lenBuf[:])
	total += int64(n)
	if err != nil {
		return total, err
	}
	n, err = w.Write(header)
	total += int64(n)
	if err != nil {
		return total, err
	}
	buf := make([]byte, 256<<10)
	for _, e := range es {
		if err := e.write(w, buf); err != nil {
			return total, err
		}
		total += e.nbytes
	}
	return total, nil
}

// buildHeader returns the JSON header padded with spaces so that 8+len is a
// multiple of 8.
func buildHeader(es []entry, meta map[string]string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	if meta != nil {
		b.WriteString(`"__metadata__":{`)
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, meta[k])
		}
		b.WriteByte('}')
		first = false
	}
	var off int64
	for _, e := range es {
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSONString(&b, e.name)
		b.WriteString(`:{"dtype":"`)
		b.WriteString(string(e.dtype))
		b.WriteString(`","shape":[`)
		for i, d := range e.shape {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		b.WriteString(`],"data_offsets":[`)
		b.WriteString(strconv.FormatInt(off, 10))
		b.WriteByte(',')
		off += e.nbytes
		b.WriteString(strconv.FormatInt(off, 10))
		b.WriteString("]}")
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes()
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes; invalid UTF-8 becomes U+FFFD
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

// writeF32 writes data little-endian through buf (len a multiple of 4).
func writeF32(w io.Writer, buf []byte, data []float32) error {
	if nativeLittle {
		_, err := w.Write(f32Bytes(data)) // io.Writer may neither modify nor keep it
		return err
	}
	per := len(buf) / 4
	for len(data) > 0 {
		k := min(per, len(data))
		for i, v := range data[:k] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*k]); err != nil {
			return err
		}
		data = data[k:]
	}
	return nil
}
