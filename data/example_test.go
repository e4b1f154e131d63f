package data_test

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"dptrain/data"
)

// Example trains-style loading: open a dataset, Poisson-sample logical
// batches, and stream augmented physical batches.
func Example() {
	// A tiny ImageFolder written on the fly (real use: "imagefolder:train.tar",
	// "cifar10:DIR", "prepared:DIR", …).
	root, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(root)
	writeGrayPNGs(root, map[string]int{"cat": 6, "dog": 4}, 8)

	ds, err := data.Open("imagefolder:"+root, "", data.OpenOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	c, h, w := ds.Shape()
	fmt.Println(ds.Len(), ds.Classes(), c, h, w)

	// KeyFromSeed makes this example reproducible; in secure mode the key
	// comes from data.NewSecretKey() and is kept secret.
	sampler := data.PoissonSampler{N: ds.Len(), Rate: 0.5, Key: data.KeyFromSeed(5)}
	tr := data.Transform{Crop: data.CropRandom, Pad: 2, Flip: true, Mean: data.CIFAR10Mean, Std: data.CIFAR10Std}
	loader, err := data.NewLoader(ds, tr, data.LoaderOptions{K: 2, Physical: 4, Key: data.KeyFromSeed(7)})
	if err != nil {
		fmt.Println(err)
		return
	}
	stream := loader.Stream(sampler, 0)
	defer stream.Close()
	for {
		b, err := stream.Next()
		if err != nil {
			fmt.Println(err)
			return
		}
		// b.X holds b.N·b.K images of b.C×b.H×b.W floats; rows j·K…j·K+K−1
		// are the K augmentations of example b.Indices[j].
		fmt.Printf("step %d part %d/%d: %d examples, %d rows\n", b.Step, b.Part+1, b.Parts, b.N, b.N*b.K)
		last := b.Last() && b.Step == 1
		stream.Release(b)
		if last {
			break
		}
	}
	// Output:
	// 10 [cat dog] 3 8 8
	// step 0 part 1/2: 4 examples, 8 rows
	// step 0 part 2/2: 2 examples, 4 rows
	// step 1 part 1/2: 4 examples, 8 rows
	// step 1 part 2/2: 2 examples, 4 rows
}

func writeGrayPNGs(root string, counts map[string]int, size int) {
	for class, n := range counts {
		os.MkdirAll(filepath.Join(root, class), 0o755)
		for i := range n {
			os.WriteFile(filepath.Join(root, class, fmt.Sprintf("%d.png", i)), grayPNG(size, uint8(20*i)), 0o644)
		}
	}
}

func grayPNG(size int, v uint8) []byte {
	img := image.NewGray(image.Rect(0, 0, size, size))
	for i := range img.Pix {
		img.Pix[i] = v + uint8(i)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}
