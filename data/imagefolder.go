package data

import "fmt"

// OpenImageFolder reads an ImageFolder tree (<root>/<class>/<image>, JPEG
// or PNG) from a directory or a tar archive, as 3-channel CHW. Classes are
// the sorted folder names. With opts.ImageSize > 0 every image is resized
// to that square (opts.Resize); otherwise all images must have the size of
// the first. A set that fits opts.MemoryBytes decoded is decoded into
// memory up front, on opts.Workers goroutines; a larger one is streamed:
// each Image reads and decodes its file (this needs an image size, and
// bad images then surface when read, so SkipBadImages cannot apply:
// dptrain prepare handles both).
func OpenImageFolder(root string, opts OpenOptions) (Dataset, error) {
	s, err := scanFolder(root, opts)
	if err != nil {
		return nil, err
	}
	budget := opts.MemoryBytes
	if budget == 0 {
		budget = DefaultFolderMemory
	}
	if opts.ImageSize > 0 {
		if need := int64(len(s.items)) * 3 * int64(opts.ImageSize) * int64(opts.ImageSize); need > budget {
			if opts.SkipBadImages {
				return nil, fmt.Errorf("image folder %s: %d images of %d×%d take %.1f GiB decoded, over the memory budget of %.1f GiB, so they are streamed, and skipping bad images needs them decoded up front: run dptrain prepare (it skips them), or raise the budget",
					root, len(s.items), opts.ImageSize, opts.ImageSize, float64(need)/(1<<30), float64(budget)/(1<<30))
			}
			return openFolderStream(s, opts)
		}
	} else if len(s.items) > 0 {
		// Without an image size all images have the first one's size.
		h, w, err := firstImageSize(s, opts)
		if err != nil {
			return nil, err
		}
		if need := int64(len(s.items)) * 3 * int64(h) * int64(w); need > budget {
			return nil, fmt.Errorf("image folder %s: %d images of %d×%d take %.1f GiB decoded, over the memory budget of %.1f GiB: set an image size (images are then streamed from their files) or run dptrain prepare",
				root, len(s.items), h, w, float64(need)/(1<<30), float64(budget)/(1<<30))
		}
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

// firstImageSize decodes the first image of s (a bad one is left to the
// full decode to report or skip: then 0×0).
func firstImageSize(s *folderSource, opts OpenOptions) (h, w int, err error) {
	st, err := openFolderStream(s, opts)
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	b, err := st.read(s.items[0], &streamScratch{})
	if err != nil {
		return 0, 0, nil
	}
	_, h, w, err = DecodeImage(b, nil)
	if err != nil {
		return 0, 0, nil
	}
	return h, w, nil
}
