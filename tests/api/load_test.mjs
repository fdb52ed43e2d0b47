// Concurrent streaming clients against a running `tokenmill serve`, through the openai SDK.
// Every client streams one completion per round; the script fails (exit 1) on any error or
// incomplete stream, and prints per-concurrency figures as JSON: time to first token (p50,
// p99), generated tokens per second of wall time (prefills included), and the decode rate:
// each stream's tokens after its first over the time since its first, summed over the
// streams running together.
//
//   node load_test.mjs URL MODEL CLIENTS[,CLIENTS...] [MAX_TOKENS] [ROUNDS]
// OPENAI_MODULES: folder whose node_modules holds the openai package.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const { default: OpenAI } = await import(
  pathToFileURL(path.join(process.env.OPENAI_MODULES, 'node_modules', 'openai', 'index.mjs')).href);

const [url, model, clientList, maxTokensArg, roundsArg] = process.argv.slice(2);
const maxTokens = Number(maxTokensArg ?? 64);
const rounds = Number(roundsArg ?? 1);
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 600_000 });

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// One client: `rounds` streamed completions one after another, each with its own prompt (so
// the prefix cache does not shorten prefills). logprobs make every token its own event;
// ignore_eos makes every stream as long as max_tokens.
async function runClient(id, ttfts, rates) {
  let tokens = 0;
  for (let round = 0; round < rounds; ++round) {
    const started = performance.now();
    const stream = await client.completions.create({
      model, prompt: `Client ${id}, round ${round}: tell me a story about the number ${id * 7919 + round}.`,
      max_tokens: maxTokens, temperature: 1, seed: id * 100 + round, logprobs: 0, stream: true, ignore_eos: true,
      stream_options: { include_usage: true },
    });
    let first = null;
    let events = 0;
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        events += c.logprobs?.tokens?.length ?? 0;
        if (first === null && events > 0) first = performance.now();
        finish = c.finish_reason ?? finish;
      }
    }
    if (!finish || !usage || usage.completion_tokens !== events)
      throw new Error(`client ${id}: incomplete stream (finish ${finish}, ${events} token events, usage ${JSON.stringify(usage)})`);
    ttfts.push(first - started);
    rates.push(((usage.completion_tokens - 1) * 1000) / (performance.now() - first));
    tokens += usage.completion_tokens;
  }
  return tokens;
}

// One request first, so the measured ones find the connection, node's compiled code and the
// model's weights warm.
await client.completions.create({ model, prompt: 'warm up', max_tokens: 2 });

const results = [];
for (const n of clientList.split(',').map(Number)) {
  const ttfts = [];
  const rates = [];
  const started = performance.now();
  const tokens = (await Promise.all(Array.from({ length: n }, (_, i) => runClient(i, ttfts, rates)))).reduce((a, b) => a + b, 0);
  const seconds = (performance.now() - started) / 1000;
  ttfts.sort((a, b) => a - b);
  results.push({ clients: n, requests: ttfts.length, tokens, seconds: +seconds.toFixed(3),
    tokens_per_second: +(tokens / seconds).toFixed(1),
    decode_tokens_per_second: +(rates.reduce((a, b) => a + b, 0) / rounds).toFixed(1),
    ttft_p50_ms: +percentile(ttfts, 50).toFixed(1), ttft_p99_ms: +percentile(ttfts, 99).toFixed(1) });
}
console.log(JSON.stringify(results));
