#!/usr/bin/python3
"""`tessera export` and `tessera import` end to end.

    test_hf_exchange.py TESSERA CHECKPOINT_LOGITS HF_REFERENCE_DIR WORK_DIR

For a gpt2 model trained with a Hugging Face GPT-2 tokenizer, an openlm model with RMSNorm and
one with LayerNorm (each trained a few steps, on a real tokenizer's data or the synthetic source):

  1. export: config.json names GPT2LMHeadModel / LlamaForCausalLM / StableLmForCausalLM, and the
     logits of transformers_reference.py (written from Transformers' equations and names, reading
     the safetensors as the spec says, in float64) on fixed prompts equal tessera's own
     (checkpoint_logits: the checkpoint's model on the CPU backend, float32) within 1e-5 of their
     largest magnitude; and, both in float64, those of tests/golden/reference_model.py loaded with
     the checkpoint's tensors to 1e-12, so the mapping itself loses nothing;
  2. import of the export: every model tensor bitwise the checkpoint's, optimizer moments zero,
     step 0; exporting the import again gives byte-identical weight files and config.json;
  3. --dtype bfloat16: every weight the float32 one rounded to nearest even;
  4. --max-shard-gb small: several files and an index, the same logits;
  5. training from the imported checkpoint starts from the trained model (its first loss near
     the trained model's last, far below a fresh model's);
  6. bad input: one line, exit status 2, nothing written.
"""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import h5py
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "golden"))
import reference_model  # noqa: E402  tessera's model, as the golden test checks it
import transformers_reference  # noqa: E402

ROOT = HERE.parent.parent
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMP_NUM_THREADS="1")
PROMPTS = [[0, 1, 2, 3, 4, 5, 6, 7], [17, 200, 3, 3, 3, 99, 12, 250, 1, 42, 42, 7]]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def run(args, expect=0):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=ENV)
    if result.returncode != expect:
        sys.exit(f"{' '.join(map(str, args))} exited {result.returncode} (expected {expect}):\n"
                 f"{result.stdout}{result.stderr}")
    return result


def checkpoint_file(directory: Path) -> Path:
    return directory / (directory / "latest").read_text().strip()


def model_tensors(file: Path) -> dict[str, np.ndarray]:
    with h5py.File(file, "r") as f:
        return {name[len("model/"):]: f[name][()] for name in datasets(f) if
                name.startswith("model/")}


def datasets(f) -> list[str]:
    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def tessera_logits(file: Path, ids: list[int]) -> torch.Tensor:
    """Logits of tessera's model at checkpoint `file` (reference_model.py, float64)."""
    with h5py.File(file, "r") as f:
        metadata = json.loads(f.attrs["metadata"])
    model = tomllib.loads(metadata["config"])["model"]
    settings = reference_model.ModelSettings.from_json(model)
    reference = reference_model.ReferenceTransformer(settings)
    parameters = reference_model.named_tessera_parameters(reference)
    tensors = model_tensors(file)
    with torch.no_grad():
        for name, parameter in parameters.items():
            parameter.copy_(torch.tensor(tensors[name], dtype=reference_model.DTYPE))
        return reference.logits(torch.tensor([ids]))[0]


def cpp_logits(tool: Path, file: Path, ids: list[int], work: Path) -> torch.Tensor:
    """tessera's own logits of the checkpoint's model (checkpoint_logits, CPU backend, fp32)."""
    out = work / "logits.bin"
    run([tool, file, ",".join(map(str, ids)), out])
    return torch.tensor(np.fromfile(out, dtype="<f4").reshape(len(ids), -1).astype(np.float64))


def train(tessera, config, run_dir, extra):
    return run([tessera, "train", config, "--set", f"run.dir={run_dir}", "--set",
                "train.warmup_steps=2", "--set", "eval.every=1000", "--set", "log.every=1",
                "--set", "log.progress=\"plain\""] + sum((["--set", s] for s in extra), []))


def losses(run_dir: Path) -> dict[int, float]:
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "train":
            out[record["step"]] = record["loss"]
    return out


def main():
    tessera, logits_tool = Path(sys.argv[1]), Path(sys.argv[2])
    hf_reference, work = Path(sys.argv[3]), Path(sys.argv[4])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run([sys.executable, hf_reference / "make_tokenizers.py", hf_reference, work])
    text = work / "text.txt"
    text.write_text("".join(f"Line {i}: the quick brown fox, and {i * 7} lazy dogs.\n"
                            for i in range(3000)))
    run([tessera, "prepare", text, "-o", work / "gpt2-data", "--tokenizer",
         f"hf:{work / 'gpt2.json'}", "--progress", "plain"])

    cases = {
        "gpt2": (ROOT / "configs" / "tiny.toml",
                 [f"data.source={work / 'gpt2-data'}", "data.tokenizer=\"hf\"",
                  "model.vocab_size=50304", "train.steps=30"]),
        "llama": (ROOT / "configs" / "tiny-openlm.toml",
                  ["model.norm=\"rmsnorm\"", "train.steps=30"]),
        "stablelm": (ROOT / "configs" / "tiny-openlm.toml", ["train.steps=30"]),
    }
    expected_architecture = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM",
                             "stablelm": "StableLmForCausalLM"}
    for name, (config, settings) in cases.items():
        run_dir = work / f"run-{name}"
        train(tessera, config, run_dir, settings)
        trained = checkpoint_file(run_dir / "checkpoints")
        exported = work / f"hf-{name}"
        out = run([tessera, "export", run_dir / "checkpoints", "--to", exported]).stdout
        hf_config = json.loads((exported / "config.json").read_text())
        check(hf_config["architectures"] == [expected_architecture[name]],
              f"{name}: exported as {hf_config['architectures']}")
        if name == "gpt2":
            check((exported / "tokenizer.json").read_bytes() == (work / "gpt2.json").read_bytes()
                  and hf_config["eos_token_id"] == 50256,
                  f"gpt2: the tokenizer.json the data was prepared with, eos 50256 ({out.strip()})")
        for ids in PROMPTS:
            theirs = transformers_reference.logits(exported, ids)
            ours = cpp_logits(logits_tool, trained, ids, work)
            error = ((ours - theirs).abs().max() / theirs.abs().max()).item()
            check(error <= 1e-5, f"{name}: logits of the export on {len(ids)} tokens against "
                  f"tessera's own: max difference {error:.1e} of the largest <= 1e-5")
            exact = tessera_logits(trained, ids)
            error = ((exact - theirs).abs().max() / theirs.abs().max()).item()
            check(error <= 1e-12, f"{name}: the same against tessera's float64 reference model: "
                  f"{error:.1e} <= 1e-12")

        imported = work / f"imported-{name}"
        run([tessera, "import", exported, "--to", imported])
        imported_file = checkpoint_file(imported)
        original, back = model_tensors(trained), model_tensors(imported_file)
        same = original.keys() == back.keys() and all(
            original[k].tobytes() == back[k].tobytes() for k in original)
        check(same, f"{name}: import of the export holds every tensor bitwise "
              f"({len(original)} tensors)")
        with h5py.File(imported_file, "r") as f:
            moments_zero = all(not f[n][()].any() for n in datasets(f) if n.startswith("optim"))
            step = json.loads(f.attrs["metadata"])["step"]
        check(moments_zero and step == 0, f"{name}: imported at step 0 with zero moments")
        again = work / f"hf-{name}-again"
        run([tessera, "export", imported, "--to", again])
        check((again / "model.safetensors").read_bytes() ==
              (exported / "model.safetensors").read_bytes() and
              (again / "config.json").read_text() == (exported / "config.json").read_text(),
              f"{name}: exporting the import again gives the same files")

        if name == "gpt2":
            bf16 = work / "hf-gpt2-bf16"
            run([tessera, "export", trained, "--to", bf16, "--dtype", "bfloat16"])
            exact = transformers_reference.read_safetensors(exported / "model.safetensors")
            raw = (bf16 / "model.safetensors").read_bytes()
            header_length = int.from_bytes(raw[:8], "little")
            header = json.loads(raw[8:8 + header_length])
            rounded_ok = True
            for tensor, entry in header.items():
                if tensor == "__metadata__":
                    continue
                begin, end = entry["data_offsets"]
                stored = np.frombuffer(raw[8 + header_length + begin:8 + header_length + end],
                                       dtype="<u2")
                bits = exact[tensor].astype("<f4").view("<u4").ravel().astype(np.uint64)
                nearest = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
                rounded_ok &= entry["dtype"] == "BF16" and np.array_equal(stored, nearest)
            check(rounded_ok and json.loads((bf16 / "config.json").read_text())["torch_dtype"]
                  == "bfloat16", "gpt2: --dtype bfloat16 rounds every weight to nearest even")

            hub = work / "hf-gpt2-hub-layout"
            hub_layout(exported, hub)
            hub_import = work / "imported-gpt2-hub"
            run([tessera, "import", hub, "--to", hub_import])
            back = model_tensors(checkpoint_file(hub_import))
            check(all(original[k].tobytes() == back[k].tobytes() for k in original),
                  "gpt2: a Hub-style file (names without 'transformer.', attn.bias buffers) "
                  "imports to the same tensors")

            sharded = work / "hf-gpt2-sharded"
            run([tessera, "export", trained, "--to", sharded, "--max-shard-gb", "0.005"])
            index = json.loads((sharded / "model.safetensors.index.json").read_text())
            files = sorted(set(index["weight_map"].values()))
            ids = PROMPTS[1]
            error = (tessera_logits(trained, ids) -
                     transformers_reference.logits(sharded, ids)).abs().max().item()
            check(len(files) > 1 and files[0] == f"model-00001-of-{len(files):05}.safetensors"
                  and error < 1e-9, f"gpt2: sharded into {len(files)} files with an index, "
                  f"the same logits ({error:.1e})")

        if name == "llama":
            fresh = work / "fresh-llama"
            tuned = work / "tuned-llama"
            one_step = settings[:1] + ["train.steps=1", "train.warmup_steps=1"]
            train(tessera, config, fresh, one_step)
            train(tessera, config, tuned, one_step + [f"checkpoint.dir={imported}"])
            trained_loss = losses(run_dir)[30]
            first = losses(tuned)[1]
            check(abs(first - trained_loss) < 0.1 * trained_loss and
                  first < losses(fresh)[1] - 0.3,
                  f"llama: training from the import starts at loss {first:.3f} (trained model "
                  f"{trained_loss:.3f}, a fresh one {losses(fresh)[1]:.3f})")

    bad_input(tessera, work)
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]):
    header, offset, data = {"__metadata__": {"format": "pt"}}, 0, b""
    for name, values in tensors.items():
        raw = values.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(values.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)


def hub_layout(exported: Path, hub: Path):
    """The exported GPT-2 as the Hub's openai-community/gpt2 files name it: GPT2Model's names
    (no "transformer."), the causal-mask buffers h.N.attn.bias among the weights."""
    hub.mkdir()
    shutil.copy(exported / "config.json", hub / "config.json")
    shutil.copy(exported / "tokenizer.json", hub / "tokenizer.json")
    config = json.loads((exported / "config.json").read_text())
    tensors = {name.removeprefix("transformer."): values for name, values in
               transformers_reference.read_safetensors(exported / "model.safetensors").items()}
    positions = config["n_positions"]
    for layer in range(config["n_layer"]):
        tensors[f"h.{layer}.attn.bias"] = np.tril(np.ones((positions, positions)))[None, None]
    write_safetensors(hub / "model.safetensors", tensors)


def expect_refusal(tessera, args, words, target, what):
    result = run([tessera] + args, expect=2)
    lines = result.stderr.strip().splitlines()
    check(len(lines) == 1 and all(w in lines[0] for w in words) and not target.exists(),
          f"{what}: {lines[0] if lines else '(no message)'}")


def bad_input(tessera, work):
    exported = work / "hf-gpt2"
    target = work / "never"
    expect_refusal(tessera, ["import", work / "gpt2-data", "--to", target],
                   ["has no config.json"], target, "import of a directory without config.json")
    broken = work / "broken"
    shutil.copytree(exported, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[:len(data) // 2])
    expect_refusal(tessera, ["import", broken, "--to", target],
                   ["model.safetensors", "bytes of data"], target, "a truncated safetensors")
    header_length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_length])
    c_fc = header["transformer.h.0.mlp.c_fc.weight"]
    c_fc["shape"] = c_fc["shape"][::-1]  # the same bytes, read as the transposed shape
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    (broken / "model.safetensors").write_bytes(len(text).to_bytes(8, "little") + text +
                                               data[8 + header_length:])
    expect_refusal(tessera, ["import", broken, "--to", target],
                   ["transformer.h.0.mlp.c_fc.weight", "has shape [256, 64]",
                    "implies [64, 256]"], target, "a tensor of the wrong shape")
    config = json.loads((exported / "config.json").read_text())
    config["activation_function"] = "relu"
    (broken / "config.json").write_text(json.dumps(config))
    expect_refusal(tessera, ["import", broken, "--to", target], ["activation_function"], target,
                   "an activation tessera does not compute")
    expect_refusal(tessera, ["export", work / "run-llama" / "checkpoints", "--to", exported],
                   ["not an empty directory"], target, "export into a directory in use")
    expect_refusal(tessera, ["export", work / "nowhere", "--to", target], ["not found"], target,
                   "export of a checkpoint that is not there")


if __name__ == "__main__":
    main()
