// Package synthdata writes small synthetic data sets in the real on-disk
// formats dptrain reads, for tests that need a data shape the shipped
// data cannot give quickly (e.g. 3×32×32 images without decoding the
// CIFAR-10 JPEG tars).
package synthdata

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// WriteCIFAR10 writes a CIFAR-10 binary folder (data_batch_1.bin with
// nTrain records, test_batch.bin with nTest) into dir: 10 classes, each
// image a class-dependent colour gradient plus noise from seed, so that a
// model can learn something. dir is created if needed. The spec to read it
// is "cifar10:" + dir.
func WriteCIFAR10(dir string, nTrain, nTest int, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, 0x63696661))
	write := func(name string, n int) error {
		const pixels = 3 * 32 * 32
		b := make([]byte, 0, n*(1+pixels))
		for i := 0; i < n; i++ {
			label := r.IntN(10)
			b = append(b, byte(label))
			for c := 0; c < 3; c++ {
				for y := 0; y < 32; y++ {
					for x := 0; x < 32; x++ {
						v := 40 + 18*label + (c*label*7+x*(label%3)+y*((label+c)%4))%60 + r.IntN(50)
						b = append(b, byte(min(v, 255)))
					}
				}
			}
		}
		return os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	if err := write("data_batch_1.bin", nTrain); err != nil {
		return err
	}
	return write("test_batch.bin", nTest)
}

// WriteIDX writes n grey h×w images and their labels as idx files
// (img.idx, lab.idx) into dir, created if needed: pixel (i, y, x) is
// pix(i, y, x) and example i's label is label(i). It returns the spec
// "idx:IMAGES,LABELS".
func WriteIDX(dir string, n, h, w int, pix func(i, y, x int) byte, label func(i int) byte) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	img := make([]byte, 16, 16+n*h*w)
	binary.BigEndian.PutUint32(img[0:], 0x803) // unsigned bytes, rank 3
	binary.BigEndian.PutUint32(img[4:], uint32(n))
	binary.BigEndian.PutUint32(img[8:], uint32(h))
	binary.BigEndian.PutUint32(img[12:], uint32(w))
	lab := make([]byte, 8, 8+n)
	binary.BigEndian.PutUint32(lab[0:], 0x801) // unsigned bytes, rank 1
	binary.BigEndian.PutUint32(lab[4:], uint32(n))
	for i := range n {
		for y := range h {
			for x := range w {
				img = append(img, pix(i, y, x))
			}
		}
		lab = append(lab, label(i))
	}
	ip, lp := filepath.Join(dir, "img.idx"), filepath.Join(dir, "lab.idx")
	if err := os.WriteFile(ip, img, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(lp, lab, 0o644); err != nil {
		return "", err
	}
	return "idx:" + ip + "," + lp, nil
}
