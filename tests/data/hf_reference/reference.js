// The reference side of tests/data/test_hf_conformance.py: Hugging Face's `tokenizers` (its
// Rust library, through the Node bindings) and, for GPT-2, the independent `gpt-3-encoder`, in
// the same line format as `tessera tokenize`.
//
//   node reference.js encode   TOKENIZER_JSON INPUT [--no-special-tokens]
//   node reference.js document TOKENIZER_JSON INPUT [--no-special-tokens]
//   node reference.js decode   TOKENIZER_JSON IDS   [--skip-special-tokens]
//   node reference.js gpt-3-encoder - INPUT
//
// Input bytes that are not UTF-8 become U+FFFD as Rust's String::from_utf8_lossy would make
// them (the library itself takes only strings).
'use strict';
const fs = require('fs');
const path = require('path');
const modules = path.join(__dirname, 'node_modules');
const { Tokenizer } = require(path.join(modules, 'tokenizers'));

function lines(text) {
  const parts = text.split('\n');
  if (parts[parts.length - 1] === '') parts.pop();
  return parts;
}

async function main() {
  const [mode, tokenizerFile, inputFile, flag] = process.argv.slice(2);
  const text = fs.readFileSync(inputFile).toString('utf8');
  const out = [];
  if (mode === 'gpt-3-encoder') {
    const { encode } = require(path.join(modules, 'gpt-3-encoder'));
    for (const line of lines(text)) out.push(encode(line).join(' '));
  } else {
    const tokenizer = Tokenizer.fromFile(tokenizerFile);
    if (mode === 'decode') {
      const ids = lines(text).map((l) => (l.trim() === '' ? [] : l.trim().split(/\s+/).map(Number)));
      const texts = await tokenizer.decodeBatch(ids, flag === '--skip-special-tokens');
      out.push(...texts);
    } else {
      const options = { addSpecialTokens: flag !== '--no-special-tokens' };
      const inputs = mode === 'document' ? [text] : lines(text);
      const batch = 4096;
      for (let i = 0; i < inputs.length; i += batch) {
        const encodings = await tokenizer.encodeBatch(inputs.slice(i, i + batch), options);
        for (const encoding of encodings) out.push(encoding.getIds().join(' '));
      }
    }
  }
  process.stdout.write(out.map((l) => l + '\n').join(''));
}

main().catch((error) => {
  process.stderr.write(`reference.js: ${error.stack || error}\n`);
  process.exit(1);
});
