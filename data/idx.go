package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxIDXBytes bounds the payload an idx header may claim (16 GiB).
const maxIDXBytes = 1 << 34

// IDX is a parsed idx file of unsigned bytes (type 0x08).
type IDX struct {
	Dims []int
	Data []uint8
}

// ReadIDX reads an idx file of unsigned bytes, gzip'd or not (detected from
// the content). The header's dimensions must match the payload exactly.
func ReadIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseIDX(f, path)
}

// ParseIDX parses an idx stream (gzip'd or not); name is used in errors.
func ParseIDX(r io.Reader, name string) (*IDX, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &FormatError{File: name, Offset: 0, Msg: "bad gzip header", Err: err}
		}
		defer zr.Close()
		return parseIDX(zr, name, " (uncompressed)")
	}
	return parseIDX(br, name, "")
}

func parseIDX(r io.Reader, name, where string) (*IDX, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, &FormatError{File: name, Offset: 0, Msg: "truncated idx header: expected 4 magic bytes" + where, Err: err}
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, formatErr(name, 0, "bad idx magic %x: expected 00 00 <type> <rank>%s", hdr, where)
	}
	if hdr[2] != 0x08 {
		err := formatErr(name, 2, "idx data type 0x%02x: expected 0x08 (unsigned byte)%s", hdr[2], where)
		err.Unsupported = isIDXType(hdr[2])
		return nil, err
	}
	rank := int(hdr[3])
	if rank == 0 {
		return nil, formatErr(name, 3, "idx rank 0: expected at least 1 dimension%s", where)
	}
	dimBytes := make([]byte, 4*rank)
	if _, err := io.ReadFull(r, dimBytes); err != nil {
		return nil, &FormatError{File: name, Offset: 4, Msg: fmt.Sprintf("truncated idx header: expected %d dimensions%s", rank, where), Err: err}
	}
	dims := make([]int, rank)
	total := int64(1)
	for i := range dims {
		d := int64(binary.BigEndian.Uint32(dimBytes[4*i:]))
		dims[i] = int(d)
		if d > maxIDXBytes || (d > 0 && total > maxIDXBytes/d) {
			return nil, formatErr(name, int64(4+4*i), "idx dimensions %v claim more than %d bytes%s", dims[:i+1], int64(maxIDXBytes), where)
		}
		total *= d
	}
	off := int64(4 + 4*rank)
	// ReadAll grows gradually, so a header that lies about a huge payload
	// costs only what the file really holds.
	data, err := io.ReadAll(io.LimitReader(r, total+1))
	if err != nil {
		return nil, &FormatError{File: name, Offset: off + int64(len(data)), Msg: "reading idx payload" + where, Err: err}
	}
	if int64(len(data)) < total {
		return nil, formatErr(name, off+int64(len(data)), "truncated idx file: header %v says %d data bytes, file has %d%s", dims, total, len(data), where)
	}
	if int64(len(data)) > total {
		return nil, formatErr(name, off+total, "idx header %v says %d data bytes, file has more%s", dims, total, where)
	}
	return &IDX{Dims: dims, Data: data}, nil
}

// OpenIDX opens an image idx file (rank 3: count × rows × cols) and a label
// idx file (rank 1). Labels must be in [0, 256); the class count is the
// largest label + 1 and class names are the decimal labels.
func OpenIDX(imagesPath, labelsPath string) (Dataset, error) {
	return openIDX(imagesPath, labelsPath, 0)
}

func openIDX(imagesPath, labelsPath string, numClasses int) (*memDataset, error) {
	im, err := ReadIDX(imagesPath)
	if err != nil {
		return nil, err
	}
	lb, err := ReadIDX(labelsPath)
	if err != nil {
		return nil, err
	}
	return idxDataset(im, lb, imagesPath, labelsPath, numClasses)
}

func idxDataset(im, lb *IDX, imagesPath, labelsPath string, numClasses int) (*memDataset, error) {
	if len(im.Dims) != 3 {
		return nil, formatErr(imagesPath, 3, "idx images have rank %d: expected 3 (count, rows, cols)", len(im.Dims))
	}
	if len(lb.Dims) != 1 {
		return nil, formatErr(labelsPath, 3, "idx labels have rank %d: expected 1 (count)", len(lb.Dims))
	}
	n, h, w := im.Dims[0], im.Dims[1], im.Dims[2]
	if lb.Dims[0] != n {
		return nil, formatErr(labelsPath, 4, "%d labels for %d images in %s: expected equal counts", lb.Dims[0], n, imagesPath)
	}
	if n > 0 && (h == 0 || w == 0) {
		return nil, formatErr(imagesPath, 8, "idx images of size %d×%d: expected non-empty images", h, w)
	}
	labels := make([]int32, n)
	maxLabel := -1
	for i, l := range lb.Data {
		if numClasses > 0 && int(l) >= numClasses {
			return nil, formatErr(labelsPath, int64(8+i), "label %d of example %d out of range: expected [0,%d)", l, i, numClasses)
		}
		labels[i] = int32(l)
		maxLabel = max(maxLabel, int(l))
	}
	if numClasses == 0 {
		numClasses = maxLabel + 1
		if err := checkNoEmptyClasses(labelsPath, labels, numClasses); err != nil {
			return nil, err
		}
	}
	classes := make([]string, numClasses)
	for i := range classes {
		classes[i] = strconv.Itoa(i)
	}
	return &memDataset{classes: classes, c: 1, h: h, w: w, pix: im.Data, labels: labels}, nil
}

// checkNoEmptyClasses refuses idx labels whose class count (largest label
// + 1) includes classes without a single example: one stray label 200
// would otherwise make a 201-class data set without a word.
func checkNoEmptyClasses(path string, labels []int32, k int) error {
	counts := make([]int, k)
	for _, l := range labels {
		counts[l]++
	}
	var empty []string
	n := 0
	for c, m := range counts {
		if m == 0 {
			if n < 5 {
				empty = append(empty, strconv.Itoa(c))
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	more := ""
	if n > len(empty) {
		more = fmt.Sprintf(" and %d more", n-len(empty))
	}
	return formatErr(path, -1, "labels go up to %d, but %d of those %d classes have no example (%s%s): expected labels 0…K-1 with every class present (a stray label?)", k-1, n, k, strings.Join(empty, ", "), more)
}

// MNIST file names in an MNIST folder, per split, gzip'd or not.
var mnistFiles = map[string][2]string{
	"train": {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
	"test":  {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
}

// OpenMNIST opens the MNIST split ("train" or "test") in dir: the
// original idx file names, with or without .gz. Labels must be in [0,10).
func OpenMNIST(dir, split string) (Dataset, error) {
	names, ok := mnistFiles[split]
	if !ok {
		return nil, fmt.Errorf("mnist split %q: expected train or test", split)
	}
	var paths [2]string
	for i, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p + ".gz"); err == nil {
			p += ".gz"
		} else if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("mnist folder %s: missing %s or %s.gz", dir, n, n)
		}
		paths[i] = p
	}
	return openIDX(paths[0], paths[1], 10)
}

// EncodeIDX writes data with the given dimensions as an uncompressed
// unsigned-byte idx stream. It panics if the dimensions do not match len(data).
func EncodeIDX(w io.Writer, dims []int, data []uint8) error {
	total := 1
	for _, d := range dims {
		total *= d
	}
	if total != len(data) || len(dims) == 0 || len(dims) > 255 {
		panic(usagef("EncodeIDX: dims %v do not match %d bytes", dims, len(data)))
	}
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// isIDXType reports whether t is one of the idx format's data types:
// unsigned byte (0x08, the one this package reads), signed byte, short,
// int, float or double.
func isIDXType(t byte) bool {
	switch t {
	case 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e:
		return true
	}
	return false
}
