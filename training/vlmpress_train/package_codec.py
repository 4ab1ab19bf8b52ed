"""Reference encode/decode over an exported model package with ONNX Runtime.

This mirrors, step for step, what the TypeScript runtime does (docs/model-format.md): pad, encoder
graph, integer entropy graph, symbol formation, table lookup, decoder graph, crop. It does not write a
bitstream (the product's rANS coder and VLMP container live in the TypeScript runtime, `src/codec`); it
reports the exact code length the 16-bit tables assign to the symbols, which the rANS coder achieves to
within a byte per stream, and `container_bytes_estimate` adds the VLMP v1 framing
(docs/bitstream-format.md). Real sizes come from the `vlmpress` CLI; `tests/test_runtime_sizes.py`
holds the two within a few bytes on the golden bitstreams.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

RANS_FLUSH_BYTES = 8  # two 32-bit rANS states (hyper-latent and latent streams)
CONTAINER_FIXED_BYTES = 17  # magic, version, codec, flags, 8-byte model id, 16-bit quality
CRC_BYTES = 4


def leb128_len(v: int) -> int:
    n = 1
    while v >= 128:
        v >>= 7
        n += 1
    return n


def zigzag(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.int64)
    return np.where(v >= 0, 2 * v, -2 * v - 1)


def exp_golomb_bits(u: np.ndarray) -> np.ndarray:
    """Length of the order-0 Exp-Golomb code of non-negative integers."""
    return 2 * np.floor(np.log2(u.astype(np.float64) + 1)).astype(np.int64) + 1


@dataclass
class Encoded:
    z_hat: np.ndarray  # int32 [Nz, zh, zw]
    symbols: np.ndarray  # int32 [M, yh, yw]  (residuals to the predicted mean)
    mean_q: np.ndarray
    scale_index: np.ndarray
    bits: float  # payload bits (z + y), ideal code length under the tables
    hyper_bits: float  # of which the hyper-latent z
    width: int
    height: int


class PackageCodec:
    def __init__(self, package_dir: str | Path, threads: int = 1, opt_level: ort.GraphOptimizationLevel | None = None) -> None:
        self.dir = Path(package_dir)
        self.manifest = json.loads((self.dir / "manifest.json").read_text())
        tables = json.loads((self.dir / self.manifest["tables"]["file"]).read_text())
        self.precision = int(tables["precision"])
        self.hyper = [(t["offset"], np.asarray(t["freq"], np.int64)) for t in tables["hyper"]]
        self.gauss = [(t["offset"], np.asarray(t["freq"], np.int64)) for t in tables["gaussian"]["tables"]]
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        if opt_level is not None:
            so.graph_optimization_level = opt_level
        graphs = self.manifest["graphs"]
        self.sessions = {
            k: ort.InferenceSession(str(self.dir / g["file"]), so, providers=["CPUExecutionProvider"]) for k, g in graphs.items()
        }
        self.multiple = int(self.manifest["padding"]["multiple"])
        self.mean_denom = int(self.manifest["entropy_parameters"]["mean_denominator"])

    # -- helpers ----------------------------------------------------------------------------------
    def _pad(self, img: np.ndarray) -> np.ndarray:
        """uint8 HWC -> float32 NCHW in [0,1], replicate-padded bottom-right to the multiple."""
        h, w = img.shape[:2]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        a = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="edge")
        return (a.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()

    def entropy_parameters(self, z_hat: np.ndarray, yh: int, yw: int) -> tuple[np.ndarray, np.ndarray]:
        mean_q, idx = self.sessions["entropy"].run(None, {"z_hat": z_hat[None].astype(np.int32)})
        return mean_q[0, :, :yh, :yw], idx[0, :, :yh, :yw]

    def _table_bits(self, table: tuple[int, np.ndarray], values: np.ndarray) -> float:
        offset, freq = table
        idx = values.astype(np.int64) - offset
        inside = (idx >= 0) & (idx < len(freq) - 1)
        bits = float(np.sum(self.precision - np.log2(freq[idx[inside]].astype(np.float64))))
        out = values[~inside]
        if out.size:
            bits += out.size * (self.precision - math.log2(freq[-1])) + float(exp_golomb_bits(zigzag(out)).sum())
        return bits

    # -- encode / decode --------------------------------------------------------------------------
    def encode(self, img: np.ndarray, quality: float) -> Encoded:
        h, w = img.shape[:2]
        q = np.array([quality], np.float32)
        y, z_hat = self.sessions["encoder"].run(None, {"image": self._pad(img), "quality": q})
        y, z_hat = y[0], z_hat[0]
        mean_q, idx = self.entropy_parameters(z_hat, y.shape[1], y.shape[2])
        symbols = np.round(y - mean_q.astype(np.float32) / self.mean_denom).astype(np.int32)
        bits = hyper_bits = sum(self._table_bits(self.hyper[c], z_hat[c]) for c in range(z_hat.shape[0]))
        for s in np.unique(idx):
            bits += self._table_bits(self.gauss[int(s)], symbols[idx == s])
        return Encoded(z_hat, symbols, mean_q, idx, bits, hyper_bits, w, h)

    def decode(self, enc: Encoded, quality: float) -> np.ndarray:
        mean_q, _ = self.entropy_parameters(enc.z_hat, enc.symbols.shape[1], enc.symbols.shape[2])
        y_hat = enc.symbols.astype(np.float32) + mean_q.astype(np.float32) / self.mean_denom
        (x,) = self.sessions["decoder"].run(None, {"y_hat": y_hat[None], "quality": np.array([quality], np.float32)})
        x = x[0, :, : enc.height, : enc.width].transpose(1, 2, 0)
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)

    def bytes_estimate(self, enc: Encoded) -> int:
        """Payload bytes the rANS coder writes: ceil(ideal bits / 8) + its final states."""
        return int(math.ceil(enc.bits / 8)) + RANS_FLUSH_BYTES

    def container_bytes_estimate(self, enc: Encoded) -> int:
        """Size of the whole VLMP v1 bitstream: two rANS streams (each with its 4-byte state), the header
        with its LEB128 fields, and the CRC-32C."""
        hyper = int(math.ceil(enc.hyper_bits / 8)) + RANS_FLUSH_BYTES // 2
        latent = int(math.ceil((enc.bits - enc.hyper_bits) / 8)) + RANS_FLUSH_BYTES // 2
        fields = sum(leb128_len(v) for v in (enc.width, enc.height, hyper, latent))
        return CONTAINER_FIXED_BYTES + fields + hyper + latent + CRC_BYTES
