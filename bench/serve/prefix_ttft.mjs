// Time to first token with and without a prefix-cache hit, through the openai SDK against a
// running `tokenmill serve`: a prompt of about 1,000 tokens sent cold, then the same prefix
// with another question under the same cache_salt (a hit), then under another salt (no hit).
// Each trial uses a fresh prefix, so "cold" is cold. Prints medians as JSON.
//
//   node prefix_ttft.mjs URL MODEL [TRIALS]
// OPENAI_MODULES: folder whose node_modules holds the openai package.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const { default: OpenAI } = await import(
  pathToFileURL(path.join(process.env.OPENAI_MODULES, 'node_modules', 'openai', 'index.mjs')).href);

const [url, model, trialsArg] = process.argv.slice(2);
const trials = Number(trialsArg ?? 5);
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 600_000 });

async function ask(prompt, salt) {
  const started = performance.now();
  const stream = await client.completions.create({ model, prompt, max_tokens: 2, logprobs: 0, stream: true,
    stream_options: { include_usage: true }, cache_salt: salt });
  let first = null;
  let usage = null;
  for await (const chunk of stream) {
    if (first === null && chunk.choices[0]?.logprobs?.tokens?.length) first = performance.now();
    if (chunk.usage) usage = chunk.usage;
  }
  return { ttft: first - started, prompt: usage.prompt_tokens, cached: usage.prompt_tokens_details.cached_tokens };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = { cold: [], hit: [], other_salt: [] };
await ask('warm up', 'warm-up');
for (let t = 0; t < trials; ++t) {
  const prefix = Array.from({ length: 1000 }, (_, i) => String.fromCharCode(97 + ((i * 7 + t * 13) % 26))).join('');
  rows.cold.push(await ask(`${prefix} First question?`, `a${t}`));
  rows.hit.push(await ask(`${prefix} Second question!`, `a${t}`));
  rows.other_salt.push(await ask(`${prefix} Second question!`, `b${t}`));
}
const summary = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, {
  ttft_ms: +median(v.map((r) => r.ttft)).toFixed(1), prompt_tokens: v[0].prompt, cached_tokens: median(v.map((r) => r.cached)) }]));
console.log(JSON.stringify(summary));
