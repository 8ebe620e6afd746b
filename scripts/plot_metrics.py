#!/usr/bin/env python3
"""Plot a tessera run's loss curve: RUN_DIR/metrics.jsonl -> RUN_DIR/loss.png.

Usage: python3 scripts/plot_metrics.py RUN_DIR [RUN_DIR ...] [-o OUT.png]

With several runs (e.g. the same configuration in fp32 and in bf16) their curves share one plot,
each labelled with its directory's name, written to OUT.png (default: loss.png in the first).

Draws the training loss against the step, the validation loss as points, and a horizontal line
at the loss floor (the data's entropy) when the first "run" record has a "loss_floor". A resumed
run appends to the same file, so a step may appear more than once; the last record wins.
Needs only python3 and matplotlib (Debian: python3-matplotlib).
"""
import json
import sys
from pathlib import Path

try:
    import matplotlib
except ImportError:
    sys.exit("matplotlib not found: apt install python3-matplotlib, and run /usr/bin/python3 "
             "if a pyenv or venv python3 comes first on PATH")

matplotlib.use("Agg")  # no display on compute nodes
import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)


def read_records(path):
    """Every whole JSON line of metrics.jsonl; a torn last line (a killed run) is skipped."""
    records = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                print(f"{path}:{number}: not a JSON line, skipped", file=sys.stderr)
    return records


def curves(records):
    """(train {step: loss}, val {step: val_loss}); for a repeated step the last record wins."""
    train, val = {}, {}
    for record in records:
        if "step" not in record or record.get("kind") == "run":
            continue
        if "val_loss" in record:
            val[int(record["step"])] = float(record["val_loss"])
        elif "loss" in record:
            train[int(record["step"])] = float(record["loss"])
    return train, val


def first_run_floor(records):
    """The loss_floor of the first "run" record only (later starts of the run may not know it)."""
    for record in records:
        if record.get("kind") == "run":
            return record.get("loss_floor")
    return None


def load(run_dir):
    """(train, val, floor) of one run; exits with a message when it has nothing to plot."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        sys.exit(f"{path} not found; pass the run.dir of a tessera run")
    records = read_records(path)
    train, val = curves(records)
    if not train and not val:
        sys.exit(f"{path} has no train or eval records yet")
    return train, val, first_run_floor(records)


def plot(run_dirs, out):
    figure, axes = plt.subplots(figsize=(8, 5))
    floor = None
    for run_dir in run_dirs:
        train, val, run_floor = load(run_dir)
        floor = floor if floor is not None else run_floor
        prefix = f"{run_dir.resolve().name} " if len(run_dirs) > 1 else ""
        if train:
            steps = sorted(train)
            axes.plot(steps, [train[s] for s in steps], label=prefix + "train loss", linewidth=1)
        if val:
            steps = sorted(val)
            axes.plot(steps, [val[s] for s in steps], "o", label=prefix + "val loss", markersize=4)
    if floor is not None:
        floor = float(floor)
        axes.axhline(floor, color="gray", linestyle="--", label=f"loss floor {floor:.4f}")
    axes.set_xlabel("step")
    axes.set_ylabel("loss (nats/token)")
    axes.set_title(" vs ".join(run_dir.resolve().name for run_dir in run_dirs))
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    print(f"wrote {out}")


def main(argv):
    arguments = argv[1:]
    out = None
    if "-o" in arguments:
        at = arguments.index("-o")
        if at + 1 >= len(arguments):
            sys.exit("-o needs a file name, e.g. -o loss.png")
        out = Path(arguments[at + 1])
        del arguments[at:at + 2]
    if not arguments:
        sys.exit(__doc__.strip().splitlines()[2])
    run_dirs = [Path(argument) for argument in arguments]
    plot(run_dirs, out if out is not None else run_dirs[0] / "loss.png")


if __name__ == "__main__":
    main(sys.argv)
