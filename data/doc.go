// Package data reads image-classification datasets and feeds them to DP-SGD
// training.
//
// # Formats
//
// Open reads a dataset named by a spec:
//
//	mnist:DIR            the four MNIST idx files (gzip'd or not); split train or test
//	idx:IMAGES,LABELS    one pair of idx files (ubyte, images rank 3 or 4)
//	cifar10:DIR          CIFAR-10 binary release (data_batch_*.bin / test_batch.bin)
//	cifar100:DIR         CIFAR-100 binary release (train.bin / test.bin, fine labels)
//	imagefolder:PATH     PATH/<class>/<image> (JPEG or PNG), a directory or a .tar
//	prepared:DIR         shards written by Prepare (dptrain prepare), memory-mapped
//
// Every dataset holds images of one fixed shape as uint8 in CHW layout
// (channel planes, then rows, then columns): Image(i, dst) copies example i
// into dst[:C*H*W]. Classes are sorted by name for ImageFolder and recorded in
// prepared manifests.
//
// # Sampling
//
// PoissonSampler draws each logical batch by including every example
// independently with probability Rate, the sampling that DP-SGD's accountants
// assume; it is deterministic given (Seed, step) and costs O(qN) per step
// (geometric skipping). ShuffleSampler (fixed-size batches from a shuffled
// epoch) is an explicitly non-default alternative whose privacy analysis is
// different; its Describe says so.
//
// # Transforms and loading
//
// A Transform turns a uint8 CHW image into float32 CHW: random crop with
// padding, horizontal flip, random-resized crop, centre crop, per-channel
// normalisation. Randomness is derived from (seed, step, example index,
// augmentation number), so results do not depend on scheduling. A Loader
// produces Batches of K augmentations per example (augmentation
// multiplicity) in NCHW layout, split into physical batches, with a
// background Stream that prefetches a bounded number of batches across step
// boundaries and recycles their buffers.
//
// # Errors
//
// Bad data (a corrupt image, a truncated or lying idx header, a label out of
// range, a manifest checksum mismatch, an empty class folder) is reported as a
// *FormatError that names the file, and the tar member or byte offset where
// known. With OpenOptions.SkipBadImages, undecodable images are skipped and
// counted instead (see Skipper). Misuse of the API (a dst that is too short, a
// negative index) panics with a UsageError.
package data
