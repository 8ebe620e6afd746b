"""Every parallel layout trains the same model as one process.

Runs `tessera train` on the tiny config (8 layers and 8 heads, so that every layout divides it)
once on one process, then under mpiexec at each (dp, tp, pp) layout of a case, and compares the
per-step losses from metrics.jsonl: within 1e-5 relative for layouts (their GEMMs and sums split
differently, so the last bits differ), bit for bit in deterministic mode. Exits non-zero on any
mismatch, naming the layout and the step.

usage: test_layouts.py TESSERA CONFIG_DIR CASE    (CASE: see CASES below)
"""
import json
import os
import subprocess
import sys
import tempfile

STEPS = 10
BASE = [
    "train.steps=%d" % STEPS, "train.warmup_steps=2", "eval.every=0", "log.every=1",
    "log.progress=plain", "model.n_layers=8", "model.n_heads=8", "train.micro_batch=2",
]
RELATIVE = 1e-5

# Each case: (family, extra settings for every run, [(dp, tp, pp, extra settings), ...]).
LAYOUTS = [(2, 1, 1), (1, 2, 1), (1, 1, 2), (2, 2, 2), (4, 2, 1), (1, 4, 2), (2, 1, 4),
           (1, 1, 8), (8, 1, 1), (1, 8, 1)]
CASES = {
    "layouts_gpt2": ("gpt2", [], [(d, t, p, []) for d, t, p in LAYOUTS]),
    "layouts_openlm": ("openlm", [], [(d, t, p, []) for d, t, p in LAYOUTS]),
    "schedules": ("gpt2", [], [
        (1, 1, 4, ["parallel.schedule=gpipe"]),
        (2, 1, 2, ["parallel.schedule=gpipe"]),
        (1, 1, 2, ["parallel.schedule=interleaved", "parallel.chunks_per_stage=2"]),
        (1, 2, 2, ["parallel.schedule=interleaved", "parallel.chunks_per_stage=2"]),
        (1, 1, 4, ["parallel.schedule=interleaved", "parallel.chunks_per_stage=2"]),
        (1, 1, 2, ["parallel.stage_layers=5,3"]),
        (1, 1, 3, ["parallel.stage_layers=1,4,3"]),
    ]),
    "zero": ("openlm", [], [
        (2, 1, 1, ["parallel.zero=1"]),
        (4, 1, 1, ["parallel.zero=1"]),
        (2, 2, 2, ["parallel.zero=1"]),
        (2, 1, 2, ["parallel.zero=1", "parallel.schedule=gpipe"]),
    ]),
    "zero_gpt2": ("gpt2", [], [
        (2, 2, 2, ["parallel.zero=1"]),
        (8, 1, 1, ["parallel.zero=1"]),
    ]),
    # dp not a power of two: the gradient all-reduce (Rabenseifner's, parallel/mpi_session.cpp)
    # and ZeRO's reduce-scatter first fold the ranks beyond the largest power of two in.
    "uneven_dp": ("gpt2", ["train.global_batch=12"], [
        (3, 1, 1, []), (3, 2, 1, []), (6, 1, 1, ["parallel.zero=1"]),
    ]),
    # Megatron sequence parallelism: norm regions split by rows over tp.
    "sequence_parallel": ("gpt2", ["parallel.sequence_parallel=true"], [
        (1, 2, 1, []), (2, 2, 1, []), (1, 2, 2, []), (1, 4, 2, []), (2, 2, 2, ["parallel.zero=1"]),
    ]),
    "sequence_parallel_openlm": ("openlm", ["parallel.sequence_parallel=true"], [
        (1, 2, 1, []), (1, 4, 1, []), (2, 2, 2, []),
    ]),
    # Activation recomputation re-runs forward (its collectives included) inside backward.
    "recompute": ("openlm", [], [
        (1, 1, 1, ["train.recompute=full"]),
        (1, 2, 2, ["train.recompute=full", "parallel.sequence_parallel=true"]),
        (2, 2, 2, ["train.recompute=selective"]),
        (1, 1, 2, ["train.recompute=full", "parallel.schedule=interleaved",
                   "parallel.chunks_per_stage=2"]),
    ]),
    # Compared bit for bit: global batch 16 in microbatches of 4 is 4-fold accumulation at
    # dp = 1, 2 microbatches per rank at dp = 2 and one at dp = 4.
    "deterministic": ("gpt2", ["parallel.deterministic=true", "train.micro_batch=4"], [
        (2, 1, 1, []), (4, 1, 1, []),
    ]),
    "deterministic_openlm": ("openlm", ["parallel.deterministic=true", "train.micro_batch=4"], [
        (2, 1, 1, []), (4, 1, 1, []),
    ]),
}
BITWISE_CASES = {"deterministic", "deterministic_openlm"}


def run(tessera, config, ranks, settings, workdir, name):
    run_dir = os.path.join(workdir, name)
    command = [tessera, "train", config]
    for setting in BASE + settings + ["run.dir=" + run_dir]:
        command += ["--set", setting]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), "--oversubscribe"] + command
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        sys.exit("FAIL %s: exit status %d\n%s%s" % (name, result.returncode, result.stdout[-3000:],
                                                     result.stderr[-3000:]))
    records = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    final = [r for r in records if r.get("kind") == "final"]
    return [r for r in records if r.get("kind") == "train"], final[-1] if final else None


def compare_bitwise(name, reference, steps, reference_final, final):
    """Losses, gradient norms and the final parameters' checksum must be identical."""
    failures = 0
    for ref, got in zip(reference, steps, strict=True):
        for key in ("loss", "grad_norm"):
            if got[key] != ref[key]:
                print("FAIL %s step %d: %s %r vs one process %r" % (name, ref["step"], key,
                                                                   got[key], ref[key]))
                failures += 1
    if final["parameter_checksum"] != reference_final["parameter_checksum"]:
        print("FAIL %s: final parameters differ (checksum %s vs %s)" %
              (name, final["parameter_checksum"], reference_final["parameter_checksum"]))
        failures += 1
    print("%-4s %-40s losses, gradient norms and final parameters bitwise equal over %d steps" %
          ("ok" if failures == 0 else "FAIL", name, len(steps)))
    return failures


def main():
    tessera, config_dir, case = sys.argv[1:4]
    family, common, layouts = CASES[case]
    config = os.path.join(config_dir, "tiny.toml" if family == "gpt2" else "tiny-openlm.toml")
    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        reference, reference_final = run(tessera, config, 1, common, workdir, "reference")
        assert len(reference) == STEPS, "reference logged %d steps" % len(reference)
        for dp, tp, pp, extra in layouts:
            settings = common + extra + ["parallel.dp=%d" % dp, "parallel.tp=%d" % tp,
                                         "parallel.pp=%d" % pp]
            name = "dp%d_tp%d_pp%d%s" % (dp, tp, pp, "".join("_" + e.split("=")[1] for e in extra))
            steps, final = run(tessera, config, dp * tp * pp, settings, workdir, name)
            if case in BITWISE_CASES:
                failures += compare_bitwise(name, reference, steps, reference_final, final)
                continue
            worst = 0.0
            for ref, got in zip(reference, steps, strict=True):
                relative = abs(got["loss"] - ref["loss"]) / abs(ref["loss"])
                worst = max(worst, relative)
                if relative > RELATIVE:
                    print("FAIL %s step %d: loss %.9g vs one process %.9g (relative %.2e)" %
                          (name, ref["step"], got["loss"], ref["loss"], relative))
                    failures += 1
            print("%-4s %-40s worst relative loss difference %.2e over %d steps" %
                  ("ok" if worst <= RELATIVE else "FAIL", name, worst, len(steps)))
    if failures:
        sys.exit("%d step(s) differ by more than %g relative" % (failures, RELATIVE))


if __name__ == "__main__":
    main()
