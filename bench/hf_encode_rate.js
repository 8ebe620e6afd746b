// Hugging Face's `tokenizers` (Rust, through its Node bindings) encoding the texts of a JSON
// Lines file with encodeBatch, for bench_tokenize.py. Prints one JSON line: text bytes, tokens,
// seconds of encodeBatch alone (reading and parsing the file are not timed).
//
//   node hf_encode_rate.js TOKENIZER_JSON CORPUS_JSONL    (RAYON_NUM_THREADS sets its threads)
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, '..', 'tests', 'data', 'hf_reference',
                                        'node_modules', 'tokenizers'));

async function main() {
  const [tokenizerFile, corpus] = process.argv.slice(2);
  const tokenizer = Tokenizer.fromFile(tokenizerFile);
  const texts = fs.readFileSync(corpus, 'utf8').split('\n').filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l).text);
  const bytes = texts.reduce((sum, t) => sum + Buffer.byteLength(t), 0);
  const start = process.hrtime.bigint();
  const encodings = await tokenizer.encodeBatch(texts, { addSpecialTokens: true });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const tokens = encodings.reduce((sum, e) => sum + e.getIds().length, 0);
  process.stdout.write(JSON.stringify({ bytes, tokens, seconds }) + '\n');
}

main().catch((error) => {
  process.stderr.write(`hf_encode_rate.js: ${error.stack || error}\n`);
  process.exit(1);
});
