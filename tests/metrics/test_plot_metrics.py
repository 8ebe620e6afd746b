"""scripts/plot_metrics.py: reads a resumed run's metrics.jsonl and writes loss.png; overlays
two runs into the file named by -o."""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "plot_metrics.py"
sys.dont_write_bytecode = True  # no __pycache__ in scripts/
sys.path.insert(0, str(SCRIPT.parent))
import plot_metrics  # noqa: E402


def write_run(run_dir):
    records = [
        {"kind": "run", "loss_floor": 1.5},
        {"kind": "train", "step": 1, "loss": 5.0},
        {"kind": "train", "step": 2, "loss": 4.0},
        {"kind": "eval", "step": 2, "val_loss": 4.2},
        {"kind": "run"},  # resumed from step 1: step 2 is repeated
        {"kind": "train", "step": 2, "loss": 3.9},
    ]
    text = "".join(json.dumps(r) + "\n" for r in records) + '{"kind": "tr'  # torn last line
    (run_dir / "metrics.jsonl").write_text(text)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        write_run(run_dir)
        records = plot_metrics.read_records(run_dir / "metrics.jsonl")
        train, val = plot_metrics.curves(records)
        assert train == {1: 5.0, 2: 3.9}, train
        assert val == {2: 4.2}, val
        assert plot_metrics.first_run_floor(records) == 1.5
        subprocess.run([sys.executable, str(SCRIPT), str(run_dir)], check=True)
        png = (run_dir / "loss.png").read_bytes()
        assert png.startswith(b"\x89PNG"), "loss.png is not a PNG"
        other = run_dir / "other"
        other.mkdir()
        write_run(other)
        both = run_dir / "both.png"
        subprocess.run([sys.executable, str(SCRIPT), str(run_dir), str(other), "-o", str(both)],
                       check=True)
        assert both.read_bytes().startswith(b"\x89PNG"), "both.png is not a PNG"
        missing = subprocess.run([sys.executable, str(SCRIPT), str(run_dir), "-o"],
                                 capture_output=True, text=True)
        assert missing.returncode != 0 and "-o needs a file name" in missing.stderr, missing
    print("plot_metrics ok")


if __name__ == "__main__":
    main()
