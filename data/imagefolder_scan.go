package data

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
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
	off    int64 // tar: offset of the member's data in the archive
	size   int64 // bytes (the file's or the member's), as scanned
	mtime  int64 // directory: the file's modification time (Unix ns)
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

// relName returns the slash-separated path of an image name below the
// root: "<class>/…/<image>".
func (s *folderSource) relName(name string) string {
	if s.isTar {
		return cleanMember(name)
	}
	rel, _ := filepath.Rel(s.path, name)
	return filepath.ToSlash(rel)
}

// scanFolder lists an ImageFolder directory or tar archive without
// decoding: it walks the source, then settles the classes, then lists the
// images with their labels.
func scanFolder(root string, opts OpenOptions) (*folderSource, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	sc := &folderScan{
		folderSource: &folderSource{path: root, isTar: !st.IsDir()},
		skip:         opts.SkipBadImages,
		classCount:   map[string]int{},
	}
	if sc.isTar {
		err = sc.scanTar(st.Size())
	} else {
		err = sc.scanDir()
	}
	if err != nil {
		return nil, err
	}
	if err := sc.settleClasses(opts.Classes); err != nil {
		return nil, err
	}
	sc.listItems()
	return sc.folderSource, nil
}

// folderScan is the state of one scanFolder: what it has found so far, in
// source order.
type folderScan struct {
	*folderSource
	skip       bool                // OpenOptions.SkipBadImages
	classCount map[string]int      // class -> images found in it
	order      []folderItem        // all images in source order (class not yet set)
	seen       map[string]struct{} // tar: member names (duplicates are refused)
}

// refuse fails the scan on a bad file or member, or, when bad images are
// skipped, records it and returns nil.
func (sc *folderScan) refuse(name string, err error) error {
	if !sc.skip {
		return sc.badErr(name, err)
	}
	sc.skipped = append(sc.skipped, sc.bad(name, err))
	return nil
}

// addClass records a class folder, which may stay empty.
func (sc *folderScan) addClass(c string) {
	if _, ok := sc.classCount[c]; !ok {
		sc.classCount[c] = 0
	}
}

// addFile records an image at rel ("<class>/…/<image>") below the root,
// known as name (a path or a tar member name), or refuses it if it is at
// the top level or not named like an image.
func (sc *folderScan) addFile(rel string, it folderItem) error {
	name := it.name
	class, _, ok := strings.Cut(rel, "/")
	if !ok || class == "" {
		return sc.refuse(name, fmt.Errorf("file at the top level: expected <root>/<class>/<image>"))
	}
	sc.addClass(class)
	if !isImageName(rel) {
		return sc.refuse(name, errNotImage)
	}
	sc.classCount[class]++
	sc.order = append(sc.order, it)
	return nil
}

// scanTar lists the members of a tar archive of fileSize bytes, in
// archive order.
func (sc *folderScan) scanTar(fileSize int64) error {
	f, err := os.Open(sc.path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	member := 0 // index among the regular members, as readItems counts them
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			off, _ := f.Seek(0, io.SeekCurrent)
			return &FormatError{File: sc.path, Offset: off, Msg: "reading tar archive (after " + lastName(sc.order) + ")", Err: err}
		}
		if err := sc.tarMember(f, h, fileSize, member); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			member++ // readItems counts every regular member, skipped or not
		}
	}
}

// tarMember records the member h (the regular member number member), whose
// data starts at f's current offset: a folder names a class, a regular file
// is an image; anything else, or a member that leaves the archive root or
// is too large, is refused.
func (sc *folderScan) tarMember(f *os.File, h *tar.Header, fileSize int64, member int) error {
	if err := checkMemberName(h.Name); err != nil {
		return sc.refuse(h.Name, err)
	}
	rel := cleanMember(h.Name)
	switch h.Typeflag {
	case tar.TypeDir:
		if c, _, _ := strings.Cut(rel, "/"); c != "" {
			sc.addClass(c)
		}
		return nil
	case tar.TypeReg:
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				// Stored packed: its bytes in the archive are not the
				// file's (archive/tar expands them only when reading in
				// order; a streamed read at the offset would not).
				return sc.refuse(h.Name, errors.New("sparse tar member: expected a regular image file (archive without --sparse)"))
			}
		}
	default:
		return sc.refuse(h.Name, fmt.Errorf("tar member of type %q: expected a regular image file", h.Typeflag))
	}
	if pos, _ := f.Seek(0, io.SeekCurrent); h.Size > fileSize-pos {
		return &FormatError{File: sc.path, Member: h.Name, Offset: pos, Msg: fmt.Sprintf("tar member of %d bytes: only %d bytes left in the archive (truncated or corrupt)", h.Size, fileSize-pos)}
	}
	if h.Size > maxImageFileBytes {
		return sc.refuse(h.Name, fmt.Errorf("tar member of %d bytes: expected an image file of at most %d bytes", h.Size, maxImageFileBytes))
	}
	if sc.seen == nil {
		sc.seen = map[string]struct{}{}
	}
	if _, dup := sc.seen[h.Name]; dup {
		return sc.badErr(h.Name, errors.New("duplicate tar member"))
	}
	sc.seen[h.Name] = struct{}{}
	pos, _ := f.Seek(0, io.SeekCurrent)
	return sc.addFile(rel, folderItem{name: h.Name, member: member, off: pos, size: h.Size, mtime: h.ModTime.UnixNano()})
}

// scanDir lists a directory: its class folders (hidden entries skipped)
// and the images below them, in sorted path order.
func (sc *folderScan) scanDir() error {
	ents, err := os.ReadDir(sc.path)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := sc.dirEntry(e); err != nil {
			return err
		}
	}
	// WalkDir is already lexical per folder; keep it explicit.
	slices.SortFunc(sc.order, func(a, b folderItem) int { return strings.Compare(a.name, b.name) })
	return nil
}

// dirEntry records a top-level entry: a class folder (or a link to one)
// and the images below it, or a top-level file, which addFile refuses.
func (sc *folderScan) dirEntry(e os.DirEntry) error {
	class := e.Name()
	p := filepath.Join(sc.path, class)
	st, err := os.Stat(p) // a class folder may be a link to a folder
	if err != nil {
		return sc.badErr(p, err)
	}
	if !st.IsDir() {
		return sc.addFile(class, folderItem{name: p, member: -1})
	}
	sc.addClass(class)
	walkRoot := p
	if e.Type()&os.ModeSymlink != 0 {
		if walkRoot, err = filepath.EvalSymlinks(p); err != nil {
			return sc.badErr(p, err)
		}
	}
	return filepath.WalkDir(walkRoot, func(q string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, _ := filepath.Rel(walkRoot, q)
		name := filepath.Join(p, rel) // as the user sees it
		st, err := checkImageFile(name, d)
		if err != nil {
			return sc.refuse(name, err)
		}
		return sc.addFile(class+"/"+filepath.ToSlash(rel), folderItem{name: name, member: -1, size: st.Size(), mtime: st.ModTime().UnixNano()})
	})
}

// settleClasses sorts the classes found and checks them: not one folder
// wrapping the class folders, none empty, at least one, and exactly want
// when want is set.
func (sc *folderScan) settleClasses(want []string) error {
	if len(sc.classCount) == 1 {
		for c := range sc.classCount {
			files := make([]string, len(sc.order))
			for i, it := range sc.order {
				files[i] = it.name
			}
			if err := checkNotWrapped(sc.folderSource, c, files); err != nil {
				return err
			}
		}
	}
	for c := range sc.classCount {
		sc.classes = append(sc.classes, c)
	}
	sort.Strings(sc.classes)
	for _, c := range sc.classes {
		if sc.classCount[c] == 0 {
			return &FormatError{File: sc.path, Member: c, Offset: -1, Msg: "empty class folder: expected at least one .jpg/.jpeg/.png image"}
		}
	}
	if len(sc.classes) == 0 {
		return &FormatError{File: sc.path, Offset: -1, Msg: "no class folders: expected <root>/<class>/<image>"}
	}
	if want != nil {
		return checkClasses(sc.path, sc.classes, want)
	}
	return nil
}

// listItems lists the images in source order with their labels (the
// index of their class folder among the sorted classes).
func (sc *folderScan) listItems() {
	classIdx := map[string]int32{}
	for i, c := range sc.classes {
		classIdx[c] = int32(i)
	}
	sc.items = sc.order
	sc.order, sc.seen = nil, nil
	for i := range sc.items {
		name := sc.items[i].name
		c, _, _ := strings.Cut(sc.relName(name), "/")
		sc.items[i].class = classIdx[c]
	}
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
func checkImageFile(path string, d os.DirEntry) (os.FileInfo, error) {
	st, err := os.Stat(path) // follows a link to its target
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("%s: expected a regular image file", what)
	}
	if st.Size() > maxImageFileBytes {
		return nil, fmt.Errorf("file of %d bytes: expected an image file of at most %d bytes", st.Size(), maxImageFileBytes)
	}
	return st, nil
}

// checkNotWrapped refuses an ImageFolder whose only folder holds folders
// and no image directly (e.g. train/<class>/<image>): the user pointed at
// the folder above the class folders, which would give one class.
func checkNotWrapped(s *folderSource, class string, files []string) error {
	if len(files) == 0 {
		return nil
	}
	for _, f := range files {
		if strings.Count(s.relName(f), "/") == 1 {
			return nil // an image directly in the class folder
		}
	}
	return &FormatError{File: s.path, Member: class, Offset: -1, Msg: fmt.Sprintf("one top-level folder %q holding only folders: point the spec at that folder (expected <root>/<class>/<image>)", class)}
}

func lastName(order []folderItem) string {
	if len(order) == 0 {
		return "the start"
	}
	return order[len(order)-1].name
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
