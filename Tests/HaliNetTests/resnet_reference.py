#!/usr/bin/env python3
"""Independent NumPy reference for HaliNet's ResNet forward pass (float64, NCHW, unfolded batch norm).

usage: resnet_reference.py WEIGHTS.safetensors INPUT.safetensors OUT.bin
INPUT holds one tensor "input" of shape [N, H, W, 3] (NHWC, already normalised). OUT.bin receives float32
little-endian: features N×D (after global average pooling) followed by logits N×K.
Architecture from __metadata__["hali.arch"] (HaliNet's text form) or torchvision ResNet-18 when absent.
"""
import json, struct, sys
import numpy as np

DT = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8"}

def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, en = e["data_offsets"]
        out[name] = np.frombuffer(raw[base + b: base + en], dtype=DT[e["dtype"]]).reshape(e["shape"]).astype(np.float64)
    return out, meta

def conv(x, w, stride, pad):
    n, c, h, wd = x.shape
    o, ci, kh, kw = w.shape
    assert ci == c
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (wd + 2 * pad - kw) // stride + 1
    y = np.zeros((n, o, ho, wo))
    for ky in range(kh):
        for kx in range(kw):
            win = xp[:, :, ky:ky + stride * (ho - 1) + 1:stride, kx:kx + stride * (wo - 1) + 1:stride]
            y += np.einsum("nchw,oc->nohw", win, w[:, :, ky, kx])
    return y

def bn(x, t, p, eps=1e-5):
    g, b, m, v = (t[p + s] for s in (".weight", ".bias", ".running_mean", ".running_var"))
    sh = (1, -1, 1, 1)
    return (x - m.reshape(sh)) / np.sqrt(v.reshape(sh) + eps) * g.reshape(sh) + b.reshape(sh)

def maxpool(x, k=3, s=2, p=1):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    ho = (h + 2 * p - k) // s + 1
    wo = (w + 2 * p - k) // s + 1
    y = np.full((n, c, ho, wo), -np.inf)
    for ky in range(k):
        for kx in range(k):
            y = np.maximum(y, xp[:, :, ky:ky + s * (ho - 1) + 1:s, kx:kx + s * (wo - 1) + 1:s])
    return y

def parse_arch(meta):
    a = meta.get("hali.arch")
    if a is None:
        return dict(stem=(64, 7, 2, True), widths=[64, 128, 256, 512], blocks=[2, 2, 2, 2], strides=[1, 2, 2, 2])
    f = dict(p.split("=", 1) for p in a.split()[1:])
    st = f["stem"].split(",")
    ints = lambda k: [int(v) for v in f[k].split(",")]
    return dict(stem=(int(st[0]), int(st[1]), int(st[2]), st[3] == "maxpool"), widths=ints("widths"),
                blocks=ints("blocks"), strides=ints("strides"))

def forward(t, arch, x):
    relu = lambda z: np.maximum(z, 0)
    sw, sk, ss, mp = arch["stem"]
    h = relu(bn(conv(x, t["conv1.weight"], ss, sk // 2), t, "bn1"))
    if mp:
        h = maxpool(h)
    for i, w in enumerate(arch["widths"]):
        for j in range(arch["blocks"][i]):
            p = f"layer{i + 1}.{j}"
            s = arch["strides"][i] if j == 0 else 1
            o = relu(bn(conv(h, t[p + ".conv1.weight"], s, 1), t, p + ".bn1"))
            o = bn(conv(o, t[p + ".conv2.weight"], 1, 1), t, p + ".bn2")
            sc = bn(conv(h, t[p + ".downsample.0.weight"], s, 0), t, p + ".downsample.1") if p + ".downsample.0.weight" in t else h
            h = relu(o + sc)
    f = h.mean(axis=(2, 3))
    return f, f @ t["fc.weight"].T + t["fc.bias"]

if __name__ == "__main__":
    t, meta = read_safetensors(sys.argv[1])
    inp, _ = read_safetensors(sys.argv[2])
    x = inp["input"].transpose(0, 3, 1, 2)  # NHWC -> NCHW
    f, logits = forward(t, parse_arch(meta), x)
    with open(sys.argv[3], "wb") as fh:
        fh.write(f.astype("<f4").tobytes())
        fh.write(logits.astype("<f4").tobytes())
