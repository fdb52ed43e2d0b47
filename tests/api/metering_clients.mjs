// Concurrent clients for the metering tests (maas_server_test.cpp), through the official openai
// SDK: COUNT completions at once with one API key, each with its own request_id, all sharing a
// long prompt prefix (so the prefix cache serves some of it). Prints "STARTED" once every
// admitted stream has its first token (the crash test kills the server then), and at the end
// "RESULTS " and a JSON array: per request its request_id, HTTP status, the usage the client
// received, the error object and Retry-After of a refusal.
//
//   node metering_clients.mjs URL KEY MODEL COUNT MAX_TOKENS TAG [stream]
// OPENAI_MODULES: folder whose node_modules holds the openai package.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const { default: OpenAI } = await import(
  pathToFileURL(path.join(process.env.OPENAI_MODULES, 'node_modules', 'openai', 'index.mjs')).href);

const [url, key, model, countArg, maxTokensArg, tag, mode] = process.argv.slice(2);
const count = Number(countArg);
const maxTokens = Number(maxTokensArg);
const stream = mode === 'stream';
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, timeout: 600_000 });
const prefix = 'A shared preamble that every request of this test repeats word for word, long enough to fill '
  + 'several blocks of the prefix cache so that later requests find it there. ';

let firstTokens = 0;
let admitted = 0;
let refused = 0;
function maybeAnnounce() {
  if (stream && admitted + refused === count && firstTokens === admitted) console.log('STARTED');
}

async function one(i) {
  const request_id = `${tag}-${i}`;
  const params = {
    model, prompt: `${prefix}Request ${i}.`, max_tokens: maxTokens, temperature: 0, ignore_eos: true, request_id,
  };
  try {
    if (!stream) {
      const r = await client.completions.create(params);
      return { request_id, status: 200, usage: r.usage };
    }
    const s = await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    ++admitted;
    let usage = null;
    let first = true;
    try {
      for await (const chunk of s) {
        if (chunk.usage) usage = chunk.usage;
        if (first && chunk.choices.some((c) => c.text)) {
          first = false;
          ++firstTokens;
          maybeAnnounce();
        }
      }
    } catch (e) {
      return { request_id, status: 200, usage, broken: String(e.message ?? e) };
    }
    return { request_id, status: 200, usage };
  } catch (e) {
    if (!(e instanceof OpenAI.APIError) || e.status === undefined) throw e;
    ++refused;
    maybeAnnounce();
    return { request_id, status: e.status, error: e.error, retry_after: e.headers?.get?.('retry-after') ?? null };
  }
}

const results = await Promise.all(Array.from({ length: count }, (_, i) => one(i)));
console.log('RESULTS ' + JSON.stringify(results));
