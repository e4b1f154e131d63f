package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"unsafe"

	"dptrain/checkpoint"
	"dptrain/data"
	"dptrain/dist"
)

// Data-parallel training over R ranks (Options.Comm; docs/scale-out.md):
//
//   - every rank opens the same configuration, data and init; rank 0 alone
//     opens --out (lock, journal, checkpoints, metrics, report), resumes or
//     starts the run, and sends its state (weights, optimizer, averaging,
//     ledger, step) to the others, which restore it as from a checkpoint;
//   - secure mode: rank 0 draws the secret sampling key and sends it, so
//     the ranks' Poisson samples are parts of one sample;
//   - each step, every rank computes the whole Poisson sample (cheap: qN
//     geometric draws) and keeps the examples of its contiguous block
//     dist.Partition(N, R, rank): together exactly the one-process sample;
//     dpsgd.PrivateStep sums the ranks' clipped sums with one all-reduce,
//     rank 0 adding the noise once; every rank records the same event in
//     its ledger (rank 0's is the one written) and applies the same update;
//   - after every step the ranks compare a SHA-256 of their trainable
//     weights (a mismatch stops the job with an error) and agree on
//     stopping (a signal to any rank stops all after the same step).

// comm returns the run's group (one process without Options.Comm).
func (r *run) comm() dist.Comm {
	if r.opt.Comm == nil {
		return dist.Single()
	}
	return r.opt.Comm
}

func (r *run) rank() int  { return r.comm().Rank() }
func (r *run) ranks() int { return r.comm().Size() }

// lead reports whether this process writes the run's files (rank 0).
func (r *run) lead() bool { return r.rank() == 0 }

// ErrCollective marks an error that every rank of a data-parallel run
// returned at the same point (errors.Is): the ranks stopped together, and
// none waits for another. Any other error of a rank leaves the others
// waiting in a collective: the caller must abort the job (dist.Comm.Abort).
var ErrCollective = errors.New("every rank stopped")

type collectiveError struct{ err error }

func (e collectiveError) Error() string        { return e.err.Error() }
func (e collectiveError) Unwrap() error        { return e.err }
func (e collectiveError) Is(target error) bool { return target == ErrCollective }

// together ends a phase that every rank goes through: it returns nil if
// no rank failed, this rank's error if it failed, and otherwise an error
// naming the first rank that did (which reports its own error), so that
// no rank goes on to wait for one that has stopped.
func (r *run) together(err error) error {
	c := r.comm()
	if c.Size() == 1 {
		return err
	}
	v := make([]float64, c.Size())
	if err != nil {
		v[c.Rank()] = 1
	}
	if rerr := c.AllReduceSum64(v); rerr != nil {
		return errors.Join(err, fmt.Errorf("rank %d of %d: %w", c.Rank(), c.Size(), rerr))
	}
	if err != nil {
		return collectiveError{err}
	}
	for i, f := range v {
		if f != 0 {
			return collectiveError{fmt.Errorf("rank %d of %d stopped with an error (its own message says why); rank %d stops too", i, c.Size(), c.Rank())}
		}
	}
	return nil
}

// checkRanks refuses what data-parallel training does not support yet.
func (r *run) checkRanks() error {
	if r.ranks() == 1 {
		return nil
	}
	if r.cfg.FeatureCache != "" {
		return fmt.Errorf("feature_cache: not supported with %d ranks yet: build the cache with `dptrain features` and train it in one process (a linear head on cached features trains in seconds)", r.ranks())
	}
	return nil
}

// dataPart is the block of the training set a rank other than 0 reads (a
// prepared set then maps the other ranks' shards without reading them);
// nil for rank 0, which reads everything (the digest, the data
// normalisation), and with max_train_examples (a subset is digested
// example by example).
func (r *run) dataPart() func(n int) (lo, hi int) {
	if r.ranks() == 1 || r.lead() || r.cfg.MaxTrainExamples > 0 {
		return nil
	}
	size, rank := r.ranks(), r.rank()
	return func(n int) (int, int) { return dist.Partition(n, size, rank) }
}

// sameData checks that every rank opened the same training set (the same
// examples in the same order: else one person's example could sit in two
// ranks' blocks, doubling its sensitivity).
func (r *run) sameData() error {
	if r.ranks() == 1 {
		return nil
	}
	if err := dist.Agree(r.comm(), sha256.Sum256([]byte(r.data.digest))); err != nil {
		if errors.Is(err, dist.ErrMismatch) {
			return collectiveErrorf("train_data %s: the ranks' training sets differ (%w): every rank must read the same examples in the same order (a shared filesystem, or identical copies)", r.cfg.TrainData, err)
		}
		return fmt.Errorf("train_data: comparing the ranks' training sets: %w", err)
	}
	return nil
}

// shareKey gives every rank rank 0's sampling key (secure mode draws a
// fresh secret one in every process; the ranks must sample with one key).
func (r *run) shareKey() error {
	if r.ranks() == 1 {
		return nil
	}
	k := r.dataKey
	defer clear(k[:])
	if err := r.comm().Broadcast(k[:], 0); err != nil {
		return fmt.Errorf("broadcast of the sampling key: %w", err)
	}
	r.dataKey = data.Key(k)
	if !r.lead() {
		r.noise = nil // the noise is drawn by rank 0 alone
	}
	return nil
}

// shareState sends rank 0's state after it resumed or started the run (a
// checkpoint's contents and the step the budget ends at) to the other
// ranks, which restore it.
func (r *run) shareState() error {
	if r.ranks() == 1 {
		return nil
	}
	c := r.comm()
	var payload []byte
	var hdr [16]byte
	if r.lead() {
		ck, err := r.snapshot()
		if err == nil {
			var b bytes.Buffer
			err = gob.NewEncoder(&b).Encode(ck)
			payload = b.Bytes()
		}
		if err != nil {
			return r.together(fmt.Errorf("state for the other ranks: %w", err))
		}
		binary.LittleEndian.PutUint64(hdr[:], uint64(len(payload)))
		binary.LittleEndian.PutUint64(hdr[8:], uint64(r.total))
	}
	if err := r.together(nil); err != nil {
		return err
	}
	if err := c.Broadcast(hdr[:], 0); err != nil {
		return fmt.Errorf("broadcast of the run's state: %w", err)
	}
	if !r.lead() {
		payload = make([]byte, binary.LittleEndian.Uint64(hdr[:]))
	}
	if err := c.Broadcast(payload, 0); err != nil {
		return fmt.Errorf("broadcast of the run's state (%d bytes): %w", len(payload), err)
	}
	var err error
	if !r.lead() {
		var ck checkpoint.Checkpoint
		if err = gob.NewDecoder(bytes.NewReader(payload)).Decode(&ck); err == nil {
			err = r.restore(&ck, "rank 0's state")
		}
		r.total = int64(binary.LittleEndian.Uint64(hdr[8:]))
	}
	return r.together(err)
}

// rankSampler is the run's sampler restricted to this rank's block.
func (r *run) rankSampler() data.Sampler {
	if r.ranks() == 1 {
		return r.sampler
	}
	lo, hi := dist.Partition(r.plan.N, r.ranks(), r.rank())
	return data.RankSampler{Sampler: r.sampler, Lo: lo, Hi: hi}
}

// syncStep ends a step on every rank: the ranks check that they hold the
// same trainable weights, learn whether any rank failed after the step
// (local: rank 0's metrics or evaluation), and agree on whether to stop
// (any rank asked to).
func (r *run) syncStep(local error) (stop bool, err error) {
	c := r.comm()
	if c.Size() == 1 {
		return r.stopRequested(), local
	}
	if err := dist.Agree(c, weightsDigest(r.model.train.params)); err != nil {
		if errors.Is(err, dist.ErrMismatch) {
			return false, collectiveErrorf("after step %d: %w: stopping (a rank computed a different update: another dptrain, library or CPU on that node?)", r.step, err)
		}
		return false, fmt.Errorf("after step %d: comparing the ranks' weights: %w", r.step, err)
	}
	if err := r.together(local); err != nil {
		return false, err
	}
	return r.anyStop()
}

// anyStop reports whether any rank was asked to stop (Options.Stop).
func (r *run) anyStop() (bool, error) {
	c := r.comm()
	if c.Size() == 1 {
		return r.stopRequested(), nil
	}
	v := []float64{0}
	if r.stopRequested() {
		v[0] = 1
	}
	if err := c.AllReduceSum64(v); err != nil {
		return false, fmt.Errorf("at step %d: %w", r.step, err)
	}
	return v[0] > 0, nil
}

// weightsDigest is the SHA-256 of the values of params (their float32 bits
// in order).
func weightsDigest(params [][]float32) [32]byte {
	h := sha256.New()
	for _, p := range params {
		if len(p) > 0 {
			h.Write(unsafe.Slice((*byte)(unsafe.Pointer(&p[0])), 4*len(p)))
		}
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

func collectiveErrorf(format string, args ...any) error {
	return collectiveError{fmt.Errorf(format, args...)}
}

// everyRank marks an error that every rank reaches at the same point
// (computed from values all ranks share, such as the all-reduced step) as
// collective.
func (r *run) everyRank(err error) error {
	if r.ranks() == 1 {
		return err
	}
	return collectiveError{err}
}
