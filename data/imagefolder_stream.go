package data

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
)

// DefaultFolderMemory is the memory an ImageFolder may take decoded before
// Open streams it instead (OpenOptions.MemoryBytes).
const DefaultFolderMemory = 4 << 30

// folderStream is an ImageFolder read on demand: each Image reads the
// file (or the tar member, at the offset the scan recorded), decodes it
// (at a DCT-reduced size when the target allows) and resizes it to the
// image size. Memory is the scan's listing plus one decode per concurrent
// reader, whatever the number of images. Safe for concurrent use.
type folderStream struct {
	s    *folderSource
	size int
	mode ResizeMode
	tar  *os.File // nil for a directory
	pool sync.Pool
}

// streamScratch is one reader's buffers, pooled.
type streamScratch struct {
	b   []byte
	pix []uint8
	rs  resampler
}

func openFolderStream(s *folderSource, opts OpenOptions) (*folderStream, error) {
	d := &folderStream{s: s, size: opts.ImageSize, mode: opts.Resize}
	if s.isTar {
		f, err := os.Open(s.path)
		if err != nil {
			return nil, err
		}
		d.tar = f
	}
	d.pool.New = func() any { return &streamScratch{} }
	return d, nil
}

func (d *folderStream) Len() int             { return len(d.s.items) }
func (d *folderStream) NumClasses() int      { return len(d.s.classes) }
func (d *folderStream) Classes() []string    { return d.s.classes }
func (d *folderStream) Shape() (c, h, w int) { return 3, d.size, d.size }
func (d *folderStream) Label(i int) int      { return int(d.s.items[i].class) }
func (d *folderStream) Skipped() []BadImage  { return d.s.skipped }

// Close closes the tar archive; Image afterwards fails.
func (d *folderStream) Close() error {
	if d.tar == nil {
		return nil
	}
	err := d.tar.Close()
	d.tar = nil
	return err
}

// Image reads, decodes and resizes example i. A file that has become
// unreadable or undecodable since the scan is an error naming it.
func (d *folderStream) Image(i int, dst []uint8) error {
	checkImageArgs(i, len(d.s.items), len(dst), 3*d.size*d.size)
	it := d.s.items[i]
	sc := d.pool.Get().(*streamScratch)
	defer d.pool.Put(sc)
	b, err := d.read(it, sc)
	if err != nil {
		return err
	}
	sc.b = b
	pix, h, w, err := DecodeImageAtLeast(b, sc.pix, d.size)
	if err != nil {
		return d.s.badErr(it.name, err)
	}
	if cap(pix) <= maxScratchBytes {
		sc.pix = pix
	}
	if cap(sc.b) > maxScratchBytes {
		sc.b = nil
	}
	sc.rs.resizeSquare(pix, 3, h, w, d.mode, d.size, dst[:3*d.size*d.size])
	return nil
}

// read returns the bytes of item it (in sc.b's array when it fits).
func (d *folderStream) read(it folderItem, sc *streamScratch) ([]byte, error) {
	var b []byte
	var err error
	if d.s.isTar {
		if d.tar == nil {
			panic(usagef("image folder: Image after Close"))
		}
		b = growBytes(sc.b, int(it.size))
		_, err = d.tar.ReadAt(b, it.off)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	} else {
		b, err = readImageFile(it.name)
	}
	if err != nil {
		if d.s.isTar {
			return nil, &FormatError{File: d.s.path, Member: it.name, Offset: it.off, Msg: "reading tar member (the archive changed since it was opened?)", Err: err}
		}
		return nil, &FormatError{File: it.name, Offset: -1, Msg: "reading image", Err: err}
	}
	return b, nil
}

func growBytes(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n)
}

// ContentDigest names the set by its listing, not its pixels (reading
// every image to hash it would decode the whole set): the decoder and
// resampler of this build, the image size and resize mode, the classes,
// and each image's name, label, size in bytes and modification time (a
// tar's members as its headers give them).
// Files replaced in place with the same size and time are not noticed.
func (d *folderStream) ContentDigest() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "dptrain imagefolder stream v1 pipeline %q\nsize %d resize %s classes %q\n", pixelPipeline, d.size, d.mode, d.s.classes)
	var b [28]byte
	for _, it := range d.s.items {
		binary.LittleEndian.PutUint32(b[0:], uint32(it.class))
		binary.LittleEndian.PutUint64(b[4:], uint64(it.size))
		binary.LittleEndian.PutUint64(b[12:], uint64(it.mtime))
		binary.LittleEndian.PutUint64(b[20:], uint64(len(it.name)))
		h.Write(b[:])
		io.WriteString(h, it.name)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
