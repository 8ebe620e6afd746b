"""`tessera calibrate` on the CPU backend at small sizes: the hardware profile's JSON has every
class asked for, with finite positive rates, the device described, and the Markdown table
printed; the format is the one doc/hardware-profiles.md documents. A calibration that fails
leaves an earlier profile alone.

usage: test_calibrate.py TESSERA
"""
import json
import math
import os
import subprocess
import sys
import tempfile

D_MODELS = [16, 32]
LINEAR_CLASSES = ["qkv", "attn_out", "mlp_up", "mlp_down", "head"]


def main():
    tessera = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        profile_path = os.path.join(work, "profile.json")
        command = [tessera, "calibrate", "--d-models", ",".join(map(str, D_MODELS)),
                   "--tokens", "64", "--vocab", "96", "--attention", "32x2x8",
                   "--attention", "64x1x16", "--copy-mib", "4", "--min-seconds", "0.01",
                   "-o", profile_path]
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        if result.returncode != 0:
            sys.exit("FAIL: exit status %d\n%s%s" % (result.returncode, result.stdout,
                                                     result.stderr))
        profile = json.load(open(profile_path))
    problems = []

    def expect(condition, what):
        if not condition:
            problems.append(what)

    def rate(value):
        return isinstance(value, float) and math.isfinite(value) and value > 0

    expect(profile["format"] == "tessera-hardware-profile" and profile["version"] == 1, "format")
    device = profile["device"]
    expect(device["backend"] == "cpu" and device["kind"] == "cpu" and device["name"], "device")
    expect(device["memory_bytes"] > 0 and device["compute_units"] >= 1, "device sizes")
    classes = [row["class"] for row in profile["gemm"]]
    expect(classes == ["d%d.%s" % (d, c) for d in D_MODELS for c in LINEAR_CLASSES],
           "gemm classes %s" % classes)
    head = profile["gemm"][4]
    expect((head["rows"], head["in_features"], head["out_features"]) == (64, 16, 96), "head shape")
    for row in profile["gemm"] + profile["attention"]:
        expect(row["precision"] == "fp32", "precision of %s" % row)
        expect(rate(row["forward_tflops"]) and rate(row["backward_tflops"]), "rates of %s" % row)
    shapes = [(r["batch"], r["seq"], r["n_heads"], r["head_dim"]) for r in profile["attention"]]
    expect(shapes == [(2, 32, 2, 8), (1, 64, 1, 16)], "attention shapes %s" % shapes)
    copy = profile["copy"]
    expect(copy["bytes"] == 4 << 20 and rate(copy["device_to_host_gb_s"]) and
           rate(copy["host_to_device_gb_s"]), "copies %s" % copy)
    expect("| d32.mlp_down | fp32 | 64 x 128 -> 32 |" in result.stdout, "the Markdown table")
    # A calibration that fails leaves an earlier profile as it was, and no temporary file.
    with tempfile.TemporaryDirectory() as work:
        earlier = os.path.join(work, "profile.json")
        open(earlier, "w").write("earlier")
        failed = subprocess.run(command[:-1] + [earlier, "--tokens", "0"], capture_output=True,
                                text=True, timeout=300, env=env)
        expect(failed.returncode == 2 and open(earlier).read() == "earlier" and
               os.listdir(work) == ["profile.json"],
               "a failed calibration: exit %d, files %s" % (failed.returncode, os.listdir(work)))
    for problem in problems:
        print("FAIL %s" % problem)
    if problems:
        sys.exit(1)
    print("ok   profile of %s: %d GEMM classes, %d attention classes, copies %.1f GB/s" % (
        device["name"], len(classes), len(shapes), copy["device_to_host_gb_s"]))


if __name__ == "__main__":
    main()
