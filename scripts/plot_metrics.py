#!/usr/bin/env python3
"""Plot a tessera run's loss curve: RUN_DIR/metrics.jsonl -> RUN_DIR/loss.png.

Usage: python3 scripts/plot_metrics.py RUN_DIR

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


def plot(run_dir):
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        sys.exit(f"{path} not found; pass the run.dir of a tessera run")
    records = read_records(path)
    train, val = curves(records)
    floor = first_run_floor(records)
    if not train and not val:
        sys.exit(f"{path} has no train or eval records yet")

    figure, axes = plt.subplots(figsize=(8, 5))
    if train:
        steps = sorted(train)
        axes.plot(steps, [train[s] for s in steps], label="train loss", linewidth=1)
    if val:
        steps = sorted(val)
        axes.plot(steps, [val[s] for s in steps], "o", label="val loss", markersize=4)
    if floor is not None:
        floor = float(floor)
        axes.axhline(floor, color="gray", linestyle="--", label=f"loss floor {floor:.4f}")
    axes.set_xlabel("step")
    axes.set_ylabel("loss (nats/token)")
    axes.set_title(run_dir.resolve().name)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    out = run_dir / "loss.png"
    figure.savefig(out, dpi=120)
    print(f"wrote {out}")


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2])
    plot(Path(argv[1]))


if __name__ == "__main__":
    main(sys.argv)
