package train

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"dptrain/data"
)

// subset is the first n examples of a dataset (max_train_examples).
type subset struct {
	data.Dataset
	n int
}

func (s subset) Len() int { return s.n }

// ImageSized and MaxPixels forward the inner set's whole images (a
// variable-size prepared set) to the loader's resized crops.
func (s subset) ImageSized(i int, dst []uint8) (h, w int, err error) {
	return data.ImageSizedOf(s.Dataset, i, dst)
}

func (s subset) MaxPixels() int { return data.MaxPixelsOf(s.Dataset) }

// ContentDigest names the first n examples: from the inner set's own
// digest when it has one (a prepared set, without re-reading its shards),
// otherwise by reading the n examples.
func (s subset) ContentDigest() (string, error) {
	if d, ok := s.Dataset.(data.ContentDigester); ok {
		inner, err := d.ContentDigest()
		if err != nil {
			return "", err
		}
		h := sha256.Sum256([]byte(fmt.Sprintf("dptrain/train: the first %d examples of %s", s.n, inner)))
		return "sha256:" + hex.EncodeToString(h[:]), nil
	}
	return data.Digest(struct{ data.Dataset }{s})
}

func limit(ds data.Dataset, n int) data.Dataset {
	if n > 0 && n < ds.Len() {
		return subset{ds, n}
	}
	return ds
}

// openData opens the training and (optional) test sets of a config.
// part, if set, is the block of the training set this process reads
// (data.OpenOptions.Part).
func openData(cfg *Config, part func(n int) (lo, hi int)) (train, test data.Dataset, err error) {
	opts := data.OpenOptions{ImageSize: cfg.ImageSize, SkipBadImages: cfg.SkipBadImages, Workers: cfg.Threads}
	trainOpts := opts
	trainOpts.Part = part
	train, err = data.Open(cfg.TrainData, "train", trainOpts)
	if err != nil {
		return nil, nil, fmt.Errorf("train_data %s: %w", cfg.TrainData, err)
	}
	train = limit(train, cfg.MaxTrainExamples)
	if cfg.TestData != "" {
		opts.Classes = train.Classes()
		test, err = data.Open(cfg.TestData, "test", opts)
		if err != nil {
			train.Close()
			return nil, nil, fmt.Errorf("test_data %s: %w", cfg.TestData, err)
		}
		test = limit(test, cfg.MaxTestExamples)
		tc, th, tw := test.Shape()
		c, h, w := train.Shape()
		if tc != c || th != h || tw != w {
			train.Close()
			test.Close()
			return nil, nil, fmt.Errorf("test_data %s: images %dx%dx%d, train_data %dx%dx%d (set image_size to resize both)", cfg.TestData, tc, th, tw, c, h, w)
		}
		if err := checkLabels(test, train.NumClasses()); err != nil {
			train.Close()
			test.Close()
			return nil, nil, fmt.Errorf("test_data %s: %w; the training data %s has %d classes", cfg.TestData, err, cfg.TrainData, train.NumClasses())
		}
	}
	return train, test, nil
}

// checkLabels returns an error naming the first example whose label is
// not one of k classes (the model could not score it: the loss would be
// undefined).
func checkLabels(ds data.Dataset, k int) error {
	for i := range ds.Len() {
		if l := ds.Label(i); l < 0 || l >= k {
			return fmt.Errorf("example %d has label %d, expected 0 to %d", i, l, k-1)
		}
	}
	return nil
}

// transform builds the data transform of a config for images of c×h×w
// (normalize "" means its default for such images).
func transform(cfg *Config, c, h, w int) (data.Transform, error) {
	tr := data.Transform{Pad: cfg.CropPadding, Flip: cfg.Flip, CenterFraction: cfg.CenterFraction}
	if cfg.CropSize > 0 {
		tr.Height, tr.Width = cfg.CropSize, cfg.CropSize
	}
	var err error
	if tr.Crop, err = data.ParseCrop(cfg.Crop); err != nil {
		return tr, fmt.Errorf("crop: %w", err)
	}
	norm := cfg.Normalize
	if norm == "" {
		norm = defaultNormalize(cfg.TrainData, c, h)
	}
	switch norm {
	case "mnist":
		tr.Mean, tr.Std = data.MNISTMean, data.MNISTStd
	case "cifar10":
		tr.Mean, tr.Std = data.CIFAR10Mean, data.CIFAR10Std
	case "cifar100":
		tr.Mean, tr.Std = data.CIFAR100Mean, data.CIFAR100Std
	case "imagenet":
		tr.Mean, tr.Std = data.ImageNetMean, data.ImageNetStd
	case "caffe":
		tr.Mean, tr.Std = data.CaffeMean, data.CaffeStd
	case "none":
	default:
		return tr, fmt.Errorf("normalize: %q, want mnist, cifar10, cifar100, imagenet, caffe or none", cfg.Normalize)
	}
	if tr.Mean != nil && len(tr.Mean) != c {
		return tr, fmt.Errorf("normalize: %s has %d channels, images have %d", norm, len(tr.Mean), c)
	}
	return tr, nil
}
