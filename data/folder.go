package data

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// folderSource is an ImageFolder tree (<root>/<class>/<image>) found in a
// directory or a tar archive: its sorted classes and its images in order
// (sorted paths for a directory, archive order for a tar).
type folderSource struct {
	path    string
	isTar   bool
	classes []string
	items   []folderItem
	skipped []BadImage // found while scanning (non-image members)
}

type folderItem struct {
	name   string // file path (directory) or member name (tar)
	member int    // index among the tar's regular-file members
	class  int32
}

func (s *folderSource) bad(name string, err error) BadImage {
	if s.isTar {
		return BadImage{File: s.path, Member: name, Err: err}
	}
	return BadImage{File: name, Err: err}
}

func (s *folderSource) badErr(name string, err error) error {
	if s.isTar {
		return &FormatError{File: s.path, Member: name, Offset: -1, Msg: "bad image", Err: err}
	}
	return &FormatError{File: name, Offset: -1, Msg: "bad image", Err: err}
}

// scanFolder lists an ImageFolder directory or tar archive without decoding.
func scanFolder(root string, opts OpenOptions) (*folderSource, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	s := &folderSource{path: root, isTar: !st.IsDir()}
	classFiles := map[string][]string{} // class -> image names
	var order []string                  // all names in source order
	memberIdx := map[string]int{}
	addFile := func(rel, name string, member int) error {
		parts := strings.Split(rel, "/")
		if len(parts) < 2 || parts[0] == "" {
			err := fmt.Errorf("file at the top level: expected <root>/<class>/<image>")
			if !opts.SkipBadImages {
				return s.badErr(name, err)
			}
			s.skipped = append(s.skipped, s.bad(name, err))
			return nil
		}
		if _, ok := classFiles[parts[0]]; !ok {
			classFiles[parts[0]] = nil
		}
		if !isImageName(rel) {
			if !opts.SkipBadImages {
				return s.badErr(name, errNotImage)
			}
			s.skipped = append(s.skipped, s.bad(name, errNotImage))
			return nil
		}
		classFiles[parts[0]] = append(classFiles[parts[0]], name)
		order = append(order, name)
		memberIdx[name] = member
		return nil
	}
	if s.isTar {
		f, err := os.Open(root)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		fileSize := st.Size()
		tr := tar.NewReader(f)
		member := 0
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				off, _ := f.Seek(0, io.SeekCurrent)
				return nil, &FormatError{File: root, Offset: off, Msg: "reading tar archive (after " + lastName(order) + ")", Err: err}
			}
			if err := checkMemberName(h.Name); err != nil {
				if !opts.SkipBadImages {
					return nil, s.badErr(h.Name, err)
				}
				s.skipped = append(s.skipped, s.bad(h.Name, err))
				if h.Typeflag == tar.TypeReg {
					member++ // readItems counts every regular member
				}
				continue
			}
			rel := cleanMember(h.Name)
			switch h.Typeflag {
			case tar.TypeDir:
				if c, _, _ := strings.Cut(rel, "/"); c != "" {
					if _, ok := classFiles[c]; !ok {
						classFiles[c] = nil
					}
				}
				continue
			case tar.TypeReg:
			default:
				err := fmt.Errorf("tar member of type %q: expected a regular image file", h.Typeflag)
				if !opts.SkipBadImages {
					return nil, s.badErr(h.Name, err)
				}
				s.skipped = append(s.skipped, s.bad(h.Name, err))
				continue
			}
			if pos, _ := f.Seek(0, io.SeekCurrent); h.Size > fileSize-pos {
				return nil, &FormatError{File: root, Member: h.Name, Offset: pos, Msg: fmt.Sprintf("tar member of %d bytes: only %d bytes left in the archive (truncated or corrupt)", h.Size, fileSize-pos)}
			}
			if h.Size > maxImageFileBytes {
				err := fmt.Errorf("tar member of %d bytes: expected an image file of at most %d bytes", h.Size, maxImageFileBytes)
				if !opts.SkipBadImages {
					return nil, s.badErr(h.Name, err)
				}
				s.skipped = append(s.skipped, s.bad(h.Name, err))
				member++
				continue
			}
			if _, dup := memberIdx[h.Name]; dup {
				return nil, s.badErr(h.Name, errors.New("duplicate tar member"))
			}
			if err := addFile(rel, h.Name, member); err != nil {
				return nil, err
			}
			member++
		}
	} else {
		ents, err := os.ReadDir(root)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(root, e.Name())
			st, err := os.Stat(p) // a class folder may be a link to a folder
			if err != nil {
				return nil, s.badErr(p, err)
			}
			if !st.IsDir() {
				if err := addFile(e.Name(), p, -1); err != nil {
					return nil, err
				}
				continue
			}
			classFiles[e.Name()] = nil
			walkRoot := p
			if e.Type()&os.ModeSymlink != 0 {
				if walkRoot, err = filepath.EvalSymlinks(p); err != nil {
					return nil, s.badErr(p, err)
				}
			}
			err = filepath.WalkDir(walkRoot, func(q string, d os.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
					return nil
				}
				rel, _ := filepath.Rel(walkRoot, q)
				name := filepath.Join(p, rel) // as the user sees it
				if err := checkImageFile(name, d); err != nil {
					if !opts.SkipBadImages {
						return s.badErr(name, err)
					}
					s.skipped = append(s.skipped, s.bad(name, err))
					return nil
				}
				return addFile(e.Name()+"/"+filepath.ToSlash(rel), name, -1)
			})
			if err != nil {
				return nil, err
			}
		}
		sort.Strings(order) // WalkDir is already lexical per folder; keep it explicit
	}
	if len(classFiles) == 1 {
		for c, files := range classFiles {
			if err := checkNotWrapped(root, c, files, s.isTar); err != nil {
				return nil, err
			}
		}
	}
	for c := range classFiles {
		s.classes = append(s.classes, c)
	}
	sort.Strings(s.classes)
	for _, c := range s.classes {
		if len(classFiles[c]) == 0 {
			return nil, &FormatError{File: root, Member: c, Offset: -1, Msg: "empty class folder: expected at least one .jpg/.jpeg/.png image"}
		}
	}
	if len(s.classes) == 0 {
		return nil, &FormatError{File: root, Offset: -1, Msg: "no class folders: expected <root>/<class>/<image>"}
	}
	if opts.Classes != nil {
		if err := checkClasses(root, s.classes, opts.Classes); err != nil {
			return nil, err
		}
	}
	classIdx := map[string]int32{}
	for i, c := range s.classes {
		classIdx[c] = int32(i)
	}
	s.items = make([]folderItem, len(order))
	for i, name := range order {
		rel := name
		if !s.isTar {
			rel, _ = filepath.Rel(root, name)
			rel = filepath.ToSlash(rel)
		} else {
			rel = cleanMember(name)
		}
		c, _, _ := strings.Cut(rel, "/")
		s.items[i] = folderItem{name: name, member: memberIdx[name], class: classIdx[c]}
	}
	return s, nil
}

// maxImageFileBytes bounds the size of one image file or tar member: a
// larger one (a sparse file, a link to a huge file) is refused before it is
// read.
var maxImageFileBytes int64 = 64 << 20

// checkMemberName refuses tar member names that leave the archive root
// ("../x", "a/../../x", "/abs/x"): they would silently become classes.
func checkMemberName(name string) error {
	if strings.HasPrefix(name, "/") {
		return errors.New("absolute member name: expected <class>/<image> inside the archive")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return errors.New("member name with \"..\": expected <class>/<image> inside the archive")
		}
	}
	return nil
}

// checkImageFile accepts a regular file, or a link to one, of at most
// maxImageFileBytes: devices, named pipes, sockets and links to folders
// are refused before anything is opened (reading /dev/zero or a pipe would
// never end).
func checkImageFile(path string, d os.DirEntry) error {
	st, err := os.Stat(path) // follows a link to its target
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		what := "not a regular file"
		switch {
		case st.IsDir():
			what = "a link to a folder (links to folders are followed only for class folders)"
		case st.Mode()&os.ModeNamedPipe != 0:
			what = "a named pipe (FIFO)"
		case st.Mode()&os.ModeDevice != 0:
			what = "a device"
		case st.Mode()&os.ModeSocket != 0:
			what = "a socket"
		}
		return fmt.Errorf("%s: expected a regular image file", what)
	}
	if st.Size() > maxImageFileBytes {
		return fmt.Errorf("file of %d bytes: expected an image file of at most %d bytes", st.Size(), maxImageFileBytes)
	}
	return nil
}

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

// checkNotWrapped refuses an ImageFolder whose only folder holds folders
// and no image directly (e.g. train/<class>/<image>): the user pointed at
// the folder above the class folders, which would give one class.
func checkNotWrapped(root, class string, files []string, isTar bool) error {
	if len(files) == 0 {
		return nil
	}
	for _, f := range files {
		rel := f
		if isTar {
			rel = cleanMember(f)
		} else {
			rel, _ = filepath.Rel(root, f)
			rel = filepath.ToSlash(rel)
		}
		if strings.Count(rel, "/") == 1 {
			return nil // an image directly in the class folder
		}
	}
	return &FormatError{File: root, Member: class, Offset: -1, Msg: fmt.Sprintf("one top-level folder %q holding only folders: point the spec at that folder (expected <root>/<class>/<image>)", class)}
}

func lastName(order []string) string {
	if len(order) == 0 {
		return "the start"
	}
	return order[len(order)-1]
}

// cleanMember turns "./cat/1.jpg" or "/cat/1.jpg" into "cat/1.jpg".
func cleanMember(name string) string {
	p := path.Clean("/" + name)
	return strings.TrimPrefix(p, "/")
}

func checkClasses(root string, have, want []string) error {
	hs := map[string]bool{}
	for _, c := range have {
		hs[c] = true
	}
	ws := map[string]bool{}
	for _, c := range want {
		ws[c] = true
		if !hs[c] {
			return &FormatError{File: root, Member: c, Offset: -1, Msg: fmt.Sprintf("missing class folder: expected classes %v", want)}
		}
	}
	for _, c := range have {
		if !ws[c] {
			return &FormatError{File: root, Member: c, Offset: -1, Msg: fmt.Sprintf("unexpected class folder: expected classes %v", want)}
		}
	}
	return nil
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
