package data

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"path/filepath"

	"dptrain/checkpoint"
)

// shardWriter writes records into shard files and, after each shard is
// safely in place, the resume journal (see prepareJournal).
//
// Crash semantics: a shard is written to a hidden temporary, synced, and
// only then renamed to its name (and the folder synced); the journal naming
// it is written (synced, renamed, folder synced) after that, and the manifest, which makes the folder a prepared
// dataset, only when every shard is in place. So a crash at any moment
// leaves either no manifest (and a journal naming only complete, synced
// shards, from which Prepare resumes) or a complete dataset.
type shardWriter struct {
	dir        string
	m          *Manifest
	journal    *prepareJournal // nil: no journal (not resumable)
	shardBytes int64           // variable layout: close a shard at this size

	f        *os.File
	bw       *bufio.Writer
	h        hash.Hash
	n        int   // records in the open shard
	bytes    int64 // pixel bytes in the open shard (variable layout)
	index    []byte
	rec      []byte
	tmpNames []string // temporaries created by this writer
}

func newShardWriter(dir string, m *Manifest, j *prepareJournal, shardBytes int64) *shardWriter {
	w := &shardWriter{dir: dir, m: m, journal: j, shardBytes: shardBytes}
	if !m.variable() {
		w.rec = make([]byte, m.RecordSize)
	}
	return w
}

// write appends one record: item is the source item it came from (for the
// journal), pix its c×h×w pixels.
func (w *shardWriter) write(item, label int, pix []uint8, h, wd int) error {
	if w.f == nil {
		name := fmt.Sprintf("shard-%05d.bin", len(w.m.Shards))
		// An exclusive, hidden temporary: never a file (or link) planted
		// at a predictable name.
		f, err := os.CreateTemp(w.dir, "."+name+".tmp-*")
		if err != nil {
			return err
		}
		w.f, w.bw, w.h, w.n, w.bytes, w.index = f, bufio.NewWriterSize(f, 1<<20), sha256.New(), 0, 0, w.index[:0]
		w.m.Shards = append(w.m.Shards, Shard{File: name})
		w.tmpNames = append(w.tmpNames, f.Name())
	}
	out := w.rec
	if w.m.variable() {
		// Pixels only; the label and size go to the shard's index.
		out = pix[:3*h*wd]
		var e [variableIndexEntry]byte
		binary.LittleEndian.PutUint64(e[0:], uint64(w.bytes))
		binary.LittleEndian.PutUint32(e[8:], uint32(label))
		binary.LittleEndian.PutUint16(e[12:], uint16(h))
		binary.LittleEndian.PutUint16(e[14:], uint16(wd))
		w.index = append(w.index, e[:]...)
		w.bytes += int64(len(out))
		w.m.MaxLongSide = max(w.m.MaxLongSide, h, wd)
	} else {
		binary.LittleEndian.PutUint32(w.rec, uint32(label))
		copy(w.rec[labelBytes:], pix)
	}
	w.h.Write(out)
	if _, err := w.bw.Write(out); err != nil {
		return err
	}
	w.n++
	w.m.Count++
	full := w.n == w.m.RecordsPerShard
	if w.m.variable() {
		full = w.bytes+int64(len(w.index)) >= w.shardBytes
	}
	if full {
		return w.closeShard(item + 1)
	}
	crashPoint("record written")
	return nil
}

// closeShard completes the open shard (nextItem: the first source item not
// in it), renames it into place and records it in the journal.
func (w *shardWriter) closeShard(nextItem int) error {
	if w.f == nil {
		return nil
	}
	s := &w.m.Shards[len(w.m.Shards)-1]
	var err error
	if w.m.variable() {
		w.h.Write(w.index)
		_, err = w.bw.Write(w.index)
		s.Bytes = w.bytes + int64(len(w.index))
	}
	s.Count, s.SHA256 = w.n, hex.EncodeToString(w.h.Sum(nil))
	if err == nil {
		err = w.bw.Flush()
	}
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err == nil {
		err = os.Rename(w.tmpNames[len(w.tmpNames)-1], filepath.Join(w.dir, s.File))
	}
	if err == nil {
		// The rename durable before the journal names the shard (power
		// loss, not only a killed process).
		err = checkpoint.SyncDir(w.dir)
	}
	if err != nil {
		return err
	}
	crashPoint("shard renamed")
	if w.journal != nil {
		w.journal.NextItem = nextItem
		if err := w.journal.save(w.dir, w.m); err != nil {
			return err
		}
		crashPoint("journal saved")
	}
	return nil
}

// finish closes the last shard and writes the manifest atomically, then
// removes the journal.
func (w *shardWriter) finish(nextItem int) error {
	if err := w.closeShard(nextItem); err != nil {
		return err
	}
	b, err := json.MarshalIndent(w.m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(w.dir, manifestName, append(b, '\n')); err != nil {
		return err
	}
	crashPoint("manifest written")
	if w.journal != nil {
		if err := os.Remove(filepath.Join(w.dir, journalName)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// abortOpen removes the shard being written (the completed ones stay,
// named in the journal, for a resume).
func (w *shardWriter) abortOpen() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	for _, t := range w.tmpNames {
		os.Remove(t)
	}
}

// writeFileAtomic writes dir/name through a synced hidden temporary, a
// rename and a sync of dir, so that a crash (or power loss) leaves the old
// file or the new one, never a part (as checkpoint.WriteFileAtomic, but
// readable by all: a prepared set is often shared).
func writeFileAtomic(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	return checkpoint.SyncDir(dir)
}

// crashHook, when set (tests), is called at the points of a prepare where
// a crash must leave a resumable folder; the crash tests SIGKILL their
// child process there.
var crashHook func(point string)

func crashPoint(point string) {
	if crashHook != nil {
		crashHook(point)
	}
}
