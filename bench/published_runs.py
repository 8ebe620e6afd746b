"""The planner against published large training runs: Megatron-LM's weak-scaling table.

Narayanan et al., "Efficient Large-Scale Language Model Training on GPU Clusters Using
Megatron-LM", SC '21 (arXiv:2104.04473), Table 1: GPT models of 1.7B to 1T parameters on 32 to
3072 A100-80GB GPUs of NVIDIA's Selene (DGX A100 nodes: 8 GPUs on NVSwitch, 8 x HDR200 a node),
sequence 2048, vocabulary 51200, mixed precision, full activation recomputation; each row's
reported teraFLOP/s per GPU counts FLOPs as 96 B s l h^2 (1 + s / 6h + V / 16 l h) per step (the
recomputed forward included), which is the planner's compute_flops for full recomputation.

For each row `tessera plan --as-configured` plans the GPT-2-family model of that size at the
row's tensor and pipeline sizes (data parallelism from the GPU count, micro-batch 1, the 1F1B
schedule, layers split evenly, bf16 rates) on the a100-80gb-hdr200x8 profile. The profile's one
free figure, the achievable bf16 rate, is fitted to the first row (1.7B: no model parallelism,
so compute and the data-parallel reduction only) and every other row is predicted with it: the
error shows what the model of tensor, pipeline and data-parallel costs gets right at scale.

usage: published_runs.py [TESSERA] [CONFIG_DIR] [OUT_FILE]
"""
import json
import os
import re
import subprocess
import sys
import tempfile

# params (B), heads, hidden, layers, tp, pp, GPUs, batch, reported TFLOP/s per GPU
TABLE_1 = [
    (1.7, 24, 2304, 24, 1, 1, 32, 512, 137),
    (3.6, 32, 3072, 30, 2, 1, 64, 512, 138),
    (7.5, 32, 4096, 36, 4, 1, 128, 512, 142),
    (18.4, 48, 6144, 40, 8, 1, 256, 1024, 135),
    (39.1, 64, 8192, 48, 8, 2, 512, 1536, 138),
    (76.1, 80, 10240, 60, 8, 4, 1024, 1792, 140),
    (145.6, 96, 12288, 80, 8, 8, 1536, 2304, 148),
    (310.1, 128, 16384, 96, 8, 16, 1920, 2160, 155),
    (529.6, 128, 20480, 105, 8, 35, 2520, 2520, 163),
    (1008.0, 160, 25600, 128, 8, 64, 3072, 3072, 163),
]
SEQ, VOCAB = 2048, 51200
PROFILE = "a100-80gb-hdr200x8"


def megatron_flops_per_token(layers, hidden):
    return 96 * layers * hidden**2 + 16 * layers * hidden * SEQ + 6 * VOCAB * hidden


def predict(tessera, config, profile, row):
    _, heads, hidden, layers, tp, pp, gpus, batch, _ = row
    settings = ["model.family=gpt2", "model.n_layers=%d" % layers, "model.d_model=%d" % hidden,
                "model.n_heads=%d" % heads, "model.seq_len=%d" % SEQ,
                "model.vocab_size=%d" % VOCAB, "model.ffn_hidden=%d" % (4 * hidden),
                "train.global_batch=%d" % batch, "train.micro_batch=1",
                "train.recompute=full", "train.precision=bf16", "parallel.tp=%d" % tp,
                "parallel.pp=%d" % pp, "parallel.dp=0", "parallel.sequence_parallel=false",
                "parallel.stage_layers=%s" % ",".join([str(layers // pp)] * pp)]
    command = [tessera, "plan", config, "--hardware", profile, "--as-configured",
               "--nodes", str(gpus // 8), "--format", "json"]
    for setting in settings:
        command += ["--set", setting]
    plan = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    layout = plan["layouts"][0]
    tflops = layout["tokens_per_s"] * megatron_flops_per_token(layers, hidden) / gpus / 1e12
    return tflops, layout


def profile_with_rate(base_text, rate, path):
    text = re.sub(r"achievable_tflops = \{ fp32 = ([0-9.]+), bf16 = [0-9.]+ \}",
                  lambda m: "achievable_tflops = { fp32 = %s, bf16 = %.4f }" % (m.group(1), rate),
                  base_text)
    with open(path, "w") as out:
        out.write(text)


def main():
    tessera = sys.argv[1] if len(sys.argv) > 1 else "build/release/tessera"
    configs = sys.argv[2] if len(sys.argv) > 2 else "configs"
    out_file = sys.argv[3] if len(sys.argv) > 3 else None
    config = os.path.join(configs, "gpt2-124m.toml")
    base = open(os.path.join(configs, "..", "modules", "hardware", PROFILE + ".toml")).read()
    lines = []
    with tempfile.TemporaryDirectory() as work:
        profile = os.path.join(work, "fitted.toml")
        rate = 171.6
        for _ in range(6):  # fit the achievable rate to the first row
            profile_with_rate(base, rate, profile)
            predicted, _ = predict(tessera, config, profile, TABLE_1[0])
            rate *= TABLE_1[0][-1] / predicted
        profile_with_rate(base, rate, profile)
        lines.append("achievable bf16 rate fitted to the 1.7B row: %.1f TFLOP/s (%.0f %% of 312)"
                     % (rate, 100 * rate / 312))
        lines.append("%-8s %3s %3s %5s %6s %9s %9s %7s   %s" % (
            "params", "tp", "pp", "GPUs", "batch", "reported", "planned", "error",
            "planned step split (s): compute, tp, bubble, p2p, dp, optimizer"))
        errors = []
        for row in TABLE_1:
            predicted, layout = predict(tessera, config, profile, row)
            error = (predicted - row[-1]) / row[-1]
            if row is not TABLE_1[0]:
                errors.append(abs(error))
            s = layout["step_s"]
            lines.append("%-8s %3d %3d %5d %6d %9.0f %9.1f %+6.1f%%   %.2f %.2f %.2f %.3f %.3f %.3f" % (
                "%gB" % row[0], row[4], row[5], row[6], row[7], row[-1], predicted, 100 * error,
                s["compute"], s["tp_comm"], s["pipeline_bubble"], s["pipeline_send"],
                s["dp_comm"], s["optimizer"]))
        lines.append("predicted rows (all but the fitted one): largest error %.1f %%, median %.1f %%"
                     % (100 * max(errors), 100 * sorted(errors)[len(errors) // 2]))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if out_file:
        with open(out_file, "w") as out:
            out.write(text)


if __name__ == "__main__":
    main()
