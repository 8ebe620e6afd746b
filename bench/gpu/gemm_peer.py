"""The peer of `tessera calibrate`'s GEMM classes: PyTorch's own linear layer on the same shapes
(rows x in -> out, forward and backward with input and weight gradients), fp32 with TF32 off and
bf16 operands (torch.autocast), timed with CUDA events after a warm-up. Run it in the same command
as `tessera calibrate` and compare the two JSON files class by class.

usage: gemm_peer.py PROFILE.json OUT.json   (PROFILE.json: tessera calibrate's output)
"""
import json
import sys

import torch


def rate(function, flops, min_ms=100.0):
    function()
    torch.cuda.synchronize()
    repeats = 1
    while True:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            function()
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end)
        if ms >= min_ms:
            return flops * repeats / (ms / 1e3) / 1e12
        repeats *= 2


def main():
    torch.backends.cuda.matmul.allow_tf32 = False
    profile = json.load(open(sys.argv[1]))
    rows = []
    for entry in profile["gemm"]:
        r, i, o = entry["rows"], entry["in_features"], entry["out_features"]
        x = torch.rand(r, i, device="cuda", requires_grad=True) * 2 - 1
        w = (torch.rand(o, i, device="cuda") * 2 - 1).requires_grad_()
        grad = torch.rand(r, o, device="cuda") * 2 - 1
        bf16 = entry["precision"] == "bf16"

        def forward():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                return torch.nn.functional.linear(x, w)

        out = forward()

        def backward():
            torch.autograd.grad(out, (x, w), grad.to(out.dtype), retain_graph=True)

        flops = 2.0 * r * i * o
        peer = {"class": entry["class"], "precision": entry["precision"],
                "forward_tflops": rate(forward, flops), "backward_tflops": rate(backward, 2 * flops)}
        peer["forward_ratio"] = entry["forward_tflops"] / peer["forward_tflops"]
        peer["backward_ratio"] = entry["backward_tflops"] / peer["backward_tflops"]
        print("%-14s %s  tessera/torch forward %.2f (%.0f vs %.0f TFLOP/s), backward %.2f (%.0f vs "
              "%.0f)" % (entry["class"], entry["precision"], peer["forward_ratio"],
                         entry["forward_tflops"], peer["forward_tflops"], peer["backward_ratio"],
                         entry["backward_tflops"], peer["backward_tflops"]), flush=True)
        rows.append(peer)
        del x, w, grad, out
    json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(), "gemm": rows},
              open(sys.argv[2], "w"), indent=1)


if __name__ == "__main__":
    main()
