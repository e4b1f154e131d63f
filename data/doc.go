// Package data reads image-classification datasets and feeds them to DP-SGD
// training.
//
// # Formats
//
// Open reads a dataset named by a spec:
//
//	mnist:DIR            the four MNIST idx files (gzip'd or not); split train or test
//	idx:IMAGES,LABELS    one pair of idx files (ubyte, images rank 3)
//	cifar10:DIR          CIFAR-10 binary release (data_batch_*.bin / test_batch.bin)
//	cifar100:DIR         CIFAR-100 binary release (train.bin / test.bin, fine labels)
//	imagefolder:PATH     PATH/<class>/<image> (JPEG or PNG), a directory or a .tar
//	prepared:DIR         shards written by Prepare (dptrain prepare), memory-mapped
//
// An ImageFolder is decoded into memory up front when it fits
// OpenOptions.MemoryBytes decoded (4 GiB by default), and streamed from its
// files otherwise (each Image reads and decodes one file or tar member).
// Prepare writes fixed-size square records (an image size) or, with a
// short side, each image with its aspect ratio kept (manifest version 2,
// see Manifest); datasets of the second kind implement SizedImager, through
// which the Loader's resized crops see whole images. Prepare runs on all
// cores, reports progress, and resumes after an interruption (see Prepare
// and the crash semantics of its shard writer).
//
// # Decoding
//
// DecodeImage and DecodeImageAtLeast decode JPEG and PNG into CHW uint8.
// In the cgo build JPEG goes through libjpeg-turbo (accurate integer IDCT,
// chroma replicated as image/jpeg does, warnings such as truncation are
// errors), which can decode at 1/2, 1/4 or 1/8 of the size in the DCT
// domain when the target's side allows (JPEGReduction); the pure-Go build
// (CGO_ENABLED=0, or -tags noturbo) uses image/jpeg and a box average to
// the same size. The two agree within a few levels at full size (mean
// |Δ| 0.2, max 4 on CIFAR-10 and Debian's sample photos).
//
// Every dataset holds images of one fixed shape as uint8 in CHW layout
// (channel planes, then rows, then columns): Image(i, dst) copies example i
// into dst[:C*H*W]. Classes are sorted by name for ImageFolder and recorded in
// prepared manifests. A Dataset is an io.Closer: close it when done. Close
// unmaps a prepared dataset's shards; for the datasets read into memory
// (idx, MNIST, CIFAR, ImageFolder) it does nothing. Closing twice is
// allowed.
//
// # Sampling
//
// PoissonSampler draws each logical batch by including every example
// independently with probability Rate, the sampling that DP-SGD's accountants
// assume; it is deterministic given (Key, step) and costs O(qN) per step
// (geometric skipping). ShuffleSampler (fixed-size batches from a shuffled
// epoch) is an explicitly non-default alternative whose privacy analysis is
// different; its Describe says so. The Sampling type names the two
// ("poisson", the zero value, and "shuffle"), as a config does: ParseSampling
// and String convert, Samplings lists the names.
//
// # Randomness
//
// Batch membership and augmentation come from a cryptographic generator
// keyed by 256 bits, a Key: NewSecretKey draws one from crypto/rand (secure
// mode); KeyFromSeed derives one from a public 64-bit seed for reproducible
// runs (seeded mode, where the batches are only as secret as the seed).
// Each Poisson step, each shuffle epoch and each (step, example index,
// augmentation number) has its own math/rand/v2 ChaCha8 generator, seeded
// with SHA-256(key ‖ stream tag ‖ step ‖ index ‖ k) (fixed-width
// little-endian; distinct tags for Poisson, shuffle and augmentation). So
// the streams are independent of each other and of the steps drawn before,
// and results depend on (key, step, …) only, never on scheduling or on the
// number of loader workers. The augmenters reseed a ChaCha8 they hold, so
// the hot path does not allocate.
//
// # Transforms and loading
//
// A Transform turns a uint8 CHW image into float32 CHW: random crop with
// padding, horizontal flip, random-resized crop, centre crop, centre-resized
// crop, per-channel normalisation. Its Crop is named as in a config (none,
// random, random-resized, center, center-resized: see Crops, ParseCrop and
// Crop.String). Randomness is derived from (key, step, example index,
// augmentation number), see above. A Loader produces Batches of K
// augmentations per example (augmentation multiplicity) in NCHW layout,
// split into physical batches, with a background Stream that prefetches a
// bounded number of batches across step boundaries and recycles their
// buffers.
//
// # Content digest
//
// Digest returns a SHA-256 digest ("sha256:…") of a dataset's size, shape,
// class names, labels and pixels in index order, so that a resumed run can
// notice training files replaced in place. Datasets implementing
// ContentDigester compute it cheaply: a prepared dataset from the shard
// checksums verified at open (with NoVerify, by hashing the shards on the
// first call); others are read once through Image and Label (about 30 ms
// for MNIST's training set). The two flavours differ for the same
// examples; each is stable across opens of the same files.
//
// # Errors
//
// Bad data (a corrupt image, a truncated or lying idx header, a label out of
// range, a manifest checksum mismatch, an empty class folder) is reported as a
// *FormatError that names the file, and the tar member or byte offset where
// known. Data that is valid but not supported (an idx file of floats, a
// prepared manifest of a newer version, an image that image/jpeg or
// image/png does not support) is a *FormatError too, for which
// errors.Is(err, errors.ErrUnsupported) is true. With
// OpenOptions.SkipBadImages, undecodable images are skipped and counted
// instead (see Skipper). Misuse of the API (a dst that is too short, a
// negative index) panics with a UsageError.
package data
