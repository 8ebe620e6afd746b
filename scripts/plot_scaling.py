#!/usr/bin/env python3
"""Plot a scaling report: DIR/report.json (written by `tessera report DIR`) -> PNGs beside it.

Usage: python3 scripts/plot_scaling.py DIR/report.json

  tokens_per_s.png  measured tokens/s against ranks, one line per layout, the ideal line from
                    the smallest point, and the planner's prediction for each point
  efficiency.png    scaling efficiency (tokens/s per rank over the smallest point's)
  mfu.png           measured MFU, and the planner's
  memory.png        peak memory per rank: the allocator's high-water mark and the plan's

A point that failed or never ran is drawn as a red cross at the bottom of each plot, labelled,
never left out. Needs python3 and matplotlib (Debian: python3-matplotlib).
"""
import json
import sys
from pathlib import Path

try:
    import matplotlib
except ImportError:
    sys.exit("matplotlib not found: apt install python3-matplotlib")

matplotlib.use("Agg")  # no display on compute nodes
import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)


def series(points, value):
    """(ranks, values) of the points that have `value`, by ranks."""
    pairs = sorted((p["ranks"], value(p)) for p in points if value(p) is not None)
    return [r for r, _ in pairs], [v for _, v in pairs]


def per_layout(points, name, style, value):
    """One line per layout: (label, style, series) for plot()."""
    layouts = sorted({p["layout"] for p in points})
    return [("%s %s" % (layout, name), style,
             series([p for p in points if p["layout"] == layout], value)) for layout in layouts]


def measured(key):
    return lambda p: p["measured"][key] if p["status"] == "ok" else None


def predicted(key):
    return lambda p: p["predicted"][key] or None


def mark_failures(axis, points):
    """A red cross at the bottom for each point without a result, labelled with its status."""
    bottom = axis.get_ylim()[0]
    failed = [p for p in points if p["status"] != "ok"]
    for index, p in enumerate(failed):
        axis.plot([p["ranks"]], [bottom], "rx", markersize=10, clip_on=False)
        axis.annotate("%s %s" % (p["label"], p["status"]), (p["ranks"], bottom),
                      textcoords="offset points", xytext=(-40, 6 + 11 * index), color="red",
                      fontsize=8)


def plot(path, report, title, ylabel, lines, ideal=None):
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for index, (label, style, (x, y)) in enumerate(lines):
        if x:
            axis.plot(x, y, style, label=label, color="C%d" % (index % 10))
    if ideal:
        axis.plot(*ideal, "k--", linewidth=1, label="ideal")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("ranks")
    axis.set_ylabel(ylabel)
    axis.set_title("%s (%s scaling)" % (title, report["mode"]))
    axis.grid(True, alpha=0.3)
    mark_failures(axis, report["points"])
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    report_file = Path(sys.argv[1])
    report = json.loads(report_file.read_text())
    points = report["points"]
    out = report_file.parent
    tokens = series(points, measured("tokens_per_s"))
    ideal = None
    if tokens[0]:
        base_ranks, base_tokens = tokens[0][0], tokens[1][0]
        xs = sorted({p["ranks"] for p in points})
        ideal = (xs, [base_tokens * r / base_ranks for r in xs])
    plot(out / "tokens_per_s.png", report, "Throughput", "tokens/s",
         per_layout(points, "measured", "o-", measured("tokens_per_s"))
         + per_layout(points, "planned", "s:", predicted("tokens_per_s")), ideal)
    plot(out / "efficiency.png", report, "Scaling efficiency", "tokens/s per rank, relative",
         per_layout(points, "measured", "o-", lambda p: p["efficiency"] or None),
         ([min(tokens[0] or [1]), max(tokens[0] or [1])], [1.0, 1.0]))
    plot(out / "mfu.png", report, "Model FLOPs utilisation", "MFU",
         per_layout(points, "measured", "o-", measured("mfu"))
         + per_layout(points, "planned", "s:", predicted("mfu")))
    plot(out / "memory.png", report, "Peak memory per rank", "GiB",
         per_layout(points, "allocator's peak", "o-",
                    lambda p: p["measured"]["peak_buffer_bytes"] / 2**30
                    if p["status"] == "ok" else None)
         + per_layout(points, "planned", "s:", lambda p: p["predicted"]["peak_bytes"] / 2**30
                      if p["predicted"]["peak_bytes"] else None))


if __name__ == "__main__":
    main()
