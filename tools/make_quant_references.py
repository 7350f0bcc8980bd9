#!/usr/bin/env python3
"""Reference vectors for the engine's ggml block formats (tests/engine/tst_quants.cpp).

Uses llama.cpp's gguf-py (numpy) as the independent implementation:

  <TYPE>/dequant/bytes   U8  [rows, row_bytes]  random *valid* blocks (random bits, with
                                                finite fp16 scales / sane E8M0 exponents)
  <TYPE>/dequant/values  F32 [rows, n]          gguf-py's dequantize() of those bytes
  <TYPE>/quant/input     F32 [rows, n]          random rows (+ zero, tie and outlier rows)
  <TYPE>/quant/bytes     U8  [rows, row_bytes]  gguf-py's quantize() (types it can quantize)
  <TYPE>/quant/values    F32 [rows, n]          gguf-py's dequantize() of quant/bytes

Written as one safetensors file (tests/data/quants/gguf_py_reference.safetensors).

  python3 tools/make_quant_references.py --gguf-py /path/to/llama.cpp/gguf-py --out FILE

Needs only numpy. gguf-py is imported module by module (constants, lazy, quants) so its
package __init__ (which wants yaml, sentencepiece, ...) is not run.
"""
import argparse
import json
import struct
import sys
import types

import numpy as np


def load_gguf_quants(path):
    pkg = types.ModuleType("gguf")
    pkg.__path__ = [path + "/gguf"]
    sys.modules["gguf"] = pkg
    import importlib
    constants = importlib.import_module("gguf.constants")
    quants = importlib.import_module("gguf.quants")
    return constants, quants


# Byte offsets of the fp16 scale fields in each block (ggml-common.h layouts).
F16_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    "IQ4_NL": [0], "IQ4_XS": [0],
}
DEQUANT_TYPES = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K",
                 "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "MXFP4"]
QUANT_TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "MXFP4", "BF16"]


def random_f16(rng, n):
    # Magnitudes from 1e-7 (fp16 subnormals) to ~10, both signs, a few exact zeros.
    mag = 10.0 ** rng.uniform(-7, 1, size=n)
    v = (mag * rng.choice([-1.0, 1.0], size=n)).astype(np.float16)
    v[rng.random(n) < 0.03] = 0
    assert np.all(np.isfinite(v))
    return v


def random_blocks(rng, name, block_size, type_size, rows, n):
    nb = rows * (n // block_size)
    if name == "F32":
        return rng.standard_normal(rows * n).astype(np.float32).view(np.uint8).reshape(rows, -1)
    if name == "F16":
        return random_f16(rng, rows * n).view(np.uint8).reshape(rows, -1)
    if name == "BF16":
        f = (rng.standard_normal(rows * n) * 10.0 ** rng.uniform(-3, 3, rows * n)).astype(np.float32)
        return (f.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(rows, -1)
    b = rng.integers(0, 256, size=(nb, type_size), dtype=np.uint8)
    if name == "MXFP4":
        b[:, 0] = rng.integers(100, 150, size=nb, dtype=np.uint8)
        b[0, 0] = 0   # E8M0 subnormal-range exponents
        b[1, 0] = 1
    for off in F16_FIELDS.get(name, []):
        b[:, off:off + 2] = random_f16(rng, nb).view(np.uint8).reshape(nb, 2)
    return b.reshape(rows, -1)


def quant_inputs(rng, rows, n):
    x = rng.standard_normal((rows, n)).astype(np.float32)
    x[0] *= 0.0                                    # all-zero blocks
    x[1] = np.round(rng.uniform(-8, 8, n))         # integers: exact .5 ties after scaling
    x[1, ::32] = -8
    x[2] *= 10.0 ** rng.uniform(-6, 3, n)          # wide dynamic range per element
    x[3, 5] = 1000.0                                # one outlier
    x[4] = np.abs(x[4]) + 0.5                      # all positive (min > 0)
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf-py", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20240611)
    args = ap.parse_args()
    constants, quants = load_gguf_quants(args.gguf_py)
    T = constants.GGMLQuantizationType
    rng = np.random.default_rng(args.seed)

    tensors = {}
    for name in DEQUANT_TYPES:
        qt = T[name]
        block_size, type_size = constants.GGML_QUANT_SIZES[qt]
        rows, n = 6, 512
        b = random_blocks(rng, name, block_size, type_size, rows, n)
        if name == "F32":
            v = b.view(np.float32).reshape(rows, n)
        else:
            v = quants.dequantize(b, qt)
        v = np.asarray(v, dtype=np.float32).reshape(rows, n)
        tensors[f"{name}/dequant/bytes"] = b
        tensors[f"{name}/dequant/values"] = v

    for name in QUANT_TYPES:
        qt = T[name]
        rows, n = 8, 256
        x = quant_inputs(rng, rows, n)
        q = np.asarray(quants.quantize(x, qt)).view(np.uint8).reshape(rows, -1)
        v = np.asarray(quants.dequantize(q, qt), dtype=np.float32).reshape(rows, n)
        tensors[f"{name}/quant/input"] = x
        tensors[f"{name}/quant/bytes"] = q
        tensors[f"{name}/quant/values"] = v

    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        dt = {np.dtype(np.uint8): "U8", np.dtype(np.float32): "F32"}[a.dtype]
        raw = a.tobytes()
        header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"generator": "tools/make_quant_references.py",
                              "seed": str(args.seed), "numpy": np.__version__}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(args.out, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)
    print(f"wrote {args.out}: {len(tensors)} tensors, {off} data bytes")


if __name__ == "__main__":
    main()
