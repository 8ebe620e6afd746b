"""The checksums of tessera checkpoint datasets, written here apart from the C++ library so
that tests check its files independently (doc/checkpoints.md, "Checksums").

Format version 2 stores "position_hash64": the sum mod 2^64 over the elements of
fmix64((i * 0x9E3779B97F4A7C15) XOR bits), i the row-major global index, bits the float32's
IEEE-754 bits, fmix64 MurmurHash3's 64-bit finalizer. Version 1 stored "fnv1a64", FNV-1a 64
of the little-endian bytes in row-major order.
"""
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_PIECE = 1 << 20  # elements hashed at a time, to bound memory


def _fmix64(k):
    k = k ^ (k >> np.uint64(33))
    k = k * np.uint64(0xFF51AFD7ED558CCD)
    k = k ^ (k >> np.uint64(33))
    k = k * np.uint64(0xC4CEB9FE1A85EC53)
    return k ^ (k >> np.uint64(33))


def position_hash(values) -> int:
    flat = np.ascontiguousarray(values, dtype="<f4").reshape(-1).view("<u4")
    total = np.uint64(0)
    with np.errstate(over="ignore"):  # uint64 arithmetic is meant to wrap
        for start in range(0, flat.size, _PIECE):
            bits = flat[start:start + _PIECE].astype(np.uint64)
            keys = np.arange(start, start + bits.size, dtype=np.uint64) * _GOLDEN
            total = total + np.sum(_fmix64(keys ^ bits), dtype=np.uint64)
    return int(total)


def fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


CHECKSUMS = {2: ("position_hash64", position_hash),
             1: ("fnv1a64", lambda values: fnv1a64(
                 np.ascontiguousarray(values, dtype="<f4").tobytes()))}


def checksum_problem(checkpoint, dataset):
    """None when the h5py `dataset` of the open `checkpoint` matches its stored checksum."""
    version = int(checkpoint.attrs.get("tessera_format_version", -1))
    if version not in CHECKSUMS:
        return f"format version {version} is not 1 or 2"
    attribute, compute = CHECKSUMS[version]
    if attribute not in dataset.attrs:
        return f"{dataset.name}: no {attribute} attribute"
    stored, computed = int(dataset.attrs[attribute]), compute(dataset[...])
    if stored != computed:
        return f"{dataset.name}: {attribute} attribute {stored:016x} != data {computed:016x}"
    return None
