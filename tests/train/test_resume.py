"""Interrupted runs resume exactly, at the same layout or any other.

`bitwise`: 10 steps straight against 5 steps, `train.stop_after = 5`, and a restart that
resumes from the checkpoint: per-step losses and the final parameters' checksum must be
identical, on one process and at (dp, tp, pp) = (2, 2, 2).
`interval`: checkpoint.every_minutes saves by wall time.
`async`: `bitwise` with checkpoint.async (written by a background thread while training goes on),
resumed from the save of step 4, whose snapshot the writer takes late (debug.snapshot_delay_ms).
`mix`: a two-source data mix (data.sources, weights 0.7/0.3), saved at (2, 1, 1) after step 5 and
resumed at (1, 2, 1) and (1, 1, 1): within 1e-5 of the uninterrupted single-process run (the
mix is a function of the sample index, so a resumed run draws the same samples); and the same
mix with its sources swapped gives other losses (the test can tell the sources apart).
`reshard`: runs at (2, 2, 2), with and without ZeRO-1, stop after step 5; copies of their
checkpoints resume at (1, 4, 2), (4, 1, 2), (1, 1, 1), (8, 1, 1), (1, 2, 1) and with ZeRO-1
toggled; every step of every
continuation must match the uninterrupted single-process run within 1e-5 relative.

usage: test_resume.py TESSERA CONFIG_DIR CASE
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BASE = ["train.steps=10", "train.warmup_steps=2", "eval.every=0", "log.every=1",
        "log.progress=plain", "model.n_layers=8", "model.n_heads=8", "train.micro_batch=2"]
RELATIVE = 1e-5


def train(tessera, config, layout, run_dir, extra=()):
    dp, tp, pp = layout
    command = [tessera, "train", config]
    settings = BASE + ["parallel.dp=%d" % dp, "parallel.tp=%d" % tp, "parallel.pp=%d" % pp,
                       "run.dir=" + run_dir] + list(extra)
    for setting in settings:
        command += ["--set", setting]
    if dp * tp * pp > 1:
        command = ["mpiexec", "-n", str(dp * tp * pp), "--oversubscribe"] + command
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        sys.exit("FAIL %s at %s: exit status %d\n%s%s" % (run_dir, layout, result.returncode,
                                                          result.stdout[-2000:], result.stderr[-2000:]))
    return result.stdout


def metrics(run_dir):
    """Per-step losses (the last record of each step wins, as after a resume) and checksum."""
    losses, checksum = {}, None
    for line in open(os.path.join(run_dir, "metrics.jsonl")):
        record = json.loads(line)
        if record.get("kind") == "train":
            losses[record["step"]] = record["loss"]
        elif record.get("kind") == "final":
            checksum = record["parameter_checksum"]
    return losses, checksum


def bitwise(tessera, config, work, saving=(), resume_from=5):
    """10 steps straight against 5, then a restart from the checkpoint of step `resume_from`
    (the newer ones removed) to step 10."""
    failures = 0
    for layout in [(1, 1, 1), (2, 2, 2)]:
        name = "%d%d%d" % layout
        straight, resumed = os.path.join(work, "straight" + name), os.path.join(work, "resumed" + name)
        train(tessera, config, layout, straight)
        first = train(tessera, config, layout, resumed, ["train.stop_after=5"] + list(saving))
        for step in range(resume_from + 1, 6):
            os.remove(os.path.join(resumed, "checkpoints", "step_%09d.h5" % step))
        second = train(tessera, config, layout, resumed, saving)
        if "resumed from the checkpoint after step %d" % resume_from not in second:
            print("FAIL %s: the restart did not resume from step %d:\n%s"
                  % (layout, resume_from, second[-1500:]))
            failures += 1
        (a, checksum_a), (b, checksum_b) = metrics(straight), metrics(resumed)
        same = a == b and checksum_a == checksum_b and sorted(a) == list(range(1, 11))
        print("%-4s layout %s: 10 steps straight vs 5 + resume + 5: losses %s, final parameters %s"
              % ("ok" if same else "FAIL", layout, "identical" if a == b else "DIFFER",
                 "identical" if checksum_a == checksum_b else "DIFFER"))
        failures += 0 if same else 1
        del first
    return failures


def reshard(tessera, config, work):
    reference_dir = os.path.join(work, "reference")
    train(tessera, config, (1, 1, 1), reference_dir)
    reference, _ = metrics(reference_dir)
    saved = os.path.join(work, "saved")
    train(tessera, config, (2, 2, 2), saved, ["train.stop_after=5"])
    saved_zero = os.path.join(work, "saved_zero")
    train(tessera, config, (2, 2, 2), saved_zero, ["train.stop_after=5", "parallel.zero=1"])
    failures = 0
    for layout, extra, source in [
            ((1, 4, 2), [], saved), ((4, 1, 2), [], saved), ((1, 1, 1), [], saved),
            ((8, 1, 1), [], saved), ((2, 2, 2), ["parallel.zero=1"], saved),
            ((4, 1, 1), ["parallel.zero=1"], saved), ((1, 2, 1), [], saved_zero),
            ((4, 1, 1), ["parallel.zero=1"], saved_zero)]:
        run_dir = os.path.join(work, "resume_%d%d%d_%s_%s" % (
            layout + ("".join(extra) or "plain", os.path.basename(source))))
        shutil.copytree(source, run_dir)
        os.remove(os.path.join(run_dir, "metrics.jsonl"))
        output = train(tessera, config, layout, run_dir, extra)
        losses, _ = metrics(run_dir)
        worst = max(abs(losses[s] - reference[s]) / abs(reference[s]) for s in range(6, 11))
        ok = sorted(losses) == list(range(6, 11)) and worst <= RELATIVE and "resumed" in output
        print("%-4s saved at (2, 2, 2)%s, resumed at %s %s: steps %s, worst relative loss "
              "difference %.2e" % ("ok" if ok else "FAIL",
                                   " with ZeRO-1" if source == saved_zero else "", layout,
                                   " ".join(extra), sorted(losses), worst))
        failures += 0 if ok else 1
    return failures


def prepare_mix(tessera, work):
    """Two byte-level datasets of different text: letters and words, digits and punctuation."""
    sources = []
    for name, text in [("words", "the quick brown fox jumps over the lazy dog. " * 400),
                       ("digits", "3.14159, 2.71828; 1.41421: 1.73205! " * 400)]:
        text_file = os.path.join(work, name + ".txt")
        with open(text_file, "w") as f:
            f.write(text)
        out = os.path.join(work, name)
        subprocess.run([tessera, "prepare", text_file, "-o", out, "--progress", "plain"],
                       check=True, capture_output=True)
        sources.append(out)
    return sources


def mix(tessera, config, work):
    words, digits = prepare_mix(tessera, work)
    data = ["data.sources=%s,%s" % (words, digits), 'data.weights="0.7,0.3"']
    reference_dir = os.path.join(work, "reference")
    train(tessera, config, (1, 1, 1), reference_dir, data)
    reference, _ = metrics(reference_dir)
    saved = os.path.join(work, "saved")
    train(tessera, config, (2, 1, 1), saved, data + ["train.stop_after=5"])
    failures = 0
    for layout in [(1, 2, 1), (1, 1, 1)]:
        run_dir = os.path.join(work, "resume_%d%d%d" % layout)
        shutil.copytree(saved, run_dir)
        os.remove(os.path.join(run_dir, "metrics.jsonl"))
        output = train(tessera, config, layout, run_dir, data)
        losses, _ = metrics(run_dir)
        worst = max(abs(losses[s] - reference[s]) / abs(reference[s]) for s in range(6, 11))
        ok = sorted(losses) == list(range(6, 11)) and worst <= RELATIVE and "resumed" in output
        print("%-4s mix saved at (2, 1, 1), resumed at %s: worst relative loss difference %.2e"
              % ("ok" if ok else "FAIL", layout, worst))
        failures += 0 if ok else 1
    swapped_dir = os.path.join(work, "swapped")
    train(tessera, config, (1, 1, 1), swapped_dir,
          ["data.sources=%s,%s" % (digits, words), 'data.weights="0.3,0.7"'])
    swapped, _ = metrics(swapped_dir)
    differs = max(abs(swapped[s] - reference[s]) / abs(reference[s]) for s in range(1, 11)) > 1e-3
    print("%-4s the sources' order matters to the draw (swapped sources give other losses)"
          % ("ok" if differs else "FAIL"))
    manifest = json.load(open(os.path.join(reference_dir, "manifest.json")))
    drawn = manifest["data"]["sources"]
    shares = [source["samples_drawn"] for source in drawn]
    print("     manifest: samples drawn per source over the run:", shares)
    return failures + (0 if differs else 1)


def asynchronous(tessera, config, work):
    """bitwise, with checkpoints written by a background thread every 2 steps."""
    # Resumed from step 4, whose snapshot is taken late: an optimizer update of step 5 that did
    # not wait for it would be in that checkpoint.
    return bitwise(tessera, config, work, ["checkpoint.async=true", "checkpoint.every=2",
                                           "debug.snapshot_delay_ms=300"], resume_from=4)


def interval(tessera, config, work):
    """checkpoint.every_minutes: a tiny interval saves after every step."""
    run_dir = os.path.join(work, "interval")
    train(tessera, config, (1, 1, 1), run_dir,
          ["train.steps=4", "checkpoint.every_minutes=1e-6", "checkpoint.keep=10"])
    files = sorted(f for f in os.listdir(os.path.join(run_dir, "checkpoints")) if f.endswith(".h5"))
    expected = ["step_%09d.h5" % step for step in range(1, 5)]
    ok = files == expected
    print("%-4s checkpoint.every_minutes saved %s" % ("ok" if ok else "FAIL", files))
    return 0 if ok else 1


def main():
    tessera, config_dir, case = sys.argv[1:4]
    config = os.path.join(config_dir, "tiny.toml")
    with tempfile.TemporaryDirectory() as work:
        failures = {"bitwise": bitwise, "reshard": reshard, "interval": interval,
                    "async": asynchronous, "mix": mix}[case](tessera, config, work)
    if failures:
        sys.exit("%d resume check(s) failed" % failures)


if __name__ == "__main__":
    main()
