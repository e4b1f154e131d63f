// Package featcache is an on-disk cache of the feature vectors that a
// frozen network prefix computes, so that only the model's suffix is
// trained: for N examples and V augmentation variants of each, it stores a
// feature vector of D float16 values and the int32 label of each example.
// Build computes a cache (resumably), Open memory-maps and verifies one,
// and Cache.Row decodes one feature vector to float32. It imports no other
// dptrain package but internal/float16 (the one binary16 codec) and
// checkpoint (for WriteFileAtomic).
//
// # File format (version 1)
//
// All integers are little-endian. A cache file is
//
//	offset      size      contents
//	0           8         magic "DPFEAT01"
//	8           8         uint64 L, length of the header JSON (1 ≤ L ≤ 16 MiB)
//	16          32        SHA-256 of the L header bytes
//	48          L         header JSON (UTF-8)
//	48+L        P         zero bytes, 0 ≤ P < 64, so that the data section
//	                      starts at O = 48+L+P, a multiple of 64
//	O           2·N·V·D   features, float16 (IEEE 754 binary16): row
//	                      r = i·V+v (example i, variant v) holds the D
//	                      values of that feature vector at O + 2·D·r
//	O+2·N·V·D   4·N       labels, int32: example i's at O + 2·N·V·D + 4·i
//
// and nothing after the labels. The header is an object with exactly the
// fields
//
//	{"format_version":1, "key":"<hex>", "n":N, "variants":V, "dim":D,
//	 "shape":[...], "meta":{...}, "data_sha256":"<64 hex digits>"}
//
// where D is the product of shape, "meta" is omitted when empty, and
// data_sha256 is the SHA-256 of the data section (the features, then the
// labels: bytes O to the end of the file). The header checksum at offset 16
// protects the header (and so data_sha256), so every byte of the file is
// covered by a checksum. A file written by Build is a deterministic
// function of its Spec and of the values fill produces: an interrupted and
// resumed build yields the same bytes as an uninterrupted one.
//
// Values are rounded to float16 to nearest, ties to even; Build refuses a
// NaN or a value with |x| > 65504 (the largest finite float16; this
// includes ±Inf and values that would round down to 65504) with a
// *ValueError naming the example, variant and element, so that no
// infinity or NaN is ever stored silently. Tiny values become float16
// subnormals or zero.
//
// # Verification
//
// Open checks, in this order, that path is a regular file, the magic, the
// header length (within the file and the limit), the header checksum, the
// zero padding, the format version (another one is ErrUnsupportedVersion),
// that the header has exactly the fields above with valid values (key of
// lowercase hex digits, N, V and every dimension ≥ 1, dim = product of
// shape), the file size (exactly O + 2NVD + 4N), the key (a cache built for
// another key is ErrStale) and finally the SHA-256 of the data section.
// That last check reads the whole file once, so opening costs about one
// sequential read of the file plus SHA-256 (roughly 1–2 GB/s on one core):
// seconds for a file of several GB. Exists performs every check but the
// data checksum and costs one small read. Errors wrap ErrCorrupt (or
// ErrStale, ErrUnsupportedVersion, or an os error such as fs.ErrNotExist)
// and name the file and what was wrong.
//
// A Cache maps the file read-only (MAP_SHARED). Build never modifies a
// file in place (it renames a new file over the old one), so an open Cache
// stays valid while its path is rebuilt; truncating or overwriting a
// mapped file by other means is not supported (reads may fault).
//
// # Building and crash semantics
//
// Build processes the examples in chunks of BuildOptions.ChunkSize. For
// each chunk it calls fill, converts to float16, and persists the chunk as
// PartialDir(path)/chunk-<8-digit index>, written atomically (temporary
// file, fsync, rename, fsync of the directory) with its own header: magic
// "DPFCHK01", the same prefix layout as the cache file (length, SHA-256 of
// the header, header JSON, zero padding to 64) and a header holding the
// key, a fingerprint, the chunk index, its example range [lo, hi) and the
// SHA-256 of its data (float16 features, then labels). The fingerprint is
// the SHA-256 of PartialDir(path)/spec.json, which records the format
// version, key, N, V, shape, meta and the effective chunk size, and is
// written (atomically) before any chunk.
//
// When Build starts it removes leftover temporary files (hidden
// ".<base>.tmp-*" files next to path, hidden files in the partial
// directory). If spec.json is missing or differs from the current build's,
// the whole partial directory belongs to another Spec, key or chunk size
// (or to a build killed before it wrote spec.json) and is deleted, not
// reused. Otherwise every chunk file that passes all of its checks (magic,
// header checksum, fingerprint, key, index, range, size, data SHA-256) is
// reused without calling fill, and any other chunk file is deleted and
// recomputed. Progress is first called for each reused chunk.
//
// When all chunks are done Build assembles the cache in a temporary file
// ".<base>.tmp-<random>" in path's directory, fsyncs it, renames it to
// path, fsyncs the directory, removes the partial directory and fsyncs the
// directory again. Hence, whenever the process is killed (SIGKILL) or the
// machine loses power (on a file system that honours fsync):
//
//   - path holds either nothing (or the file that was there before Build
//     started) or a complete, valid cache of the new Spec, never a partial
//     one;
//   - every chunk finished (persisted) before the crash is reused by the
//     next Build with the same Spec and chunk size; only the chunk being
//     computed, at most, is lost;
//   - a crash after the rename leaves the complete file and (part of) the
//     partial directory, which is then stale; the next Build of path with
//     the same Spec reassembles the file from it (calling fill only for
//     chunks already deleted) and removes it.
//
// If fill returns an error or produces a NaN or overflowing value, Build
// returns that error, wrapped and naming path, and leaves path untouched
// and the finished chunks in place for a resumed build. One process at a
// time may build a given path. Build always builds; use Exists or Open
// first to skip a cache that is already there.
//
// Misuse of the API (a Row buffer whose length is not D, an example or
// variant out of range, use of a closed Cache, a nil fill function) panics
// with a message starting "featcache: ".
package featcache
