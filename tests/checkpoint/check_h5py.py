#!/usr/bin/python3
"""Opens a tessera checkpoint with h5py, independently of the C++ library, and checks it.

Usage: check_h5py.py CHECKPOINT.h5 EXPECTED.json
EXPECTED.json maps each tensor name to its global shape. Checks: every expected tensor is a
float32 dataset of that shape at /NAME, no other dataset exists, the root attributes hold format
version 1 and JSON metadata, and each dataset's fnv1a64 attribute is FNV-1a 64 of its bytes in
row-major global order (little-endian float32). Exits non-zero on any mismatch.
"""
import json
import sys

import h5py
import numpy as np


def fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def main() -> int:
    path, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as handle:
        expected = json.load(handle)
    problems = []
    with h5py.File(path, "r") as checkpoint:
        if int(checkpoint.attrs.get("tessera_format_version", -1)) != 1:
            problems.append("root attribute tessera_format_version is not 1")
        metadata = checkpoint.attrs.get("metadata", b"")
        metadata = metadata.decode() if isinstance(metadata, bytes) else str(metadata)
        try:
            json.loads(metadata)
        except ValueError:
            problems.append(f"root attribute metadata is not JSON: {metadata[:80]!r}")
        found = []
        checkpoint.visititems(
            lambda name, item: found.append(name) if isinstance(item, h5py.Dataset) else None)
        if sorted(found) != sorted(expected):
            problems.append(f"datasets {sorted(found)} != expected {sorted(expected)}")
        for name, shape in expected.items():
            if name not in checkpoint:
                continue
            dataset = checkpoint[name]
            if list(dataset.shape) != shape or dataset.dtype != np.dtype("<f4"):
                problems.append(f"{name}: {dataset.dtype} {dataset.shape} != float32 {shape}")
                continue
            stored = int(dataset.attrs["fnv1a64"])
            computed = fnv1a64(np.ascontiguousarray(dataset[...], dtype="<f4").tobytes())
            if stored != computed:
                problems.append(f"{name}: fnv1a64 attribute {stored:016x} != data {computed:016x}")
    for problem in problems:
        print(f"check_h5py: {path}: {problem}", file=sys.stderr)
    print(f"check_h5py: {path}: {len(expected)} datasets, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
