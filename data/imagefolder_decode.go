package data

import (
	"sync"
)

// maxScratchBytes bounds the decode buffer a worker keeps between images
// (one huge image must not pin its pixels for the rest of the run).
const maxScratchBytes = 16 << 20

// decoded is one image decoded (and resized) by a worker.
type decoded struct {
	i    int
	pix  []uint8 // 3×h×w CHW
	h, w int
	err  error
}

type decodedJob struct {
	i int
	b []byte
}

type stopped struct{}

func (stopped) Error() string { return "stopped" }

var errStopped error = stopped{}

// folderResize says how decodeFolder resizes: to size×size by mode when
// size > 0; the shorter side to short, aspect ratio kept, when short > 0
// (see resizeShortSide); else not at all.
type folderResize struct {
	size  int
	mode  ResizeMode
	short int
}

// minSide is the shorter side a decoded image must keep (DCT scaling may
// reduce it to that).
func (r folderResize) minSide() int { return max(r.size, r.short) }

// decodeFolder decodes the images of s with workers goroutines, resized by
// rz, and calls sink in item order with each image (pix is only valid
// during the call). Bad images fail the whole walk, or, with skip, are
// passed to skipped (with their item index) and not to sink. Memory is
// bounded: at most a window of images is in flight.
//
// One reader goroutine reads the files (or tar members) in order and hands
// them to the workers, which decode them; the caller's goroutine puts the
// results back in order and delivers them. A token per image in flight,
// taken by the reader and returned on delivery, bounds the window.
func decodeFolder(s *folderSource, workers int, rz folderResize, skip bool,
	sink func(i int, pix []uint8, h, w int) error, skipped func(int, BadImage)) error {
	p := newFolderDecoder(s, max(workers, 1), rz)
	p.wg.Add(1)
	go p.read()
	for range p.workers {
		p.wg.Add(1)
		go p.work()
	}
	err := p.deliver(skip, sink, skipped)
	close(p.done)
	p.wg.Wait()
	return err
}

// folderDecoder is the pipeline of one decodeFolder.
type folderDecoder struct {
	s       *folderSource
	workers int
	rz      folderResize
	tokens  chan struct{} // one per image in flight
	jobs    chan decodedJob
	results chan decoded   // decoded images, any order; i < 0 for a read error
	done    chan struct{}  // closed when the caller stops
	free    chan []uint8   // delivered resize buffers, for reuse (nil when not resizing)
	wg      sync.WaitGroup // the reader and the workers
}

func newFolderDecoder(s *folderSource, workers int, rz folderResize) *folderDecoder {
	window := 4*workers + 4
	p := &folderDecoder{s: s, workers: workers, rz: rz,
		tokens:  make(chan struct{}, window),
		jobs:    make(chan decodedJob, workers),
		results: make(chan decoded, window),
		done:    make(chan struct{}),
	}
	if rz.size > 0 || rz.short > 0 {
		p.free = make(chan []uint8, window)
	}
	return p
}

// read reads the items in order and hands them to the workers. A read
// error is delivered in order, after the images before it.
func (p *folderDecoder) read() {
	defer p.wg.Done()
	defer close(p.jobs)
	err := p.s.readItems(p.submit)
	if err != nil && err != errStopped {
		select {
		case p.results <- decoded{i: -1, err: err}:
		case <-p.done:
		}
	}
}

// submit waits for a token, then for a worker to take item i.
func (p *folderDecoder) submit(i int, b []byte) error {
	select {
	case p.tokens <- struct{}{}:
	case <-p.done:
		return errStopped
	}
	select {
	case p.jobs <- decodedJob{i, b}:
		return nil
	case <-p.done:
		return errStopped
	}
}

// work decodes jobs until there are none left or the caller stops.
func (p *folderDecoder) work() {
	defer p.wg.Done()
	var rs resampler
	var scratch []uint8
	for j := range p.jobs {
		var d decoded
		d, scratch = p.decode(j, &rs, scratch)
		select {
		case p.results <- d:
		case <-p.done:
			return
		}
	}
}

// decode decodes (into scratch when large enough) and resizes one image.
// It returns the buffer the worker keeps for its next image: the decoded
// pixels when they were resized away and are not too large, nothing when
// they were handed over unresized.
func (p *folderDecoder) decode(j decodedJob, rs *resampler, scratch []uint8) (decoded, []uint8) {
	d := decoded{i: j.i}
	var pix []uint8
	// A JPEG much larger than the target decodes at 1/2, 1/4 or 1/8 of
	// its size (DCT scaling), never below the target's side.
	pix, d.h, d.w, d.err = DecodeImageAtLeast(j.b, scratch, p.rz.minSide())
	if d.err != nil {
		return d, scratch
	}
	if p.rz.size == 0 && p.rz.short == 0 {
		d.pix = pix
		return d, nil // handed over
	}
	scratch = nil
	if cap(pix) <= maxScratchBytes {
		scratch = pix // reused for the next image
	}
	var out []uint8
	select {
	case out = <-p.free:
	default:
	}
	if p.rz.short > 0 {
		oh, ow := shortSideSize(d.h, d.w, p.rz.short)
		out = growU8(out, 3*oh*ow)
		rs.resizeShortSide(pix, 3, d.h, d.w, p.rz.short, out)
		d.pix, d.h, d.w = out, oh, ow
		return d, scratch
	}
	out = growU8(out, 3*p.rz.size*p.rz.size)
	rs.resizeSquare(pix, 3, d.h, d.w, p.rz.mode, p.rz.size, out)
	d.pix, d.h, d.w = out, p.rz.size, p.rz.size
	return d, scratch
}

// deliver puts the results back in item order and passes each to sink (or,
// a bad image with skip, to skipped); it stops at the first error.
func (p *folderDecoder) deliver(skip bool, sink func(i int, pix []uint8, h, w int) error, skipped func(int, BadImage)) error {
	pending := map[int]decoded{}
	var readFail *decoded
	for next := 0; next < len(p.s.items); {
		d, ok := pending[next]
		if !ok {
			if readFail != nil {
				return readFail.err
			}
			r := <-p.results
			if r.i < 0 {
				readFail = &r
			} else {
				pending[r.i] = r
			}
			continue
		}
		delete(pending, next)
		it := p.s.items[next]
		if d.err != nil {
			if !skip {
				return p.s.badErr(it.name, d.err)
			}
			skipped(next, p.s.bad(it.name, d.err))
		} else if err := sink(next, d.pix, d.h, d.w); err != nil {
			return err
		}
		if p.free != nil && d.pix != nil {
			select {
			case p.free <- d.pix:
			default:
			}
		}
		<-p.tokens
		next++
	}
	return nil
}

// growU8 returns b resized to n, reusing its array when large enough.
func growU8(b []uint8, n int) []uint8 {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]uint8, n)
}
