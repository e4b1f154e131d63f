package data

import "fmt"

// OpenImageFolder decodes an ImageFolder tree (<root>/<class>/<image>, JPEG
// or PNG) from a directory or a tar archive into memory, as 3-channel CHW.
// Classes are the sorted folder names. With opts.ImageSize > 0 every image
// is resized to that square (opts.Resize); otherwise all images must have
// the size of the first. Decoding runs on opts.Workers goroutines.
func OpenImageFolder(root string, opts OpenOptions) (Dataset, error) {
	s, err := scanFolder(root, opts)
	if err != nil {
		return nil, err
	}
	d := &memDataset{classes: s.classes, c: 3, skipped: s.skipped}
	n := len(s.items)
	var first string
	sink := func(i int, pix []uint8, h, w int) error {
		if d.pix == nil {
			d.h, d.w, first = h, w, s.items[i].name
			d.pix = make([]uint8, 0, n*3*h*w)
			d.labels = make([]int32, 0, n)
		}
		if h != d.h || w != d.w {
			err := fmt.Errorf("image is %d×%d: expected %d×%d like %s (set an image size to resize)", h, w, d.h, d.w, first)
			return s.badErr(s.items[i].name, err)
		}
		d.pix = append(d.pix, pix...)
		d.labels = append(d.labels, s.items[i].class)
		return nil
	}
	err = decodeFolder(s, opts.workers(), folderResize{size: opts.ImageSize, mode: opts.Resize}, opts.SkipBadImages, sink,
		func(_ int, b BadImage) { d.skipped = append(d.skipped, b) })
	if err != nil {
		return nil, err
	}
	counts := make([]int, len(d.classes))
	for _, l := range d.labels {
		counts[l]++
	}
	for c, k := range counts {
		if k == 0 {
			return nil, &FormatError{File: root, Member: d.classes[c], Offset: -1, Msg: "no readable images in class folder (all skipped)"}
		}
	}
	return d, nil
}
