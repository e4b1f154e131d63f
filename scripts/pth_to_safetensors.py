#!/usr/bin/env python3
"""Convert a PyTorch .pth / .pth.tar checkpoint into a safetensors file.

usage: pth_to_safetensors.py IN.pth OUT.safetensors [--arch resnet18]

An optional tool (needs only torch; torchvision for --arch), not a project
dependency. It accepts a bare state_dict, a dict holding one under
'state_dict' (as the Places365 CSAIL checkpoints resnet18_places365.pth.tar
have) or 'model', or a pickled nn.Module. A 'module.' prefix (DataParallel)
is stripped from every key. Floating tensors are written contiguous F32,
int64 buffers such as num_batches_tracked as I64 (other integer tensors are
widened to I64, bool to BOOL). The metadata is
{"source": basename(IN), "format": "torchvision"}.

With --arch, the keys and shapes are checked against
torchvision.models.ARCH(num_classes=<rows of fc.weight>) and the tool exits
non-zero naming the first missing, unexpected or mismatched key.
BatchNorm num_batches_tracked buffers may be missing (checkpoints from
PyTorch < 0.4.1 lack them; torch's own load_state_dict accepts that).

The output is written atomically (a temporary file, then os.replace). A
one-line summary is printed: tensors, parameters, classes.
"""
import argparse
import json
import os
import struct
import sys

import torch

BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def load(path, trust):
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except TypeError:  # torch < 1.13 has no weights_only
        return torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - report why the safe load failed
        if trust:
            raise
        sys.exit("%s: cannot load with weights_only=True (%s); rerun with --trust-pickle "
                 "if you trust this file" % (path, str(e).splitlines()[0] if str(e) else type(e).__name__))


def unwrap(obj):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, torch.nn.Module):
                return inner.state_dict()
            if isinstance(inner, dict):
                return inner
        return obj
    sys.exit("checkpoint is a %s, not a state_dict or a dict holding one" % type(obj).__name__)


def clean(state):
    out = {}
    for k, v in state.items():
        if not isinstance(k, str):
            sys.exit("key %r is not a string" % (k,))
        name = k[len("module."):] if k.startswith("module.") else k
        if not torch.is_tensor(v):
            sys.exit("%s: value is a %s, not a tensor (is this a state_dict?)" % (k, type(v).__name__))
        if name in out:
            sys.exit("%s: duplicate key after stripping 'module.'" % name)
        out[name] = v.detach().cpu()
    if not out:
        sys.exit("no tensors in the checkpoint")
    return out


def encode(name, t):
    """Returns (dtype, little-endian bytes) for tensor t."""
    t = t.contiguous()
    if t.is_floating_point():
        dt, t, fmt = "F32", t.to(torch.float32), "<f4"
    elif t.dtype == torch.bool:
        dt, t, fmt = "BOOL", t.to(torch.uint8), "u1"
    elif t.is_complex():
        sys.exit("%s: complex tensors are not supported" % name)
    else:
        dt, t, fmt = "I64", t.to(torch.int64), "<i8"
    try:
        return dt, t.numpy().astype(fmt, copy=False).tobytes()
    except (RuntimeError, ImportError):  # no numpy: go through Python lists
        vals = t.reshape(-1).tolist()
        code = {"F32": "f", "I64": "q", "BOOL": "B"}[dt]
        return dt, struct.pack("<%d%s" % (len(vals), code), *vals)


def write_safetensors(path, state, meta):
    header, blobs, off = {}, [], 0
    for name, t in state.items():
        dt, b = encode(name, t)
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-(8 + len(h)) % 8)
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".%s.tmp.%d" % (os.path.basename(path), os.getpid()))
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def check_arch(state, arch, classes):
    import torchvision

    ctor = getattr(torchvision.models, arch, None)
    if ctor is None or not callable(ctor):
        sys.exit("--arch %s: no such torchvision model" % arch)
    kwargs = {} if classes is None else {"num_classes": classes}
    want = ctor(**kwargs).state_dict()
    for k, v in want.items():
        if k not in state:
            if k.endswith(".num_batches_tracked"):
                continue
            sys.exit("--arch %s: missing key %s (shape %s)" % (arch, k, list(v.shape)))
        if tuple(state[k].shape) != tuple(v.shape):
            sys.exit("--arch %s: key %s has shape %s, want %s"
                     % (arch, k, list(state[k].shape), list(v.shape)))
    for k in state:
        if k not in want:
            sys.exit("--arch %s: unexpected key %s (shape %s)" % (arch, k, list(state[k].shape)))


def main():
    ap = argparse.ArgumentParser(description="Convert a PyTorch checkpoint to safetensors.")
    ap.add_argument("input", metavar="IN.pth")
    ap.add_argument("output", metavar="OUT.safetensors")
    ap.add_argument("--arch", help="check keys and shapes against torchvision.models.ARCH")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="allow arbitrary pickles (torch.load weights_only=False)")
    args = ap.parse_args()

    state = clean(unwrap(load(args.input, args.trust_pickle)))
    fc = state.get("fc.weight")
    classes = int(fc.shape[0]) if fc is not None and fc.dim() == 2 else None
    if args.arch:
        check_arch(state, args.arch, classes)
    write_safetensors(args.output, state,
                      {"source": os.path.basename(args.input), "format": "torchvision"})
    params = sum(t.numel() for k, t in state.items()
                 if t.is_floating_point() and not k.endswith(BUFFER_SUFFIXES))
    print("%s: %d tensors, %d parameters, %s classes"
          % (args.output, len(state), params, "?" if classes is None else classes))


if __name__ == "__main__":
    main()
