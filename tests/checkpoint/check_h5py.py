#!/usr/bin/python3
"""Opens a tessera checkpoint with h5py, independently of the C++ library, and checks it.

Usage: check_h5py.py CHECKPOINT.h5 EXPECTED.json
EXPECTED.json maps each tensor name to its global shape. Checks: every expected tensor is a
float32 dataset of that shape at /NAME, no other dataset exists, the root attributes hold format
version 2 and JSON metadata, and each dataset's position_hash64 attribute is the position hash
of its elements, computed here in numpy (tests/support/checkpoint_hash.py). Exits non-zero on
any mismatch.
"""
import json
import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from checkpoint_hash import checksum_problem  # noqa: E402


def main() -> int:
    path, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as handle:
        expected = json.load(handle)
    problems = []
    with h5py.File(path, "r") as checkpoint:
        if int(checkpoint.attrs.get("tessera_format_version", -1)) != 2:
            problems.append("root attribute tessera_format_version is not 2")
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
            problem = checksum_problem(checkpoint, dataset)
            if problem:
                problems.append(problem)
    for problem in problems:
        print(f"check_h5py: {path}: {problem}", file=sys.stderr)
    print(f"check_h5py: {path}: {len(expected)} datasets, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
