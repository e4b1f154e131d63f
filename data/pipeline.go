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

// decodeFolder decodes the images of s with workers goroutines, resized to
// size×size by mode when size > 0, and calls sink in item order with each
// image (pix is only valid during the call). Bad images fail the whole
// walk, or, with skip, are passed to skipped and not to sink. Memory is
// bounded: at most a window of images is in flight.
func decodeFolder(s *folderSource, workers, size int, mode ResizeMode, skip bool,
	sink func(i int, pix []uint8, h, w int) error, skipped func(BadImage)) error {
	workers = max(workers, 1)
	window := 4*workers + 4
	tokens := make(chan struct{}, window)
	jobs := make(chan decodedJob, workers)
	results := make(chan decoded, window)
	done := make(chan struct{})
	var free chan []uint8
	if size > 0 {
		free = make(chan []uint8, window)
	}
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // reader
		defer wg.Done()
		defer close(jobs)
		readErr = s.readItems(func(i int, b []byte) error {
			select {
			case tokens <- struct{}{}:
			case <-done:
				return errStopped
			}
			select {
			case jobs <- decodedJob{i, b}:
				return nil
			case <-done:
				return errStopped
			}
		})
		if readErr != nil && readErr != errStopped {
			// Deliver the read error in order, after the images before it.
			select {
			case results <- decoded{i: -1, err: readErr}:
			case <-done:
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rs resampler
			var scratch []uint8
			for j := range jobs {
				d := decoded{i: j.i}
				var pix []uint8
				pix, d.h, d.w, d.err = DecodeImage(j.b, scratch)
				if d.err == nil {
					scratch = nil
					if cap(pix) <= maxScratchBytes {
						scratch = pix // reused for the next image
					}
					if size > 0 {
						var out []uint8
						select {
						case out = <-free:
						default:
							out = make([]uint8, 3*size*size)
						}
						rs.resizeSquare(pix, 3, d.h, d.w, mode, size, out)
						d.pix, d.h, d.w = out, size, size
					} else {
						d.pix = pix
						scratch = nil // handed over
					}
				}
				select {
				case results <- d:
				case <-done:
					return
				}
			}
		}()
	}
	stop := func() {
		close(done)
		wg.Wait()
	}
	pending := map[int]decoded{}
	var readFail *decoded
	for next := 0; next < len(s.items); {
		d, ok := pending[next]
		if !ok {
			if readFail != nil {
				stop()
				return readFail.err
			}
			r := <-results
			if r.i < 0 {
				readFail = &r
			} else {
				pending[r.i] = r
			}
			continue
		}
		delete(pending, next)
		it := s.items[next]
		if d.err != nil {
			if !skip {
				stop()
				return s.badErr(it.name, d.err)
			}
			skipped(s.bad(it.name, d.err))
		} else if err := sink(next, d.pix, d.h, d.w); err != nil {
			stop()
			return err
		}
		if free != nil && d.pix != nil {
			select {
			case free <- d.pix:
			default:
			}
		}
		<-tokens
		next++
	}
	stop()
	return nil
}

type decodedJob struct {
	i int
	b []byte
}

type stopped struct{}

func (stopped) Error() string { return "stopped" }

var errStopped error = stopped{}
