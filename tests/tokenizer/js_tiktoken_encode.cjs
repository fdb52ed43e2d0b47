// Reference GLM-4 token ids from js-tiktoken (npm), an implementation independent of ours.
// Usage: node js_tiktoken_encode.cjs RANKS TOKENIZER_CONFIG CORPUS_JSON OUTPUT_JSON
// RANKS is GLM-4's tokenizer.model ("base64 rank" lines), TOKENIZER_CONFIG the GLM-4.5
// tokenizer_config.json whose added_tokens_decoder gives the special tokens, CORPUS_JSON an array
// of strings. Writes {"parse_special": [[ids]...], "user_defined_only": [[ids]...]}: the first
// with every added token recognised in text, the second with only those not marked special
// (the user-defined ones, which tokenizers split out of raw text even without special parsing).
// js-tiktoken is found through NODE_PATH.
"use strict";
const fs = require("fs");
const { Tiktoken } = require("js-tiktoken/lite");

const [ranksPath, configPath, corpusPath, outputPath] = process.argv.slice(2);

// tiktoken's ranks format for js-tiktoken: "name offset token token ..." lines.
const b64 = [];
for (const line of fs.readFileSync(ranksPath, "utf8").split("\n")) {
  if (!line) continue;
  const [token, rank] = line.split(" ");
  b64[Number(rank)] = token;
}
const config = JSON.parse(fs.readFileSync(configPath, "utf8"));
const specialTokens = {};
const userDefined = [];
for (const [id, entry] of Object.entries(config.added_tokens_decoder)) {
  specialTokens[entry.content] = Number(id);
  const looksSpecial = entry.content.startsWith("<|") && entry.content.endsWith("|>");
  if (!entry.special && !looksSpecial) userDefined.push(entry.content);
}

// GLM-4's pattern. JavaScript (V8 in Node 20) has no (?i:...) groups, so the contractions are
// spelled out in both cases, as js-tiktoken's own cl100k_base pattern does.
const contractions = ["s", "t", "re", "ve", "m", "ll", "d"]
  .flatMap((c) => {
    const variants = [""];
    for (const ch of c) {
      const next = [];
      for (const v of variants) next.push(v + ch, v + ch.toUpperCase());
      variants.splice(0, variants.length, ...next);
    }
    return variants.map((v) => "'" + v);
  })
  .join("|");
const pattern =
  "(" + contractions + ")|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const encoder = new Tiktoken({ pat_str: pattern, special_tokens: specialTokens, bpe_ranks: "glm4 0 " + b64.join(" ") });
const corpus = JSON.parse(fs.readFileSync(corpusPath, "utf8"));
const result = {
  parse_special: corpus.map((text) => encoder.encode(text, "all", [])),
  user_defined_only: corpus.map((text) => encoder.encode(text, userDefined, [])),
};
fs.writeFileSync(outputPath, JSON.stringify(result));
