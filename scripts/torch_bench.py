#!/usr/bin/python3
"""PyTorch yardstick for dptrain's benchmarks (BENCHMARKS.md, issues #2 and #4).

Builds the same architectures as dptrain's nn.NewModel (DESIGN.md §5,
nn/models.go) in plain PyTorch, checks the parameter count, and times
non-private training steps (forward, cross-entropy, backward, SGD with
momentum 0.9) on random data: median of --steps timed steps after --warmup
untimed ones. Prints one JSON object per run on stdout.

PyTorch is a yardstick only, never a dependency of dptrain. Run it with
Debian's interpreter (python3-torch 1.13):

    /usr/bin/python3 scripts/torch_bench.py --model resnet18 --image-size 32 --batch-size 128
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/bin/python3 scripts/torch_bench.py ...
    /usr/bin/python3 scripts/torch_bench.py --conv-layers   # per-layer conv GFLOP/s
    /usr/bin/python3 scripts/torch_bench.py --model wrn-16-4 --check-dump F
        # same function as dptrain's model: load the weights, input and logits
        # that `scripts/bench_compare.sh --equivalence` dumps from nn.NewModel

Peak memory is the process's ru_maxrss (the whole process, interpreter and
libtorch included, like dptrain's VmHWM); the RSS before the first step is
reported too (baseline_rss_mib).
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WS_EPS = 1e-5  # nn.WSEpsilon
GN_EPS = 1e-5


class WSConv2d(nn.Conv2d):
    """Convolution with weight standardisation (Qiao et al. 2019): each output
    filter standardised to zero mean, unit variance (biased), eps inside the
    square root, as dptrain's Conv2d with WS."""

    def forward(self, x):
        w = self.weight
        mu = w.mean(dim=(1, 2, 3), keepdim=True)
        var = w.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        w = (w - mu) / torch.sqrt(var + WS_EPS)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


def conv(cin, cout, k, stride=1, pad=0, bias=False, ws=False):
    cls = WSConv2d if ws else nn.Conv2d
    return cls(cin, cout, k, stride=stride, padding=pad, bias=bias)


def gn(c):
    """GroupNorm(min(32, C), C), the ResNets' BatchNorm replacement."""
    return nn.GroupNorm(min(32, c), c, eps=GN_EPS)


def cnn_mnist(c, h, w, classes, ws):
    h1, w1 = (h + 6 - 8) // 2 + 1 - 1, (w + 6 - 8) // 2 + 1 - 1
    h2, w2 = (h1 - 4) // 2 + 1 - 1, (w1 - 4) // 2 + 1 - 1
    return nn.Sequential(
        conv(c, 16, 8, 2, 3, bias=True, ws=ws), nn.Tanh(), nn.MaxPool2d(2, 1),
        conv(16, 32, 4, 2, 0, bias=True, ws=ws), nn.Tanh(), nn.MaxPool2d(2, 1),
        nn.Flatten(), nn.Linear(32 * h2 * w2, 32), nn.Tanh(), nn.Linear(32, classes))


def cnn_cifar(c, h, w, classes, ws):
    layers, cin = [], c
    for width in (32, 64, 128):
        layers += [conv(cin, width, 3, 1, 1, bias=True, ws=ws), nn.Tanh(),
                   conv(width, width, 3, 1, 1, bias=True, ws=ws), nn.Tanh(),
                   nn.MaxPool2d(2, 2)]
        cin = width
    layers += [nn.Flatten(), nn.Linear(128 * (h // 8) * (w // 8), 128), nn.Tanh(),
               nn.Linear(128, classes)]
    return nn.Sequential(*layers)


class Basic(nn.Module):
    def __init__(self, cin, width, stride, ws):
        super().__init__()
        self.conv1 = conv(cin, width, 3, stride, 1, ws=ws)
        self.bn1 = gn(width)
        self.conv2 = conv(width, width, 3, 1, 1, ws=ws)
        self.bn2 = gn(width)
        self.downsample = None
        if stride != 1 or cin != width:
            self.downsample = nn.Sequential(conv(cin, width, 1, stride, 0, ws=ws), gn(width))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(out + s)


class Bottleneck(nn.Module):
    """torchvision v1.5 bottleneck: stride on the 3×3 convolution."""

    def __init__(self, cin, width, stride, ws):
        super().__init__()
        self.conv1 = conv(cin, width, 1, ws=ws)
        self.bn1 = gn(width)
        self.conv2 = conv(width, width, 3, stride, 1, ws=ws)
        self.bn2 = gn(width)
        self.conv3 = conv(width, width * 4, 1, ws=ws)
        self.bn3 = gn(width * 4)
        self.downsample = None
        if stride != 1 or cin != width * 4:
            self.downsample = nn.Sequential(conv(cin, width * 4, 1, stride, 0, ws=ws), gn(width * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(out + s)


def resnet(blocks, bottleneck):
    def build(c, h, w, classes, ws, stem):
        if stem == "":
            stem = "cifar" if h <= 64 and w <= 64 else "imagenet"
        if stem == "imagenet":
            layers = [conv(c, 64, 7, 2, 3, ws=ws), gn(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        elif stem == "cifar":
            layers = [conv(c, 64, 3, 1, 1, ws=ws), gn(64), nn.ReLU()]
        else:
            raise SystemExit(f"--stem {stem!r}: want imagenet or cifar")
        exp = 4 if bottleneck else 1
        block = Bottleneck if bottleneck else Basic
        cin = 64
        for stage, n in enumerate(blocks):
            width = 64 << stage
            for bi in range(n):
                stride = 2 if stage > 0 and bi == 0 else 1
                layers.append(block(cin, width, stride, ws))
                cin = width * exp
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
        return nn.Sequential(*layers)
    return build


class PreAct(nn.Module):
    """Pre-activation wide-ResNet block (De et al. 2022): GN → ReLU → conv →
    GN → ReLU → conv, projection shortcut (when present) on the
    pre-activation."""

    def __init__(self, cin, width, stride, groups):
        super().__init__()
        self.gn1 = nn.GroupNorm(min(groups, cin), cin, eps=GN_EPS)
        self.conv1 = conv(cin, width, 3, stride, 1, ws=True)
        self.gn2 = nn.GroupNorm(groups, width, eps=GN_EPS)
        self.conv2 = conv(width, width, 3, 1, 1, ws=True)
        self.shortcut = None
        if cin != width or stride != 1:
            self.shortcut = conv(cin, width, 1, stride, 0, ws=True)

    def forward(self, x):
        a = F.relu(self.gn1(x))
        out = self.conv2(F.relu(self.gn2(self.conv1(a))))
        return out + (x if self.shortcut is None else self.shortcut(a))


def wrn(depth, k):
    def build(c, h, w, classes, ws, stem):
        n, groups = (depth - 4) // 6, 16
        layers, cin = [conv(c, 16, 3, 1, 1, ws=True)], 16
        for stage in range(3):
            width = (16 * k) << stage
            for bi in range(n):
                stride = 2 if stage > 0 and bi == 0 else 1
                layers.append(PreAct(cin, width, stride, groups))
                cin = width
        layers += [nn.GroupNorm(groups, cin, eps=GN_EPS), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                   nn.Flatten(), nn.Linear(cin, classes)]
        return nn.Sequential(*layers)
    return build


MODELS = {
    "cnn-mnist": lambda c, h, w, n, ws, stem: cnn_mnist(c, h, w, n, ws),
    "cnn-cifar": lambda c, h, w, n, ws, stem: cnn_cifar(c, h, w, n, ws),
    "wrn-16-4": wrn(16, 4),
    "resnet18": resnet((2, 2, 2, 2), False),
    "resnet34": resnet((3, 4, 6, 3), False),
    "resnet50": resnet((3, 4, 6, 3), True),
}

# Conv layers of the per-layer table (Cin = Cout, 3×3, stride 1, pad 1).
CONV_LAYERS = [(64, 32), (64, 56), (128, 16), (128, 28), (256, 8), (256, 14), (512, 4), (512, 7)]


def rss_mib():
    """Current resident set size from /proc/self/statm (MiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def allocator():
    pre = os.environ.get("LD_PRELOAD", "")
    return "jemalloc" if "jemalloc" in pre else "glibc"


def forward_flops(model, c, size):
    """FLOPs of one example's forward pass through the convolutions and
    linear layers (2 per multiply-add; normalisation and activations not
    counted). A training step costs about 3× this (forward, input and weight
    gradients)."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            total[0] += 2 * out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
        elif isinstance(m, nn.Linear):
            total[0] += 2 * out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, c, size, size))
    for h in hs:
        h.remove()
    return total[0]


def bench_model(a):
    torch.manual_seed(1)
    model = MODELS[a.model](a.channels, a.image_size, a.image_size, a.num_classes, a.ws, a.stem)
    params = sum(p.numel() for p in model.parameters())
    if a.expect_params and params != a.expect_params:
        sys.exit(f"torch_bench: {a.model}: {params} parameters, dptrain has {a.expect_params}")
    fwd = forward_flops(model, a.channels, a.image_size)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(a.batch_size, a.channels, a.image_size, a.image_size, generator=g)
    y = torch.randint(0, a.num_classes, (a.batch_size,), generator=g)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    base = rss_mib()
    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "framework": "pytorch", "torch": torch.__version__, "allocator": allocator(),
        "threads": torch.get_num_threads(), "model": a.model, "image_size": a.image_size,
        "batch_size": a.batch_size, "stem": a.stem, "params": params, "steps": a.steps,
        "step_seconds_median": med, "step_seconds": times,
        "examples_per_sec": a.batch_size / med,
        "forward_gflop_per_example": fwd / 1e9,
        "train_gflops": 3 * fwd * a.batch_size / med / 1e9,
        "baseline_rss_mib": round(base, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
    }


DUMP_MAGIC = 0x44505442  # "BTPD": header of a dptrain model dump


def check_dump(a):
    """Loads a dptrain model dump (int32 header: magic, batch, channels, size,
    classes, number of parameter floats; then float32 parameters in
    Model.Params() order, the input batch and dptrain's logits), copies the
    parameters into the PyTorch model in parameters() order (numel and shape
    checked) and compares the logits."""
    import numpy as np
    raw = open(a.check_dump, "rb").read()
    hdr = np.frombuffer(raw[:24], dtype="<i4")
    if hdr[0] != DUMP_MAGIC:
        sys.exit(f"torch_bench: {a.check_dump}: not a dptrain model dump (magic {hdr[0]:#x})")
    batch, ch, size, classes, nparam = (int(v) for v in hdr[1:])
    f = np.frombuffer(raw[24:], dtype="<f4")
    want = nparam + batch * ch * size * size + batch * classes
    if f.size != want:
        sys.exit(f"torch_bench: {a.check_dump}: {f.size} floats after the header, want {want}")
    model = MODELS[a.model](ch, size, size, classes, a.ws, a.stem)
    off = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if off + p.numel() > nparam:
                sys.exit(f"torch_bench: {a.model}: PyTorch has more parameters than the dump ({name})")
            p.copy_(torch.from_numpy(f[off:off + p.numel()].copy()).view_as(p))
            off += p.numel()
        if off != nparam:
            sys.exit(f"torch_bench: {a.model}: dump has {nparam} parameter floats, PyTorch {off}")
        x = torch.from_numpy(f[nparam:nparam + batch * ch * size * size].copy()).view(batch, ch, size, size)
        ours = torch.from_numpy(f[nparam + x.numel():].copy()).view(batch, classes)
        got = model(x)
    err = (got - ours).abs().max().item()
    scale = ours.abs().max().item()
    return {"model": a.model, "image_size": size, "stem": a.stem, "params": nparam,
            "max_abs_diff": err, "max_abs_logit": scale, "rel": err / max(scale, 1e-30)}


def bench_convs(a):
    """Forward and backward (input and weight gradients) GFLOP/s of single
    3×3 convolutions, FLOPs = 2·B·Cout·Cin·9·H·W forward, twice that
    backward, as nn's BenchmarkConvLayer counts them."""
    out = []
    for c, s in CONV_LAYERS:
        torch.manual_seed(1)
        b = a.batch_size
        x = torch.randn(b, c, s, s, requires_grad=True)
        w = torch.randn(c, c, 3, 3, requires_grad=True)
        flops = 2 * b * c * c * 9 * s * s
        yv = F.conv2d(x, w, padding=1)
        dy = torch.randn_like(yv)

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, padding=1)

        y = F.conv2d(x, w, padding=1)

        def bwd():
            torch.autograd.grad(y, (x, w), dy, retain_graph=True)

        row = {"framework": "pytorch", "layer": f"conv{c}-{s}x{s}", "batch": b, "threads": torch.get_num_threads()}
        for name, fn, fl in (("forward", fwd, flops), ("backward", bwd, 2 * flops)):
            fn()
            ts = []
            reps = max(3, a.steps)
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            row[name + "_gflops"] = fl / statistics.median(ts) / 1e9
        out.append(row)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=sorted(MODELS), default="resnet18")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--stem", default="", help="imagenet, cifar or '' (cifar for inputs ≤ 64×64)")
    p.add_argument("--ws", action="store_true", help="weight standardisation on every conv (always on for wrn-16-4)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (dptrain uses GOMAXPROCS)")
    p.add_argument("--expect-params", type=int, default=0, help="fail unless the model has this many parameters")
    p.add_argument("--conv-layers", action="store_true", help="per-layer conv GFLOP/s instead of a model")
    p.add_argument("--check-dump", default="", help="compare with a dptrain model dump instead of timing")
    a = p.parse_args()
    if a.image_size < 1 or a.batch_size < 1 or a.steps < 1 or a.warmup < 0 or a.threads < 1:
        sys.exit("torch_bench: --image-size, --batch-size, --steps, --threads must be ≥ 1, --warmup ≥ 0")
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    if a.check_dump:
        r = check_dump(a)
        print(json.dumps(r))
        if not r["rel"] < 1e-4:
            sys.exit(f"torch_bench: {a.model}: logits differ from dptrain's by {r['rel']:.3g} (relative)")
    elif a.conv_layers:
        for row in bench_convs(a):
            print(json.dumps(row))
    else:
        print(json.dumps(bench_model(a)))


if __name__ == "__main__":
    main()
