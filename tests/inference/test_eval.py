"""`tessera eval` end to end.

Trains two tiny models on byte-tokenized text (gpt2, and openlm with RMSNorm and rotary), then:
  1. the validation loss over the windows the trainer's last evaluation used equals that
     evaluation's (the same windows, summed in the same order);
  2. the validation loss over every window is the same at dp = 2 (bit for bit) and at tp = 2 and
     pp = 2 (within 1e-6 relative) as on one process;
  3. multiple-choice log-likelihoods equal those of an independent model written from
     Transformers' equations (transformers_reference.py, float64) on the exported weights,
     encoded as lm-evaluation-harness does (context whitespace moved to the choice, contexts
     cut from the left to fit seq_len); accuracy and its standard error follow from the scores;
     at tp = 2 and pp = 2 they are the same within 1e-5;
  4. periodic evaluation during training, shared out over dp replicas, gives the same val_loss
     at dp = 2 as at dp = 1 (deterministic mode: bit for bit);
  5. bad input: one line, exit status 2, nothing written.

usage: test_eval.py TESSERA WORK_DIR
"""

import json
import math
import shutil
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hf_model"))
import transformers_reference  # noqa: E402
from inference_test_support import (MODELS, ROOT, SEQ_LEN, check, export, finish,  # noqa: E402
                                    metrics, prepare_text, run, tessera_lines, train_model)


def evaluate(tessera, checkpoint, out: Path, args=(), ranks=1) -> dict:
    run([tessera, "eval", checkpoint, "--json", out, "--progress", "plain"] + list(args),
        ranks=ranks)
    return json.loads(out.read_text())


def question(context, choices, answer):
    return {"context": context, "choices": choices, "answer": answer}


def task_questions() -> list[dict]:
    questions = [question(f"Line {i}: the quick brown", [" fox", " cat", " owl"], 0)
                 for i in (3, 41, 977)]
    questions += [question(f"Line {i}: the quick brown fox, and ", [f"{i * 7} lazy", "no lazy"],
                           0) for i in (5, 12)]  # trailing space: moved to the choice
    questions.append(question("and " * 30 + "the lazy", [" dogs.", " cats."], 0))  # cut to fit
    questions.append(question("Line 8: the slow", [" green turtle", " brown fox"], 1))
    # Answers the text contradicts: a trained model gets these wrong, so accuracy is below 1.
    questions += [question(f"Line {i}: the quick", [" brown", " green"], 1) for i in (6, 60)]
    return questions


def lm_eval_ids(context: str, choice: str) -> tuple[list[int], int]:
    """Byte ids of one choice as the harness encodes it, and how many are the choice's."""
    kept = context.rstrip(" \t\n\r")
    continuation = context[len(kept):] + choice
    ids = list((kept + continuation).encode())
    count = len(ids) - len(kept.encode())
    return ids[-(SEQ_LEN + 1):], count


def reference_log_likelihood(model_dir: Path, context: str, choice: str) -> float:
    ids, count = lm_eval_ids(context, choice)
    logits = transformers_reference.logits(model_dir, ids[:-1])
    log_probs = torch.log_softmax(logits, dim=-1)
    return sum(log_probs[t, ids[t + 1]].item() for t in range(len(ids) - 1 - count, len(ids) - 1))


def check_scores(name, result: dict, questions: list[dict], model_dir: Path):
    task = result["tasks"][0]
    worst = 0.0
    correct, correct_norm = [], []
    for q, scores in zip(questions, task["scores"]):
        lls = [c["log_likelihood"] for c in scores["choices"]]
        for choice, ll in zip(q["choices"], lls):
            expected = reference_log_likelihood(model_dir, q["context"], choice)
            worst = max(worst, abs(ll - expected) / max(1.0, abs(expected)))
        per_byte = [ll / c["bytes"] for ll, c in zip(lls, scores["choices"])]
        correct.append(lls.index(max(lls)) == q["answer"])
        correct_norm.append(per_byte.index(max(per_byte)) == q["answer"])
    check(worst <= 1e-5, f"{name}: choice log-likelihoods equal the Transformers-equation "
                         f"reference's (worst {worst:.1e} relative, <= 1e-5)")
    n = len(correct_norm)
    p = sum(correct_norm) / n
    check(abs(task["accuracy_normalised"]["value"] - p) < 1e-12 and
          abs(task["accuracy_normalised"]["standard_error"] - math.sqrt(p * (1 - p) / (n - 1)))
          < 1e-12 and abs(task["accuracy"]["value"] - sum(correct) / n) < 1e-12,
          f"{name}: accuracy {p:.3f} and its standard error follow from the scores")
    check(task["truncated"] == 1, f"{name}: the one over-long context was cut "
                                  f"({task['truncated']})")


def check_layouts(tessera, name, checkpoint, work, tasks, model_dir):
    one = evaluate(tessera, checkpoint, work / f"{name}-one.json", ["--tasks", tasks])
    check_scores(name, one, task_questions(), model_dir)
    loss = one["validation"][0]["loss"]
    dp = evaluate(tessera, checkpoint, work / f"{name}-dp.json", ranks=2)
    check(dp["validation"][0]["loss"] == loss and dp["layout"] == "dp=2 tp=1 pp=1",
          f"{name}: validation loss at dp=2 is one process's bit for bit ({loss:.6f})")
    for layout in ("parallel.tp=2", "parallel.pp=2"):
        other = evaluate(tessera, checkpoint, work / f"{name}-{layout}.json",
                         ["--set", layout, "--tasks", tasks], ranks=2)
        error = abs(other["validation"][0]["loss"] - loss) / loss
        lls = [c["log_likelihood"] for q in one["tasks"][0]["scores"] for c in q["choices"]]
        others = [c["log_likelihood"] for q in other["tasks"][0]["scores"] for c in q["choices"]]
        worst = max(abs(a - b) / max(1.0, abs(a)) for a, b in zip(lls, others))
        check(error <= 1e-6 and worst <= 1e-5,
              f"{name}: at {layout} the validation loss is within {error:.1e} (<= 1e-6) and the "
              f"choice scores within {worst:.1e} (<= 1e-5) of one process's")


def main():
    tessera, work = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = prepare_text(tessera, work)
    tasks = work / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(q) + "\n" for q in task_questions()))
    for name in MODELS:
        run_dir = train_model(tessera, work, data, name)
        checkpoint = run_dir / "checkpoints"
        trained = metrics(run_dir, "eval")[-1]["val_loss"]
        same = evaluate(tessera, checkpoint, work / f"{name}-same.json", ["--windows", "12"])
        check(same["validation"][0]["loss"] == trained,
              f"{name}: over the trainer's 3 x 4 windows the loss is its last val_loss "
              f"({trained:.6f})")
        model_dir = export(tessera, checkpoint, work / f"hf-{name}")
        check_layouts(tessera, name, checkpoint, work, tasks, model_dir)

    periodic(tessera, work, data)
    bad_input(tessera, work, data, tasks)
    finish()


def periodic(tessera, work, data):
    losses = {}
    for ranks in (1, 2):
        run_dir = work / f"periodic-{ranks}"
        settings = [f"data.source={data}", "train.steps=6", "train.warmup_steps=2", "eval.every=3", "eval.batches=3",
                    "train.micro_batch=2", "train.global_batch=4", "parallel.deterministic=true",
                    f"run.dir={run_dir}"]
        run([tessera, "train", ROOT / "configs" / "tiny.toml"] +
            sum((["--set", s] for s in settings), []), ranks=ranks)
        losses[ranks] = [r["val_loss"] for r in metrics(run_dir, "eval")]
    check(len(losses[1]) == 2 and losses[1] == losses[2],
          f"periodic evaluation: 3 validation microbatches shared over 2 replicas give one "
          f"process's val_loss bit for bit ({losses[1]} and {losses[2]})")


def expect_refusal(tessera, args, words, written, what, ranks=1):
    result = run([tessera, "eval"] + args, expect=2, ranks=ranks)
    lines = tessera_lines(result.stderr)
    check(len(lines) == 1 and all(w in lines[0] for w in words) and not written.exists(),
          f"refused, nothing written: {what} ({lines})")


def bad_input(tessera, work, data, tasks):
    checkpoint = work / "run-gpt2" / "checkpoints"
    out = work / "refused.json"
    bad = work / "bad.jsonl"
    bad.write_text(json.dumps(question("a", [" b", " c"], 0)) + "\n" +
                   json.dumps({"context": "a", "choices": [" b", " c"]}) + "\n")
    expect_refusal(tessera, [checkpoint, "--tasks", bad, "--json", out],
                   [f"{bad}:2:", "\"answer\""], out, "a task line without its answer", ranks=2)
    empty_choice = work / "empty-choice.jsonl"
    empty_choice.write_text(json.dumps(question("a", [" b", ""], 0)) + "\n")
    expect_refusal(tessera, [checkpoint, "--tasks", empty_choice, "--json", out],
                   [f"{empty_choice}:1:", "no tokens"], out, "an empty choice")
    expect_refusal(tessera, [work / "nowhere", "--json", out], ["not found"], out,
                   "a checkpoint that does not exist")
    expect_refusal(tessera, [data, "--json", out], ["no intact checkpoint"], out,
                   "a directory that holds no checkpoint")
    expect_refusal(tessera, [checkpoint, "--json", work / "no-dir" / "x.json"], ["--json"],
                   work / "no-dir", "--json in a directory that does not exist")
    expect_refusal(tessera, [checkpoint, "--set", "model.n_layers=3", "--json", out],
                   ["model.* comes from the checkpoint"], out, "--set changing the model")
    expect_refusal(tessera, [checkpoint, "--set", "parallel.tp=3", "--json", out],
                   ["parallel.tp"], out, "a layout that does not fit the model", ranks=3)
    expect_refusal(tessera, [checkpoint, "--data", "synthetic", "--json", out], ["--windows"], out,
                   "the unbounded synthetic source without --windows")
    expect_refusal(tessera, [checkpoint, "--data", work / "nowhere", "--json", out],
                   ["nowhere"], out, "a data source that does not exist")


if __name__ == "__main__":
    main()
