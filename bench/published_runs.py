"""The planner against published large training runs: three sources, three machines.

1. Megatron-LM's weak-scaling table. Narayanan et al., "Efficient Large-Scale Language Model
   Training on GPU Clusters Using Megatron-LM", SC '21 (arXiv:2104.04473), Table 1: GPT models of
   1.7B to 1T parameters on 32 to 3072 A100-80GB GPUs of NVIDIA's Selene (DGX A100 nodes: 8 GPUs
   on NVSwitch, 8 x HDR200 a node), sequence 2048, vocabulary 51200, mixed precision, full
   activation recomputation; each row's reported teraFLOP/s per GPU counts FLOPs as
   96 B s l h^2 (1 + s / 6h + V / 16 l h) per step (the recomputed forward included), which is the
   planner's compute_flops for full recomputation. The profile's one free figure, the achievable
   bf16 rate, is fitted to the first row (1.7B: no model parallelism, so compute and the
   data-parallel reduction only) and every other row is predicted with it.
2. BLOOM-176B on Jean Zay, predicted with the A100 rate fitted in 1 (nothing fitted to BLOOM):
   BigScience's model page (bigscience.notion.site, "BigScience 176B Model"): 70 layers, 112
   heads, hidden 14336, sequence 2048, 384 A100 80GB, one model copy on 48 GPUs, "about 150
   TFLOPs" per GPU; Le Scao et al., "BLOOM: A 176B-Parameter Open-Access Multilingual Language
   Model" (arXiv:2211.05100): 48 nodes of 8 A100 80GB with NVLink, 4 x 100 Gb/s Omni-Path a
   node, global batch 2048 sequences, bf16. The 48 GPUs of a copy are tp 4 x pp 12 (dp 8) with
   ZeRO-1, as Megatron-DeepSpeed ran it; the embedding is 250,880 rows (the 250,680-token
   vocabulary padded to a multiple of 128 x tp). The micro-batch is not in these sources:
   planned at 1 and 2. ALiBi instead of learned positions changes no FLOP the formula counts.
3. MosaicML's MPT throughput table on H100 (mosaicml/llm-foundry,
   scripts/train/benchmarking/README.md at commit 061f2c7, "H100 80GB BF16", the rows at
   sequence 2048 without activation checkpointing), models from scripts/train/yamls/pretrain/
   mpt-{760m,1b,7b,13b}.yaml (d_model, heads, layers; expansion 4, vocabulary 50368). Each row
   gives GPUs, micro-batch, global batch and tokens/s per GPU; MPT trains data-parallel with
   FSDP (FULL_SHARD). tessera plans its own data parallelism (ZeRO-1 all-reduce), GELU MLP, on
   the h100-sxm-ndr400x8 profile; the bf16 rate is fitted to the 7B row on 8 GPUs and every
   other row predicted with it.

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
A100 = "a100-80gb-hdr200x8"
H100 = "h100-sxm-ndr400x8"

# BLOOM-176B: layers, heads, hidden, vocabulary rows, tp, pp, GPUs, batch, reported TFLOP/s/GPU
BLOOM = (70, 112, 14336, 250880, 4, 12, 384, 2048, 150)
JEAN_ZAY_INTER_NODE_GB_S = 50.0  # 4 x 100 Gb/s Omni-Path a node, one direction

# MPT on H100 at sequence 2048: name, d_model, heads, layers, GPUs, micro-batch, global batch,
# reported tokens/s per GPU
MPT_VOCAB = 50368
MPT_H100 = [
    ("760m", 1536, 12, 24, 8, 24, 384, 63147),
    ("760m", 1536, 12, 24, 16, 24, 384, 68551),
    ("760m", 1536, 12, 24, 32, 24, 768, 67971),
    ("1b", 2048, 16, 24, 8, 14, 112, 45455),
    ("1b", 2048, 16, 24, 16, 20, 320, 46037),
    ("1b", 2048, 16, 24, 32, 20, 640, 45130),
    ("1b", 2048, 16, 24, 64, 20, 1280, 44402),
    ("7b", 4096, 32, 32, 8, 6, 48, 10643),
    ("13b", 5120, 40, 40, 8, 2, 16, 4792),
    ("13b", 5120, 40, 40, 16, 2, 32, 4767),
    ("13b", 5120, 40, 40, 32, 2, 64, 4811),
    ("13b", 5120, 40, 40, 64, 2, 128, 4800),
]
MPT_FITTED = 7  # the 7B row on 8 GPUs


def megatron_flops_per_token(layers, hidden, vocab=VOCAB):
    return 96 * layers * hidden**2 + 16 * layers * hidden * SEQ + 6 * vocab * hidden


def plan(tessera, config, profile, gpus, settings):
    """The one layout `settings` describe, planned on gpus / 8 nodes of `profile`."""
    command = [tessera, "plan", config, "--hardware", profile, "--as-configured",
               "--nodes", str(gpus // 8), "--format", "json"]
    for setting in settings:
        command += ["--set", setting]
    result = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(result)["layouts"][0]


def model_settings(layers, heads, hidden, vocab, batch, micro_batch, recompute, tp, pp, zero):
    return ["model.family=gpt2", "model.n_layers=%d" % layers, "model.d_model=%d" % hidden,
            "model.n_heads=%d" % heads, "model.seq_len=%d" % SEQ, "model.vocab_size=%d" % vocab,
            "model.ffn_hidden=%d" % (4 * hidden), "train.global_batch=%d" % batch,
            "train.micro_batch=%d" % micro_batch, "train.recompute=%s" % recompute,
            "train.precision=bf16", "parallel.tp=%d" % tp, "parallel.pp=%d" % pp,
            "parallel.dp=0", "parallel.zero=%d" % zero, "parallel.sequence_parallel=false"] + (
                # even stages where the layers divide; otherwise tessera's balance by cost
                ["parallel.stage_layers=%s" % ",".join([str(layers // pp)] * pp)]
                if layers % pp == 0 else [])


def megatron_tflops(tessera, config, profile, row):
    _, heads, hidden, layers, tp, pp, gpus, batch, _ = row
    layout = plan(tessera, config, profile, gpus,
                  model_settings(layers, heads, hidden, VOCAB, batch, 1, "full", tp, pp, 0))
    return layout["tokens_per_s"] * megatron_flops_per_token(layers, hidden) / gpus / 1e12, layout


def mpt_tokens_per_gpu(tessera, config, profile, row):
    _, hidden, heads, layers, gpus, micro_batch, batch, _ = row
    layout = plan(tessera, config, profile, gpus,
                  model_settings(layers, heads, hidden, MPT_VOCAB, batch, micro_batch, "none", 1,
                                 1, 1))
    return layout["tokens_per_s"] / gpus, layout


def write_profile(base_text, rate, path, inter_node_gb_s=None):
    """`base_text` with its achievable bf16 rate (and inter-node bandwidth) replaced."""
    text = re.sub(r"achievable_tflops = \{ fp32 = ([0-9.]+), bf16 = [0-9.]+ \}",
                  lambda m: "achievable_tflops = { fp32 = %s, bf16 = %.4f }" % (m.group(1), rate),
                  base_text)
    if inter_node_gb_s is not None:
        text = re.sub(r"inter_node_gb_s = [0-9.]+", "inter_node_gb_s = %.1f" % inter_node_gb_s,
                      text)
    with open(path, "w") as out:
        out.write(text)


def fit_rate(base_text, profile, start, predict, reported):
    """The achievable bf16 rate at which `predict(profile)` gives `reported`."""
    rate = start
    for _ in range(6):
        write_profile(base_text, rate, profile)
        rate *= reported / predict(profile)
    write_profile(base_text, rate, profile)
    return rate


def step_split(layout):
    s = layout["step_s"]
    return "%.3f %.3f %.3f %.3f %.3f %.3f" % (s["compute"], s["tp_comm"], s["pipeline_bubble"],
                                              s["pipeline_send"], s["dp_comm"], s["optimizer"])


def median(values):
    return sorted(values)[len(values) // 2]


def compare_rows(rows, fitted, predict, describe, lines):
    """One line per row (`describe`) with its prediction beside what its source reports (each
    row's last field); returns the relative errors of the rows other than the `fitted` one."""
    errors = []
    for row in rows:
        predicted, layout = predict(row)
        error = (predicted - row[-1]) / row[-1]
        if row is not fitted:
            errors.append(abs(error))
        lines.append(describe(row, predicted, error, layout))
    return errors


def megatron_section(tessera, config, base, profile, lines):
    rate = fit_rate(base, profile, 171.6,
                    lambda p: megatron_tflops(tessera, config, p, TABLE_1[0])[0], TABLE_1[0][-1])
    lines.append("1. Megatron-LM, Narayanan et al. SC'21 Table 1 (A100-80GB, Selene)")
    lines.append("achievable bf16 rate fitted to the 1.7B row: %.1f TFLOP/s (%.0f %% of 312)"
                 % (rate, 100 * rate / 312))
    lines.append("%-8s %3s %3s %5s %6s %9s %9s %7s   %s" % (
        "params", "tp", "pp", "GPUs", "batch", "reported", "planned", "error",
        "planned step split (s): compute, tp, bubble, p2p, dp, optimizer"))
    errors = compare_rows(
        TABLE_1, TABLE_1[0], lambda row: megatron_tflops(tessera, config, profile, row),
        lambda row, predicted, error, layout: "%-8s %3d %3d %5d %6d %9.0f %9.1f %+6.1f%%   %s" % (
            "%gB" % row[0], row[4], row[5], row[6], row[7], row[-1], predicted, 100 * error,
            step_split(layout)), lines)
    lines.append("predicted rows (all but the fitted one): largest error %.1f %%, median %.1f %%"
                 % (100 * max(errors), 100 * median(errors)))
    return rate


def bloom_section(tessera, config, base, rate, work, lines):
    layers, heads, hidden, vocab, tp, pp, gpus, batch, reported = BLOOM
    profile = os.path.join(work, "jean-zay.toml")
    write_profile(base, rate, profile, JEAN_ZAY_INTER_NODE_GB_S)
    lines.append("")
    lines.append("2. BLOOM-176B on Jean Zay (384 A100-80GB, 4 x 100 Gb/s Omni-Path a node), "
                 "predicted with the rate of 1 (%.1f TFLOP/s)" % rate)
    lines.append("%-6s %3s %3s %5s %6s %9s %9s %7s %5s   %s" % (
        "micro", "tp", "pp", "GPUs", "batch", "reported", "planned", "error", "fits",
        "planned step split (s): compute, tp, bubble, p2p, dp, optimizer"))
    for micro_batch in (1, 2):
        layout = plan(tessera, config, profile, gpus,
                      model_settings(layers, heads, hidden, vocab, batch, micro_batch, "full", tp,
                                     pp, 1))
        predicted = layout["tokens_per_s"] * megatron_flops_per_token(layers, hidden, vocab)
        predicted /= gpus * 1e12
        lines.append("%-6d %3d %3d %5d %6d %9.0f %9.1f %+6.1f%% %5s   %s" % (
            micro_batch, tp, pp, gpus, batch, reported, predicted,
            100 * (predicted - reported) / reported, "yes" if layout["fits"] else "no",
            step_split(layout)))


def mpt_section(tessera, config, base, work, lines):
    profile = os.path.join(work, "h100.toml")
    fitted = MPT_H100[MPT_FITTED]
    rate = fit_rate(base, profile, 544.0,
                    lambda p: mpt_tokens_per_gpu(tessera, config, p, fitted)[0], fitted[-1])
    lines.append("")
    lines.append("3. MPT on H100 80GB (llm-foundry benchmark table, sequence 2048, FSDP there, "
                 "ZeRO-1 data parallelism planned)")
    lines.append("achievable bf16 rate fitted to the 7b row on 8 GPUs: %.1f TFLOP/s (%.0f %% of "
                 "989)" % (rate, 100 * rate / 989))
    lines.append("%-6s %5s %6s %6s %10s %10s %7s %5s   %s" % (
        "model", "GPUs", "micro", "batch", "reported", "planned", "error", "fits",
        "planned step split (s): compute, tp, bubble, p2p, dp, optimizer"))
    errors = compare_rows(
        MPT_H100, fitted, lambda row: mpt_tokens_per_gpu(tessera, config, profile, row),
        lambda row, predicted, error, layout: "%-6s %5d %6d %6d %10d %10.0f %+6.1f%% %5s   %s" % (
            row[0], row[4], row[5], row[6], row[-1], predicted, 100 * error,
            "yes" if layout["fits"] else "no", step_split(layout)), lines)
    lines.append("(tokens/s per GPU) predicted rows: largest error %.1f %%, median %.1f %%"
                 % (100 * max(errors), 100 * median(errors)))


def main():
    tessera = sys.argv[1] if len(sys.argv) > 1 else "build/release/tessera"
    configs = sys.argv[2] if len(sys.argv) > 2 else "configs"
    out_file = sys.argv[3] if len(sys.argv) > 3 else None
    config = os.path.join(configs, "gpt2-124m.toml")
    hardware = os.path.join(configs, "..", "modules", "hardware")
    a100 = open(os.path.join(hardware, A100 + ".toml")).read()
    h100 = open(os.path.join(hardware, H100 + ".toml")).read()
    lines = []
    with tempfile.TemporaryDirectory() as work:
        rate = megatron_section(tessera, config, a100, os.path.join(work, "a100.toml"), lines)
        bloom_section(tessera, config, a100, rate, work, lines)
        mpt_section(tessera, config, h100, work, lines)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if out_file:
        with open(out_file, "w") as out:
            out.write(text)


if __name__ == "__main__":
    main()
