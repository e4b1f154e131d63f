package data

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// journalName is the resume journal of an unfinished prepare, in the
// output folder beside the shards it names.
const journalName = ".prepare-progress.json"

const journalFormat = "dptrain-prepare-progress"

// prepareJournal is what an interrupted Prepare needs to resume: the shards
// completed (each synced and renamed into place before it is named here),
// the first source item not in them, and the images skipped before it. It
// is valid only for the same options and classes (Fingerprint) and the
// same items before NextItem (Prefix); the items after it may have
// changed.
type prepareJournal struct {
	Format      string        `json:"format"`
	Fingerprint string        `json:"fingerprint"`
	Prefix      string        `json:"prefix"` // SHA-256 of the identities of the items before NextItem
	Manifest    *Manifest     `json:"manifest"`
	NextItem    int           `json:"next_item"`
	Skipped     []journalSkip `json:"skipped"`
	ClassCounts []int         `json:"class_counts"`

	prefix func() string // the current Prefix (set by prepare)
}

type journalSkip struct {
	Item   int    `json:"item"`
	File   string `json:"file"`
	Member string `json:"member,omitempty"`
	Err    string `json:"error"`
}

// save writes the journal for manifest m (its completed shards) atomically.
func (j *prepareJournal) save(dir string, m *Manifest) error {
	j.Format = journalFormat
	if j.prefix != nil {
		j.Prefix = j.prefix()
	}
	snap := *m
	snap.Shards = append([]Shard(nil), m.Shards...)
	j.Manifest = &snap
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return writeFileAtomic(dir, journalName, b)
}

// skip records a bad image skipped at source item i.
func (j *prepareJournal) skip(i int, b BadImage) {
	j.Skipped = append(j.Skipped, journalSkip{Item: i, File: b.File, Member: b.Member, Err: b.Err.Error()})
}

// skippedBefore returns the journal's skips before item n as BadImages.
func (j *prepareJournal) skippedBefore(n int) []BadImage {
	var out []BadImage
	kept := j.Skipped[:0]
	for _, s := range j.Skipped {
		if s.Item < n {
			out = append(out, BadImage{File: s.File, Member: s.Member, Err: errors.New(s.Err)})
			kept = append(kept, s)
		}
	}
	j.Skipped = kept
	return out
}

// pixelPipeline names the code that turns a source image into stored
// pixels: a resume by a build whose decoder or resampler gives other bits
// must not mix its shards with the earlier ones. Bump it when the
// resampler or the decoders' settings change.
const pixelPipeline = "resample-2 " + jpegDecoder

// fingerprint identifies a prepare's inputs as a whole: the pixel
// pipeline, the options that change what is written and the source's
// listing (its classes; a spec's content digest). The items themselves are
// covered by the journal's Prefix.
func fingerprint(opts PrepareOptions, listing func(w io.Writer) error) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "dptrain prepare v%d pipeline %q\nsrc %q split %q size %d short %d resize %s shard %d classes %q\n",
		preparedVersion, pixelPipeline, opts.Src, opts.Split, opts.ImageSize, opts.ShortSide, opts.Resize, opts.ShardBytes, opts.Classes)
	if err := listing(h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// loadJournal reads dir's journal for a prepare of fingerprint fp: nil if
// there is none. A journal for other inputs, or one whose shards are not
// all in place at their recorded sizes, is an error that says how to
// start over.
func loadJournal(dir, fp string) (*prepareJournal, error) {
	p := filepath.Join(dir, journalName)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	restart := fmt.Sprintf("remove %s and the shard-*.bin files beside it to start over", p)
	var j prepareJournal
	if err := json.Unmarshal(b, &j); err != nil || j.Format != journalFormat || j.Manifest == nil {
		return nil, &FormatError{File: p, Offset: -1, Msg: "unreadable resume journal of an interrupted prepare: " + restart, Err: err}
	}
	if j.Fingerprint != fp {
		return nil, &FormatError{File: p, Offset: -1, Msg: "an interrupted prepare of another source or with other options left this folder: rerun it with the same --src and flags to resume, or " + restart}
	}
	m := j.Manifest
	total := 0
	for i, s := range m.Shards {
		if s.File != fmt.Sprintf("shard-%05d.bin", i) {
			return nil, &FormatError{File: p, Offset: -1, Msg: fmt.Sprintf("shard %d is named %q: expected shard-%05d.bin; %s", i, s.File, i, restart)}
		}
		want := m.shardBytes(i)
		st, err := os.Stat(filepath.Join(dir, s.File))
		if err != nil || st.Size() != want {
			return nil, &FormatError{File: filepath.Join(dir, s.File), Offset: -1, Msg: fmt.Sprintf("shard of an interrupted prepare is missing or not %d bytes: %s", want, restart), Err: err}
		}
		total += s.Count
	}
	if total != m.Count || j.NextItem < 0 {
		return nil, &FormatError{File: p, Offset: -1, Msg: "inconsistent resume journal: " + restart}
	}
	return &j, nil
}

// removeTemporaries removes what a killed prepare left in dir beyond its
// journal: hidden temporaries (shards, journals, manifests being written)
// and shard files numbered keep or higher (renamed into place just before
// the kill, before the journal named them); nothing else.
func removeTemporaries(dir string, keep int) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		var k int
		if _, err := fmt.Sscanf(n, "shard-%05d.bin", &k); err == nil && n == fmt.Sprintf("shard-%05d.bin", k) && k >= keep {
			os.Remove(filepath.Join(dir, n))
			continue
		}
		if strings.Contains(n, ".tmp-") && (strings.HasPrefix(n, ".shard-") ||
			strings.HasPrefix(n, "."+journalName+".tmp-") || strings.HasPrefix(n, "."+manifestName+".tmp-")) {
			os.Remove(filepath.Join(dir, n))
		}
	}
}
