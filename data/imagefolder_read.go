package data

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
)

// readImageFile reads a file that scanFolder accepted, re-checking the
// opened file (it may have been replaced since): the open does not block
// on a named pipe, and no more than maxImageFileBytes are read.
func readImageFile(path string) ([]byte, error) {
	f, err := openNonBlocking(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v): expected a regular image file", st.Mode().Type())
	}
	if st.Size() > maxImageFileBytes {
		return nil, fmt.Errorf("file of %d bytes: expected an image file of at most %d bytes", st.Size(), maxImageFileBytes)
	}
	// Read the size seen, plus one byte to notice a file that grew.
	b := make([]byte, st.Size()+1)
	n, err := io.ReadFull(f, b)
	if err != io.ErrUnexpectedEOF && err != io.EOF {
		if err == nil {
			return nil, fmt.Errorf("file grew past its %d bytes while read: expected an image file that does not change", st.Size())
		}
		return nil, err
	}
	return b[:n], nil
}

const tarBlock = 512

// readItems calls fn(i, bytes) for each item in order, reading files or tar
// members. An error from fn stops the walk.
func (s *folderSource) readItems(fn func(i int, b []byte) error) error {
	if !s.isTar {
		for i, it := range s.items {
			b, err := readImageFile(it.name)
			if err != nil {
				return &FormatError{File: it.name, Offset: -1, Msg: "reading image", Err: err}
			}
			if err := fn(i, b); err != nil {
				return err
			}
		}
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	tr := tar.NewReader(f)
	member, next := 0, 0
	for next < len(s.items) {
		h, err := tr.Next()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			off, _ := f.Seek(0, io.SeekCurrent)
			return &FormatError{File: s.path, Offset: off, Msg: "reading tar archive (it changed since it was listed?)", Err: err}
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if member != s.items[next].member {
			member++
			continue
		}
		member++
		// A header may lie about the member's size: allocate no more than
		// the archive can still hold.
		if pos, _ := f.Seek(0, io.SeekCurrent); h.Size > size-pos+tarBlock {
			return &FormatError{File: s.path, Member: h.Name, Offset: pos, Msg: fmt.Sprintf("tar member of %d bytes: only %d bytes left in the archive", h.Size, size-pos)}
		}
		b := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, b); err != nil {
			off, _ := f.Seek(0, io.SeekCurrent)
			return &FormatError{File: s.path, Member: h.Name, Offset: off, Msg: fmt.Sprintf("truncated tar member: expected %d bytes", h.Size), Err: err}
		}
		if err := fn(next, b); err != nil {
			return err
		}
		next++
	}
	return nil
}
