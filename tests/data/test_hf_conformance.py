"""`tessera tokenize` against Hugging Face's `tokenizers` (and GPT-2 against gpt-3-encoder).

    test_hf_conformance.py TESSERA REFERENCE_DIR WORK_DIR [TINYSHAKESPEARE]

For each tokenizer that make_tokenizers.py writes, on a Unicode torture text and on
tiny-shakespeare: every line encoded with and without special tokens, the whole text as one
document, and the reference ids decoded with and without special tokens must be identical,
line for line. The first lines that differ are printed with both sides.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE_SCRIPT = os.path.join(HERE, "hf_reference", "reference.js")


def run(command, stdin=None):
    result = subprocess.run(command, capture_output=True, stdin=stdin)
    if result.returncode != 0:
        sys.exit(f"FAILED: {' '.join(command)} exited {result.returncode}:\n"
                 f"{result.stderr.decode(errors='replace')}")
    return result.stdout


def compare(what, ours, theirs, source_lines):
    ours_lines = ours.decode("utf-8", errors="replace").split("\n")
    their_lines = theirs.decode("utf-8", errors="replace").split("\n")
    if ours_lines == their_lines:
        return 0
    shown = 0
    for number, (a, b) in enumerate(zip(ours_lines, their_lines), start=1):
        if a != b and shown < 3:
            source = source_lines[number - 1] if number - 1 < len(source_lines) else b""
            print(f"MISMATCH {what}, line {number}\n  input:     {source!r}\n"
                  f"  tessera:   {a[:400]}\n  reference: {b[:400]}")
            shown += 1
    if len(ours_lines) != len(their_lines):
        print(f"MISMATCH {what}: {len(ours_lines)} lines from tessera, "
              f"{len(their_lines)} from the reference")
    return 1


def check_tokenizer(tessera, tokenizer_json, text_file, work_dir):
    name = f"{os.path.basename(tokenizer_json)} on {os.path.basename(text_file)}"
    with open(text_file, "rb") as f:
        source_lines = f.read().split(b"\n")
    spec = "hf:" + tokenizer_json
    failures = 0
    for mode, flags in [("encode", []), ("encode", ["--no-special-tokens"]),
                        ("document", [])]:
        ours = run([tessera, "tokenize", "--tokenizer", spec, text_file] +
                   (["--document"] if mode == "document" else []) + flags)
        theirs = run(["node", REFERENCE_SCRIPT, mode, tokenizer_json, text_file] + flags)
        failures += compare(f"{name}: {mode} {' '.join(flags)}", ours, theirs,
                            source_lines if mode == "encode" else [b"(whole text)"])
        if mode == "encode" and not flags:
            ids_file = os.path.join(work_dir, os.path.basename(tokenizer_json) + ".ids")
            with open(ids_file, "wb") as f:
                f.write(theirs)
            for decode_flags in [[], ["--skip-special-tokens"]]:
                ours_text = run([tessera, "tokenize", "--tokenizer", spec, "--decode", ids_file] +
                                decode_flags)
                their_text = run(["node", REFERENCE_SCRIPT, "decode", tokenizer_json, ids_file] +
                                 decode_flags)
                failures += compare(f"{name}: decode {' '.join(decode_flags)}", ours_text,
                                    their_text, source_lines)
    print(f"{'ok  ' if failures == 0 else 'FAIL'} {name}")
    return failures


def main():
    tessera, reference_dir, work_dir = sys.argv[1:4]
    tinyshakespeare = sys.argv[4] if len(sys.argv) > 4 else ""
    if not os.path.isdir(os.path.join(reference_dir, "node_modules", "tokenizers")):
        sys.exit(f"FAILED: the reference packages are not installed in {reference_dir}; run "
                 "scripts/install-deps.sh (npm ci there)")
    os.makedirs(work_dir, exist_ok=True)
    run([sys.executable, os.path.join(reference_dir, "make_tokenizers.py"), reference_dir,
         work_dir])
    texts = [os.path.join(work_dir, "torture.txt")]
    if os.path.isfile(tinyshakespeare):
        texts.append(tinyshakespeare)
    else:
        print(f"note: {tinyshakespeare!r} not found: tiny-shakespeare is left out")
    failures = 0
    for family in ["gpt2", "llama3", "neox", "llama2", "metaspace"]:
        for text in texts:
            failures += check_tokenizer(tessera, os.path.join(work_dir, family + ".json"), text,
                                        work_dir)
    if os.path.isfile(tinyshakespeare):
        # An implementation of GPT-2's encoder that shares no code with either.
        ours = run([tessera, "tokenize", "--tokenizer", "hf:" + os.path.join(work_dir, "gpt2.json"),
                    tinyshakespeare])
        theirs = run(["node", REFERENCE_SCRIPT, "gpt-3-encoder", "-", tinyshakespeare])
        failures += compare("gpt2.json against gpt-3-encoder", ours, theirs, [])
    if failures:
        sys.exit(f"FAILED: {failures} comparisons differ")
    print("all tokenizers agree with the reference")


if __name__ == "__main__":
    main()
