# Reference outputs of a torchvision ResNet, for dptrain/internal/torchref.
#
# usage: resnet_ref.py ARCH CLASSES N H W SEED OUTDIR [WRAPPED_PTH]
#
# Builds torchvision.models.ARCH(num_classes=CLASSES) after
# torch.manual_seed(SEED), randomises every BatchNorm (running_mean ~
# N(0, 0.1^2), running_var ~ U(0.5, 2), weight ~ U(0.5, 1.5), bias ~
# N(0, 0.1^2), num_batches_tracked a nonzero int) from a generator seeded
# SEED+1, draws the input torch.randn(N, 3, H, W) from a generator seeded
# SEED, and writes into OUTDIR:
#   weights.safetensors  the state_dict (F32, num_batches_tracked as I64)
#   input.bin            N*3*H*W float32, NCHW, little-endian
#   logits.bin           N*CLASSES float32, eval() mode
#   logits64.bin         N*CLASSES float64, the same model and input in double
# With WRAPPED_PTH it also torch.saves {'state_dict': {'module.'+k: v}} there
# (a DataParallel-style training checkpoint) for converter tests.
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision

torch.set_num_threads(2)


def write_safetensors(path, state, meta):
    header, blobs, off = {}, [], 0
    for name, t in state.items():
        t = t.detach().cpu().contiguous()
        if t.dtype == torch.int64:
            dt, a = "I64", t.numpy().astype("<i8", copy=False)
        elif t.is_floating_point():
            dt, a = "F32", t.to(torch.float32).numpy().astype("<f4", copy=False)
        else:
            raise SystemExit("tensor %s: unsupported dtype %s" % (name, t.dtype))
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main(argv):
    if len(argv) not in (7, 8):
        raise SystemExit("usage: resnet_ref.py ARCH CLASSES N H W SEED OUTDIR [WRAPPED_PTH]")
    arch = argv[0]
    classes, n, h, w, seed = (int(a) for a in argv[1:6])
    out = argv[6]

    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(num_classes=classes)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        k = 0
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                k += 1
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.num_batches_tracked.fill_(1000 + 7 * k)
    model.eval()

    gx = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, h, w, generator=gx)

    state = model.state_dict()
    write_safetensors(os.path.join(out, "weights.safetensors"), state,
                      {"format": "torchvision", "arch": arch, "seed": str(seed)})
    if len(argv) == 8:
        torch.save({"state_dict": {"module." + k: v for k, v in state.items()}, "arch": arch}, argv[7])

    with torch.no_grad():
        y = model(x)
        y64 = model.double()(x.double())
    x.numpy().astype("<f4").tofile(os.path.join(out, "input.bin"))
    y.numpy().astype("<f4").tofile(os.path.join(out, "logits.bin"))
    y64.numpy().astype("<f8").tofile(os.path.join(out, "logits64.bin"))


if __name__ == "__main__":
    main(sys.argv[1:])
