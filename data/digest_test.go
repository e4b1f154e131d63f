package data

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var digestFormat = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func mustDigest(t *testing.T, ds Dataset) string {
	t.Helper()
	d, err := Digest(ds)
	if err != nil {
		t.Fatal(err)
	}
	if !digestFormat.MatchString(d) {
		t.Fatalf("digest %q: expected sha256:<64 hex digits>", d)
	}
	return d
}

// cloneMem deep-copies a memDataset.
func cloneMem(d *memDataset) *memDataset {
	c := *d
	c.classes, c.pix, c.labels = slices.Clone(d.classes), slices.Clone(d.pix), slices.Clone(d.labels)
	return &c
}

// TestDigestDetectsChanges: every kind of change to the content gives a
// new digest, and Digest does not modify its input.
func TestDigestDetectsChanges(t *testing.T) {
	base := synthDataset(20, 3, 4, 5, 4)
	size := 3 * 4 * 5
	orig := cloneMem(base)
	tests := []struct {
		name string
		edit func(d *memDataset)
	}{
		{"unchanged", func(d *memDataset) {}},
		{"one pixel", func(d *memDataset) { d.pix[7*size+13]++ }},
		{"last pixel", func(d *memDataset) { d.pix[len(d.pix)-1] ^= 1 }},
		{"one label", func(d *memDataset) { d.labels[5] = (d.labels[5] + 1) % 4 }},
		{"pair swapped", func(d *memDataset) {
			a, b := d.pix[2*size:3*size], d.pix[3*size:4*size]
			tmp := slices.Clone(a)
			copy(a, b)
			copy(b, tmp)
			d.labels[2], d.labels[3] = d.labels[3], d.labels[2]
		}},
		{"images of a pair swapped", func(d *memDataset) {
			a, b := d.pix[2*size:3*size], d.pix[3*size:4*size]
			tmp := slices.Clone(a)
			copy(a, b)
			copy(b, tmp)
		}},
		{"class name", func(d *memDataset) { d.classes[1] = "B" }},
		{"class names re-split", func(d *memDataset) { d.classes[0], d.classes[1] = "ab", "" }},
		{"one more class", func(d *memDataset) { d.classes = append(d.classes, "e") }},
		{"shape", func(d *memDataset) { d.h, d.w = 5, 4 }},
		{"last example dropped", func(d *memDataset) { d.pix, d.labels = d.pix[:19*size], d.labels[:19] }},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		d := cloneMem(base)
		tt.edit(d)
		got := mustDigest(t, d)
		if prev, ok := seen[got]; ok {
			t.Errorf("%s: same digest as %s", tt.name, prev)
		}
		seen[got] = tt.name
	}
	if mustDigest(t, base) != mustDigest(t, cloneMem(base)) {
		t.Fatal("the same content gave different digests")
	}
	if !slices.Equal(base.pix, orig.pix) || !slices.Equal(base.labels, orig.labels) || !slices.Equal(base.classes, orig.classes) {
		t.Fatal("Digest modified its input")
	}
}

// firstN is a first-n wrapper like train's subset: it embeds the Dataset
// interface and overrides Len.
type firstN struct {
	Dataset
	n int
}

func (f firstN) Len() int { return f.n }

// TestDigestFilesAndWrappers: the same files opened twice give the same
// digest, files replaced in place (same names, same count) a different
// one; a first-n wrapper digests exactly its examples; Image errors name
// the example.
func TestDigestFilesAndWrappers(t *testing.T) {
	dir := t.TempDir()
	img, lab := filepath.Join(dir, "images"), filepath.Join(dir, "labels")
	mem := synthDataset(30, 1, 6, 6, 10)
	mem.classes = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"} // as OpenIDX names them
	labels := make([]uint8, 30)
	for i := range labels {
		labels[i] = uint8(mem.Label(i))
	}
	write := func(pix, labels []uint8) {
		writeFile(t, img, encodeIDX(t, []int{30, 6, 6}, pix, true))
		writeFile(t, lab, encodeIDX(t, []int{30}, labels, false))
	}
	open := func() Dataset {
		ds, err := OpenIDX(img, lab)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	write(mem.pix, labels)
	first := mustDigest(t, open())
	if again := mustDigest(t, open()); again != first {
		t.Fatalf("same files, two opens: %s vs %s", first, again)
	}
	if m := mustDigest(t, mem); m != first {
		t.Fatal("idx files and the same content in memory digest differently")
	}

	inverted := slices.Clone(mem.pix)
	for i := range inverted {
		inverted[i] = 255 - inverted[i]
	}
	write(inverted, labels)
	if mustDigest(t, open()) == first {
		t.Fatal("images replaced in place: digest unchanged")
	}
	shifted := slices.Clone(labels)
	for i := range shifted {
		shifted[i] = (shifted[i] + 1) % 10
	}
	write(mem.pix, shifted)
	if mustDigest(t, open()) == first {
		t.Fatal("labels replaced in place: digest unchanged")
	}

	// A first-n wrapper digests its n examples, not the inner dataset.
	head := cloneMem(mem)
	head.pix, head.labels = head.pix[:12*36], head.labels[:12]
	if got, want := mustDigest(t, firstN{mem, 12}), mustDigest(t, head); got != want {
		t.Fatal("first-12 wrapper: digest is not that of the first 12 examples")
	}
	if mustDigest(t, firstN{mem, 30}) != first {
		t.Fatal("wrapper over all examples: digest differs from the dataset's")
	}

	_, err := Digest(failingDataset{synthDataset(10, 1, 4, 4, 2)})
	if err == nil || !strings.Contains(err.Error(), "example 3: disk on fire") {
		t.Fatalf("err = %v, want the failing example named", err)
	}
}

// TestPreparedDigest: a prepared set's digest comes from its verified
// shard checksums, equals across opens (with and without NoVerify), and
// changes when a shard or a class name changes.
func TestPreparedDigest(t *testing.T) {
	f := newFolderFixture(t, 3, 3)
	out := filepath.Join(t.TempDir(), "p")
	rep, err := Prepare(PrepareOptions{Src: f.writeTar(t), Out: out, ShardBytes: 3 * (4 + 27)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Manifest.Shards) < 2 {
		t.Fatalf("%d shards: the test needs several", len(rep.Manifest.Shards))
	}
	open := func(opts OpenOptions) *preparedDataset {
		t.Helper()
		ds, err := OpenPrepared(out, opts)
		if err != nil {
			t.Fatal(err)
		}
		return ds.(*preparedDataset)
	}
	// digestOf opens, digests and closes (no mapping outlives the shard
	// files rewritten below).
	digestOf := func(opts OpenOptions) string {
		t.Helper()
		ds := open(opts)
		defer ds.Close()
		return mustDigest(t, ds)
	}
	a := open(OpenOptions{})
	if a.sums == nil {
		t.Fatal("verified open did not keep the shard checksums (ContentDigest would re-read the shards)")
	}
	var _ ContentDigester = a
	d := mustDigest(t, a)
	if d2 := digestOf(OpenOptions{}); d2 != d {
		t.Fatalf("two opens: %s vs %s", d, d2)
	}
	nv := open(OpenOptions{NoVerify: true})
	if nv.sums != nil {
		t.Fatal("NoVerify open computed checksums")
	}
	if got := mustDigest(t, nv); got != d {
		t.Fatalf("NoVerify open: %s, verified %s", got, d)
	}
	// The generic path over the same examples is a different, equally
	// stable digest.
	generic := mustDigest(t, firstN{a, a.Len()})
	if generic == d || generic != mustDigest(t, firstN{nv, nv.Len()}) {
		t.Fatal("generic digest of the prepared examples: equal to the shard digest or unstable")
	}
	a.Close()
	nv.Close()

	// A pixel of shard 1 changed in place.
	shard1 := filepath.Join(out, "shard-00001.bin")
	orig, err := os.ReadFile(shard1)
	if err != nil {
		t.Fatal(err)
	}
	changed := slices.Clone(orig)
	changed[10]++
	writeFile(t, shard1, changed)
	if got := digestOf(OpenOptions{NoVerify: true}); got == d {
		t.Fatal("NoVerify: shard changed, digest unchanged")
	}
	// … and its manifest checksum updated to match, so it verifies.
	m := *rep.Manifest
	m.Shards = slices.Clone(m.Shards)
	sum := sha256.Sum256(changed)
	m.Shards[1].SHA256 = hex.EncodeToString(sum[:])
	writeManifest(t, out, &m)
	changedDigest := digestOf(OpenOptions{})
	if changedDigest == d {
		t.Fatal("shard changed (manifest updated): digest unchanged")
	}
	// A class renamed in the manifest.
	writeFile(t, shard1, orig)
	m.Shards[1].SHA256 = rep.Manifest.Shards[1].SHA256
	m.Classes = []string{"ant", "bee", "cow"}
	writeManifest(t, out, &m)
	if got := digestOf(OpenOptions{}); got == d || got == changedDigest {
		t.Fatal("class renamed: digest unchanged")
	}
	m.Classes = rep.Manifest.Classes
	writeManifest(t, out, &m)
	if got := digestOf(OpenOptions{}); got != d {
		t.Fatal("original files restored: digest differs")
	}

	// After Close, an unverified set cannot be digested any more.
	ds, err := OpenPrepared(out, OpenOptions{NoVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	ds.Close()
	if _, err := Digest(ds); err == nil || !strings.Contains(err.Error(), "after Close") {
		t.Fatalf("digest after Close: %v", err)
	}
}

func writeManifest(t *testing.T, dir string, m *Manifest) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, manifestName), b)
}
