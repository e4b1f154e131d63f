package featcache

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSpec is small so that the seed file is small.
func fuzzSpec() Spec {
	return Spec{Key: "abcd", N: 3, Variants: 2, Shape: []int{2, 1}, Meta: map[string]string{"m": "v"}}
}

func fuzzSeed(f *testing.F) []byte {
	spec := fuzzSpec()
	path := filepath.Join(f.TempDir(), "seed.feat")
	if err := Build(path, spec, BuildOptions{ChunkSize: 2}, testFill(f, spec)); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// openAndReadAll opens b as a cache file and, if it is accepted, reads
// every row and label.
func openAndReadAll(t *testing.T, b []byte) {
	path := filepath.Join(t.TempDir(), "c.feat")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path, fuzzSpec().Key)
	if err != nil {
		if c != nil {
			t.Fatal("Cache returned with an error")
		}
		return
	}
	defer c.Close()
	s := c.Spec()
	row := make([]float32, s.Dim())
	for i := range s.N {
		_ = c.Label(i)
		for v := range s.Variants {
			c.Row(row, i, v)
		}
	}
}

func FuzzOpen(f *testing.F) {
	seed := fuzzSeed(f)
	f.Add(seed)
	f.Add(seed[:len(seed)-1])
	f.Add(seed[:64])
	f.Add([]byte{})
	f.Add([]byte("DPFEAT01"))
	f.Fuzz(openAndReadAll)
}

// FuzzOpenHeader fuzzes the header JSON behind a correct header checksum,
// so that the field validation is reached.
func FuzzOpenHeader(f *testing.F) {
	seed := fuzzSeed(f)
	hlen := binary.LittleEndian.Uint64(seed[8:16])
	hdr, data := seed[48:48+hlen], seed[dataOffset(int(hlen)):]
	f.Add(hdr, data)
	f.Add([]byte(`{"format_version":1,"key":"abcd","n":4611686018427387904,"variants":2,"dim":2,"shape":[2,1],"data_sha256":"`+
		"0000000000000000000000000000000000000000000000000000000000000000"+`"}`), data)
	f.Add([]byte(`{"format_version":1,"key":"abcd","n":1,"variants":1,"dim":1,"shape":[9223372036854775807,2],"data_sha256":""}`), []byte{})
	f.Add([]byte(`{"format_version":2}`), data)
	f.Fuzz(func(t *testing.T, hdr, data []byte) {
		if len(hdr) == 0 || len(hdr) > 1<<16 {
			return
		}
		openAndReadAll(t, append(encodePrefix(fileMagic, hdr), data...))
	})
}
