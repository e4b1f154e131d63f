package dpsgd

import (
	"fmt"
	"unsafe"

	"dptrain/dist"
)

// SumAcrossRanks replaces every slice of bufs, on every rank of c, with its
// element-wise sum over the ranks: one all-reduce of the slices'
// concatenation, packed into *flat (grown as needed and reused). The ranks
// must pass slices of the same lengths in the same order. The sum is
// dist's deterministic ring reduction, so every rank ends with the same
// bits. With one rank it does nothing.
func SumAcrossRanks(c dist.Comm, bufs [][]float32, flat *[]float32) error {
	if c == nil || c.Size() == 1 {
		return nil
	}
	f := pack(bufs, flat, true)
	if err := c.AllReduceSum(f); err != nil {
		return fmt.Errorf("all-reduce of %d gradient values over %d ranks: %w", len(f), c.Size(), err)
	}
	unpack(bufs, f)
	return nil
}

// BroadcastFromRank0 copies rank 0's values of every slice of bufs to the
// other ranks of c (one broadcast of their concatenation, packed into
// *flat). With one rank it does nothing.
func BroadcastFromRank0(c dist.Comm, bufs [][]float32, flat *[]float32) error {
	if c == nil || c.Size() == 1 {
		return nil
	}
	f := pack(bufs, flat, c.Rank() == 0)
	var b []byte
	if len(f) > 0 {
		b = unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
	}
	if err := c.Broadcast(b, 0); err != nil {
		return fmt.Errorf("broadcast of %d noisy gradient values from rank 0 to %d ranks: %w", len(f), c.Size(), err)
	}
	if c.Rank() != 0 {
		unpack(bufs, f)
	}
	return nil
}

// pack returns *flat grown to the total length of bufs, holding their
// concatenation if fill.
func pack(bufs [][]float32, flat *[]float32, fill bool) []float32 {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	*flat = growF32(*flat, n)
	f := *flat
	if fill {
		off := 0
		for _, b := range bufs {
			off += copy(f[off:], b)
		}
	}
	return f
}

// unpack copies the concatenation f back into bufs.
func unpack(bufs [][]float32, f []float32) {
	off := 0
	for _, b := range bufs {
		off += copy(b, f[off:off+len(b)])
	}
}

// SumStats adds the statistics of every rank's share of the logical batch
// (MaxNorm: the maximum over ranks), on every rank.
func SumStats(c dist.Comm, s *StepStats) error {
	r, size := c.Rank(), c.Size()
	v := make([]float64, 6+size)
	v[0], v[1], v[2], v[3], v[4], v[5] = float64(s.Examples), float64(s.Clipped), s.LossSum, float64(s.Rows), s.NormSum, float64(s.Physical)
	v[6+r] = s.MaxNorm // one slot per rank: the maximum of a sum
	if err := c.AllReduceSum64(v); err != nil {
		return fmt.Errorf("all-reduce of the step statistics over %d ranks: %w", size, err)
	}
	s.Examples, s.Clipped, s.LossSum, s.Rows, s.NormSum, s.Physical = int(v[0]), int(v[1]), v[2], int(v[3]), v[4], int(v[5])
	s.MaxNorm = 0
	for _, m := range v[6:] {
		s.MaxNorm = max(s.MaxNorm, m)
	}
	return nil
}
