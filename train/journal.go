package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"unsafe"

	"dptrain/checkpoint"
)

// The privacy journal (privacy-journal.log in --out) is the durable record
// of every release a run makes, written before anything derived from the
// release can reach the disk: one JSON line per event of the ledger
// (the data-normalisation release, each DP-SGD step), fsynced. Checkpoints
// hold the ledger up to their step; the journal also holds the steps taken
// after the newest checkpoint, which a crash loses. It is only ever
// appended to, never rewritten.
//
// Its first line is a header naming the training data by content digest,
// so that a resume on changed data is refused. The journal is not covered
// by the guarantee (the digest identifies the data set) and must be kept
// private like the metrics.
//
// On resume, with J events in the journal and L in the checkpoint's
// ledger:
//   - J < L, or no journal at all: the journal was deleted, truncated or
//     replaced, and the steps lost after the checkpoint cannot be counted:
//     the resume is refused (privacy is never under-counted).
//   - secure mode, J > L: the J − L steps were taken and their results
//     lost. They count as spent: they are added to the ledger. The re-run
//     draws fresh noise and fresh batches (the sampling key is new in every
//     process), so the steps are independent and Step(q, σ) each is their
//     exact cost.
//   - seeded mode, J > L: the re-run repeats each lost step bit for bit
//     (same batch, same noise, same weights), so it releases nothing new.
//     That is checked, not assumed: each journaled event carries the CRC-32C
//     of the released values (the noisy clipped sum), and a re-run step
//     whose release differs (another machine, another BLAS) stops the run
//     before anything is written.
//
// A fresh start in a --out whose journal records events (but no
// checkpoint survives) is refused: an earlier run released them.
const journalName = "privacy-journal.log"

const (
	journalMagic   = "dptrain-privacy-journal"
	journalVersion = 2
)

type journalHeader struct {
	Journal  string `json:"journal"`
	Version  int    `json:"version"`
	Data     string `json:"data"`     // data.Digest of the training set
	Examples int    `json:"examples"` // N
}

// journalEvent is one release: one entry of the ledger.
type journalEvent struct {
	N       int64  `json:"n"`                 // its position in the ledger, from 1
	Event   string `json:"event"`             // "step" or "data_norm"
	Step    int64  `json:"step,omitempty"`    // the training step it produced, from 1
	Release string `json:"release,omitempty"` // "crc32c:xxxxxxxx" of the released values
}

type journal struct {
	f    *os.File
	path string
	n    int64 // events in the file
}

// readJournal parses a journal. A line that does not parse (a write torn
// by a crash) still counts as an event, with unknown contents: events are
// over-counted rather than under-counted.
func readJournal(path string) (*journalHeader, []journalEvent, error) {
	f, err := openNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	first, err := br.ReadBytes('\n')
	if err != nil && err != io.EOF {
		return nil, nil, err
	}
	var h journalHeader
	if json.Unmarshal(bytes.TrimSpace(first), &h) != nil || h.Journal != journalMagic {
		return nil, nil, fmt.Errorf("%s: not a dptrain privacy journal (first line %.60q)", path, first)
	}
	if h.Version != journalVersion {
		return nil, nil, fmt.Errorf("%s: journal version %d, this dptrain reads %d", path, h.Version, journalVersion)
	}
	var evs []journalEvent
	for {
		line, err := br.ReadBytes('\n')
		if t := bytes.TrimSpace(line); len(t) > 0 {
			var e journalEvent
			if json.Unmarshal(t, &e) != nil {
				e = journalEvent{} // torn or damaged: counted, contents unknown
			}
			evs = append(evs, e)
		}
		if err == io.EOF {
			return &h, evs, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// createJournal writes a new journal holding only its header (replacing
// an event-less one) and opens it for appending.
func createJournal(path string, h journalHeader) (*journal, error) {
	h.Journal, h.Version = journalMagic, journalVersion
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if err := checkpoint.WriteFileAtomic(path, append(b, '\n')); err != nil {
		return nil, err
	}
	return appendJournal(path, 0)
}

// appendJournal opens an existing journal of n events for appending,
// terminating a line torn by a crash first.
func appendJournal(path string, n int64) (*journal, error) {
	f, err := openNoFollow(path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err = f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			if _, err = f.Write([]byte{'\n'}); err == nil {
				err = f.Sync()
			}
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &journal{f: f, path: path, n: n}, nil
}

// append writes one event and fsyncs it.
func (j *journal) append(e journalEvent) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", j.path, err)
	}
	j.n++
	return nil
}

func (j *journal) Close() error {
	if j == nil || j.f == nil {
		return nil
	}
	return j.f.Close()
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// releaseDigest returns the CRC-32C of the bits of the released values (in
// this machine's byte order: a digest is only compared on the machine kind
// that wrote it; "" without withCRC, for updates that release nothing) and
// whether they are all finite.
func releaseDigest(vs [][]float32, withCRC bool) (digest string, finite bool) {
	var h uint32
	finite = true
	for _, v := range vs {
		if len(v) == 0 {
			continue
		}
		if withCRC {
			h = crc32.Update(h, castagnoli, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
		}
		for _, x := range v {
			if math.Float32bits(x)&0x7f800000 == 0x7f800000 {
				finite = false
			}
		}
	}
	if !withCRC {
		return "", finite
	}
	return fmt.Sprintf("crc32c:%08x", h), finite
}
