// The official openai npm SDK, unchanged, against a running `tokenmill serve` (started by
// server_test.cpp). Environment:
//   TOKENMILL_URL      http://127.0.0.1:PORT
//   TOKENMILL_BIN      the tokenmill binary (to count tokens with the same tokenizer)
//   TOKENMILL_MODEL    path of the served model "tiny" (byte vocabulary, chat template below)
//   TOKENMILL_TEMPLATE the chat template it is served with
//   (also served: "glm", scripted to answer with one GLM-format get_weather call; see
//   scripted_model.h)
//   OPENAI_MODULES     folder whose node_modules holds the openai package
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { countTokens, renderChat } from './tiny_tokens.mjs';

const { default: OpenAI } = await import(
  pathToFileURL(path.join(process.env.OPENAI_MODULES, 'node_modules', 'openai', 'index.mjs')).href);

const baseURL = `${process.env.TOKENMILL_URL}/v1`;
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
const MODEL = 'tiny';


async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' } },
      required: ['city', 'days'],
      additionalProperties: false,
    },
  },
};

test('models list the served models', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL, 'glm']);
  const one = await client.models.retrieve(MODEL);
  assert.equal(one.id, MODEL);
});

test('chat completion: shape and usage equal to the tokenizer counts', async () => {
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there, café ☕' }];
  const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 12, temperature: 0.7, seed: 5, logprobs: true, top_logprobs: 2 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL);
  assert.equal(r.choices.length, 1);
  const c = r.choices[0];
  assert.equal(c.message.role, 'assistant');
  assert.ok(['stop', 'length'].includes(c.finish_reason));
  assert.equal(r.usage.prompt_tokens, countTokens(renderChat(messages)));
  // One logprobs entry per generated token.
  assert.equal(r.usage.completion_tokens, c.logprobs.content.length);
  if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
  // The template opens <think>: everything generated before a </think> is reasoning.
  assert.equal(r.usage.completion_tokens_details.reasoning_tokens, r.usage.completion_tokens);
  assert.equal(typeof c.message.reasoning_content, 'string');
  for (const t of c.logprobs.content) {
    assert.equal(t.top_logprobs.length, 2);
    assert.ok(t.logprob <= 0);
  }
});

test('thinking off: output is content, no reasoning tokens', async () => {
  const messages = [{ role: 'user', content: 'hi' }];
  const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 6, chat_template_kwargs: { enable_thinking: false } });
  assert.equal(r.usage.completion_tokens_details.reasoning_tokens, 0);
  assert.equal(r.usage.prompt_tokens, countTokens(renderChat(messages, { enable_thinking: false })));
  assert.equal(typeof r.choices[0].message.content, 'string');
});

test('streaming chat equals the non-streaming answer, with usage last', async () => {
  const params = { model: MODEL, messages: [{ role: 'user', content: 'stream me' }], max_tokens: 20, temperature: 0,
    chat_template_kwargs: { enable_thinking: false } };
  const whole = await client.chat.completions.create(params);
  const chunks = await collect(await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } }));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  let text = '';
  let finish = null;
  for (const ch of chunks.slice(0, -1)) {
    assert.equal(ch.object, 'chat.completion.chunk');
    assert.equal(ch.id, chunks[0].id);
    text += ch.choices[0].delta.content ?? '';
    finish = ch.choices[0].finish_reason ?? finish;
  }
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  // The same prompt again: only the prefix-cache hit differs.
  assert.deepEqual({ ...last.usage, prompt_tokens_details: null }, { ...whole.usage, prompt_tokens_details: null });
  assert.ok(last.usage.prompt_tokens_details.cached_tokens > 0);
});

test('completions, plain and streamed, count the prompt as the tokenizer does', async () => {
  const prompt = 'Once upon a time, in a land far away,';
  const r = await client.completions.create({ model: MODEL, prompt, max_tokens: 10, temperature: 0, logprobs: 1 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.usage.prompt_tokens, countTokens(prompt));
  assert.equal(r.usage.completion_tokens, r.choices[0].logprobs.tokens.length);
  const chunks = await collect(await client.completions.create({ model: MODEL, prompt, max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true } }));
  const text = chunks.map((c) => c.choices[0]?.text ?? '').join('');
  assert.equal(text, r.choices[0].text);
  assert.equal(chunks.at(-1).usage.completion_tokens, r.usage.completion_tokens);
  const echoed = await client.completions.create({ model: MODEL, prompt, max_tokens: 3, echo: true });
  assert.ok(echoed.choices[0].text.startsWith(prompt));
});

test('n choices, seeds and stop sequences', async () => {
  const base = { model: MODEL, messages: [{ role: 'user', content: 'pick' }], max_tokens: 8, temperature: 1, seed: 42 };
  const a = await client.chat.completions.create({ ...base, n: 2 });
  assert.equal(a.choices.length, 2);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1]);
  const b = await client.chat.completions.create({ ...base, n: 2 });
  assert.deepEqual(b.choices.map((c) => c.message.reasoning_content), a.choices.map((c) => c.message.reasoning_content));
  // A stop sequence taken from the greedy output ends it there.
  const greedy = await client.completions.create({ model: MODEL, prompt: 'abc', max_tokens: 16, temperature: 0 });
  const text = greedy.choices[0].text;
  const stop = [...text].slice(3, 5).join('');
  if (stop.length && !stop.includes('\ufffd')) {
    const cut = await client.completions.create({ model: MODEL, prompt: 'abc', max_tokens: 16, temperature: 0, stop: [stop] });
    assert.equal(cut.choices[0].text, text.slice(0, text.indexOf(stop)));
    assert.equal(cut.choices[0].finish_reason, 'stop');
  }
});

test('tool calls round-trip', async () => {
  const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const r = await client.chat.completions.create({ model: MODEL, messages, tools: [weatherTool],
    tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 60 });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.tool_calls.length, 1);
  const call = c.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  const args = JSON.parse(call.function.arguments);
  assert.equal(typeof args.city, 'string');
  assert.ok(Number.isInteger(args.days));
  // The call and its result go back; the model answers.
  const followUp = [...messages, c.message, { role: 'tool', tool_call_id: call.id, content: '{"temp": 21}' }];
  const r2 = await client.chat.completions.create({ model: MODEL, messages: followUp, tools: [weatherTool], max_tokens: 8 });
  assert.ok(['stop', 'length', 'tool_calls'].includes(r2.choices[0].finish_reason));
  assert.equal(r2.usage.prompt_tokens, countTokens(renderChat(
    [...messages, { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: 'get_weather', arguments: args } }] },
      followUp[2]], { tools: [weatherTool] })));
  // tool_choice required, streamed: the call arrives whole in one delta.
  const chunks = await collect(await client.chat.completions.create({ model: MODEL, messages, tools: [weatherTool], tool_choice: 'required', max_tokens: 80, stream: true }));
  const calls = chunks.flatMap((ch) => ch.choices[0]?.delta?.tool_calls ?? []);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].function.name, 'get_weather');
  assert.equal(typeof JSON.parse(calls[0].function.arguments).city, 'string');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
});

test('a tool call in the model\'s format streams its arguments in pieces that add up to the message\'s', async () => {
  const params = { model: 'glm', messages: [{ role: 'user', content: 'Weather?' }], tools: [weatherTool], max_tokens: 64, temperature: 0 };
  const whole = await client.chat.completions.create(params);
  const call = whole.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, 'get_weather');
  assert.equal(call.function.arguments, '{"city":"San Francisco by the bay","days":14}');
  assert.equal(whole.choices[0].finish_reason, 'tool_calls');
  const pieces = (await collect(await client.chat.completions.create({ ...params, stream: true })))
    .flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  assert.ok(pieces.length > 5, JSON.stringify(pieces));
  assert.ok(pieces[0].id.startsWith('call_'));
  assert.equal(pieces[0].function.name, 'get_weather');
  for (const p of pieces.slice(1)) assert.deepEqual(Object.keys(p).sort(), ['function', 'index'], JSON.stringify(p));
  assert.equal(pieces.map((p) => p.function.arguments).join(''), call.function.arguments);
});

test('json_schema output validates; json_object gives an object', async () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string' },
      age: { type: 'integer' },
      mood: { enum: ['happy', 'sad'] },
      tags: { type: 'array', items: { type: 'string' } },
    },
    required: ['name', 'age', 'mood', 'tags'],
    additionalProperties: false,
  };
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'a person' }], max_tokens: 120, seed,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } } });
    const doc = JSON.parse(r.choices[0].message.content);
    assert.deepEqual(Object.keys(doc).sort(), ['age', 'mood', 'name', 'tags']);
    assert.equal(typeof doc.name, 'string');
    assert.ok(Number.isInteger(doc.age));
    assert.ok(['happy', 'sad'].includes(doc.mood));
    assert.ok(Array.isArray(doc.tags) && doc.tags.every((t) => typeof t === 'string'));
  }
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'json' }], max_tokens: 40, response_format: { type: 'json_object' } });
  const doc = JSON.parse(r.choices[0].message.content);
  assert.equal(typeof doc, 'object');
  assert.ok(!Array.isArray(doc) && doc !== null);
});

test('errors surface as SDK exceptions with OpenAI status codes', async () => {
  const messages = [{ role: 'user', content: 'x' }];
  const expectError = async (fn, Type, status, check = () => {}) => {
    await assert.rejects(fn, (e) => {
      assert.ok(e instanceof Type, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, status);
      check(e);
      return true;
    });
  };
  await expectError(() => client.chat.completions.create({ model: 'no-such-model', messages }), OpenAI.NotFoundError, 404,
    (e) => assert.equal(e.code, 'model_not_found'));
  await expectError(() => client.chat.completions.create({ model: MODEL, messages, temperature: 3 }), OpenAI.BadRequestError, 400,
    (e) => assert.equal(e.param, 'temperature'));
  await expectError(() => client.chat.completions.create({ model: MODEL, messages: [] }), OpenAI.BadRequestError, 400);
  await expectError(() => client.chat.completions.create({ model: MODEL, messages, max_tokens: 100000 }), OpenAI.BadRequestError, 400,
    (e) => assert.equal(e.code, 'context_length_exceeded'));
  await expectError(() => client.chat.completions.create({ model: MODEL, messages, top_logprobs: 3 }), OpenAI.BadRequestError, 400);
  await expectError(() => client.chat.completions.create({ model: MODEL, messages, tool_choice: 'required' }), OpenAI.BadRequestError, 400);
  await expectError(() => client.chat.completions.create({ model: MODEL, messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '^a' } } } }),
    OpenAI.BadRequestError, 400);
  await expectError(() => client.completions.create({ model: MODEL, prompt: 'x'.repeat(9 << 20) }), OpenAI.APIError, 413);
  // Not through the SDK, which always sends valid JSON.
  const bad = await fetch(`${baseURL}/chat/completions`, { method: 'POST', body: '{"model": ', headers: { 'content-type': 'application/json' } });
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.type, 'invalid_request_error');
});

test('a shared 1000-token prefix is reported as cached tokens, only within one cache_salt', async () => {
  const prefix = 'The quick brown fox jumps over the lazy dog. '.repeat(23);  // 1035 bytes, one token each
  const ask = async (suffix, salt) => {
    const started = performance.now();
    const chunks = await collect(await client.completions.create({ model: MODEL, prompt: prefix + suffix, max_tokens: 4, stream: true,
      stream_options: { include_usage: true }, cache_salt: salt }));
    return { usage: chunks.at(-1).usage, ms: performance.now() - started };
  };
  const first = await ask('First question?', 'tenant-a');
  const second = await ask('Second question!', 'tenant-a');
  const other = await ask('Second question!', 'tenant-b');
  assert.ok(first.usage.prompt_tokens > 1000);
  assert.ok(second.usage.prompt_tokens_details.cached_tokens >= 1000, JSON.stringify(second.usage));
  assert.ok(second.usage.prompt_tokens_details.cached_tokens < second.usage.prompt_tokens);
  assert.equal(other.usage.prompt_tokens_details.cached_tokens, 0);
});

test('a client that goes away cancels its generation', async () => {
  const metric = async (name) => {
    const text = await (await fetch(`${process.env.TOKENMILL_URL}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{model="${MODEL}"}`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };
  const before = await metric('tokenmill_client_disconnects_total');
  const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'go on' }], max_tokens: 1500, stream: true, ignore_eos: true });
  let seen = 0;
  for await (const chunk of stream) {
    if (++seen === 3) break;  // leaving the loop aborts the request
  }
  for (let i = 0; i < 100 && (await metric('tokenmill_client_disconnects_total')) === before; ++i) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await metric('tokenmill_client_disconnects_total'), before + 1);
  assert.equal(await metric('tokenmill_running_sequences'), 0);
});
