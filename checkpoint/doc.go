// Package checkpoint saves and loads everything a DP-SGD trainer needs to
// resume exactly: named float32 tensor groups (weights, optimizer state, EMA),
// opaque blobs (RNG and sampler state, the accounting ledger, the config) and
// the step. It imports no other dptrain package but internal/float16 (the
// one binary16 codec).
//
// # Layout
//
// A checkpoint is a directory dir/ckpt-<step, 10 digits>/ holding
//
//	weights.safetensors     the model, readable by PyTorch users (safetensors, F32)
//	<group>.safetensors     one file per other tensor group ("optimizer", "ema", ...)
//	<blob>                  each blob byte for byte ("state.json", "ledger.json", ...)
//	manifest.json           written last: {"magic":"dptrain-checkpoint",
//	                        "format_version":1, "step":…, "created":…,
//	                        "files":{name:{"sha256":…,"size":…}}, "meta":{…}}
//
// # Atomicity
//
// Save writes into a hidden temporary sibling, fsyncs every file and the
// directory, renames it into place and fsyncs the parent. Readers ignore
// hidden directories, so a crash (even SIGKILL or power loss on a file
// system that honours fsync) never leaves a visible half-written checkpoint
// and never damages an earlier one. Load verifies the magic, the format
// version (a newer one is refused with ErrUnsupportedVersion), and the size
// and SHA-256 of every file; LoadLatest returns the newest checkpoint that
// passes and reports each newer one that did not. Prune keeps the newest N
// valid checkpoints. One process (rank 0) writes a given directory.
//
// # Safetensors
//
// The package has its own safetensors codec: EncodeSafetensors and
// WriteSafetensors write F32 (EncodeSafetensorsRaw any element type, e.g.
// F64, I64, U8) with sorted names and an 8-byte aligned header;
// DecodeSafetensorsRaw validates every field of a file (header length, JSON,
// dtypes, shapes, offsets that tile the data exactly), and ReadSafetensors
// loads a file exported elsewhere (e.g. for --init), converting F16, BF16,
// F64 and integer tensors to float32.
//
// Errors wrap the sentinel errors of this package (ErrNoCheckpoint,
// ErrChecksum, ...) and name the file, tensor or field and what was expected.
// Misuse of the API (a negative step, a tensor whose data disagrees with its
// shape, an invalid group or blob name) panics with a *UsageError.
package checkpoint
