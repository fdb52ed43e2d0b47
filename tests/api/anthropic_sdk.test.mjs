// The official @anthropic-ai/sdk, unchanged, against a running `tokenmill serve` (started by
// server_test.cpp with --model-alias 'claude-*=tiny'). Environment as openai_sdk.test.mjs, plus
//   ANTHROPIC_MODULES  folder whose node_modules holds @anthropic-ai/sdk
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { countTokens, renderChat } from './tiny_tokens.mjs';

const { default: Anthropic } = await import(
  pathToFileURL(path.join(process.env.ANTHROPIC_MODULES, 'node_modules', '@anthropic-ai', 'sdk', 'index.mjs')).href);

const client = new Anthropic({ baseURL: process.env.TOKENMILL_URL, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
// The GLM coding plan's prefix for the same API.
const glmClient = new Anthropic({ baseURL: `${process.env.TOKENMILL_URL}/api/anthropic`, apiKey: 'unused', maxRetries: 0 });
const MODEL = 'claude-tokenmill-test';  // mapped to the served model "tiny"


const weatherTool = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string' }, days: { type: 'integer' } },
    required: ['city', 'days'],
    additionalProperties: false,
  },
};

const usageKeys = ['input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens', 'output_tokens'];

test('message: shape, model alias, usage equal to the tokenizer counts, count_tokens agrees', async () => {
  const params = { model: MODEL, max_tokens: 10, system: 'Be brief.', messages: [{ role: 'user', content: 'Hello there' }],
    metadata: { user_id: 'user-123456' }, temperature: 0.5 };
  const m = await client.messages.create(params);
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.match(m.id, /^msg_/);
  assert.equal(m.model, 'tiny');
  assert.equal(m.content.length, 1);
  assert.equal(m.content[0].type, 'text');
  assert.equal(typeof m.content[0].text, 'string');
  assert.ok(['end_turn', 'max_tokens'].includes(m.stop_reason), m.stop_reason);
  assert.equal(m.stop_sequence, null);
  assert.deepEqual(Object.keys(m.usage), usageKeys);
  const prompt = countTokens(renderChat([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }],
    { enable_thinking: false }));
  assert.equal(m.usage.input_tokens + m.usage.cache_read_input_tokens, prompt);
  assert.ok(m.usage.output_tokens >= 1 && m.usage.output_tokens <= 10);
  if (m.stop_reason === 'max_tokens') assert.equal(m.usage.output_tokens, 10);
  const { max_tokens, metadata, temperature, ...countParams } = params;
  const counted = await client.messages.countTokens(countParams);
  assert.deepEqual(counted, { input_tokens: prompt });
});

test('streaming: the full event sequence, text equal to the non-streaming answer', async () => {
  const params = { model: MODEL, max_tokens: 16, temperature: 0, messages: [{ role: 'user', content: 'stream me' }] };
  const whole = await client.messages.create(params);
  const events = [];
  for await (const e of await client.messages.create({ ...params, stream: true })) events.push(e);
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
  assert.equal(types.at(-2), 'message_delta');
  assert.equal(types.at(-3), 'content_block_stop');
  assert.equal(types[1], 'content_block_start');  // the SDK drops pings
  assert.deepEqual(events[0].message.content, []);
  assert.equal(events[0].message.stop_reason, null);
  assert.equal(events[0].message.usage.output_tokens, 0);
  assert.equal(events[1].index, 0);
  assert.deepEqual(events[1].content_block, { type: 'text', text: '' });
  let text = '';
  for (const e of events.slice(2, -3)) {
    assert.equal(e.type, 'content_block_delta');
    assert.equal(e.delta.type, 'text_delta');
    text += e.delta.text;
  }
  assert.equal(text, whole.content[0].text);
  const delta = events.at(-2);
  assert.equal(delta.delta.stop_reason, whole.stop_reason);
  assert.equal(delta.usage.output_tokens, whole.usage.output_tokens);
  // The same prompt again: its prefix comes from the cache.
  assert.equal(delta.usage.input_tokens + delta.usage.cache_read_input_tokens,
    whole.usage.input_tokens + whole.usage.cache_read_input_tokens);
  assert.ok(delta.usage.cache_read_input_tokens > 0);
});

test('the raw stream has event: lines matching each data type, and a ping', async () => {
  const res = await fetch(`${process.env.TOKENMILL_URL}/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'unused', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: MODEL, max_tokens: 4, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const frames = (await res.text()).split('\n\n').filter((f) => f.length);
  const names = [];
  for (const f of frames) {
    const [eventLine, dataLine] = f.split('\n');
    const name = eventLine.slice('event: '.length);
    assert.equal(JSON.parse(dataLine.slice('data: '.length)).type, name);
    names.push(name);
  }
  assert.deepEqual(names.slice(0, 3), ['message_start', 'ping', 'content_block_start']);
  assert.deepEqual(names.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
});

test('thinking enabled: thinking blocks, streamed as thinking_delta; the SDK accumulates them', async () => {
  const params = { model: MODEL, max_tokens: 12, thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: 'think' }] };
  const m = await client.messages.create(params);
  // The tiny model's template opens <think>: all it writes is reasoning.
  assert.equal(m.content[0].type, 'thinking');
  assert.equal(typeof m.content[0].thinking, 'string');
  assert.equal(typeof m.content[0].signature, 'string');
  const stream = client.messages.stream(params);
  const deltas = [];
  stream.on('streamEvent', (e) => { if (e.type === 'content_block_delta') deltas.push(e.delta.type); });
  const final = await stream.finalMessage();
  assert.equal(final.content[0].type, 'thinking');
  assert.ok(deltas.includes('thinking_delta'));
  assert.equal(deltas.at(-1), 'signature_delta');
  assert.equal(final.usage.output_tokens, 12);
});

test('tools: a forced tool call is a tool_use block, streamed as input_json_delta', async () => {
  const params = { model: MODEL, max_tokens: 64, tools: [weatherTool], tool_choice: { type: 'tool', name: 'get_weather' },
    messages: [{ role: 'user', content: 'Weather in Paris?' }] };
  const m = await client.messages.create(params);
  assert.equal(m.stop_reason, 'tool_use');
  const use = m.content.find((b) => b.type === 'tool_use');
  assert.ok(use, JSON.stringify(m.content));
  assert.equal(use.name, 'get_weather');
  assert.equal(typeof use.id, 'string');
  assert.equal(typeof use.input.city, 'string');
  assert.ok(Number.isInteger(use.input.days));
  const stream = client.messages.stream(params);
  const kinds = [];
  stream.on('streamEvent', (e) => { if (e.type === 'content_block_delta') kinds.push(e.delta.type); });
  const final = await stream.finalMessage();
  assert.ok(kinds.includes('input_json_delta'));
  const streamed = final.content.find((b) => b.type === 'tool_use');
  assert.equal(typeof streamed.input.city, 'string');
  assert.equal(final.stop_reason, 'tool_use');

  // The result goes back as a tool_result block.
  const next = await client.messages.create({ model: MODEL, max_tokens: 4, tools: [weatherTool], messages: [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: use.id, name: 'get_weather', input: use.input }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: [{ type: 'text', text: 'Sunny, 21C' }] }] },
  ] });
  assert.equal(next.type, 'message');
  assert.ok(next.usage.input_tokens > 0);
});

test('tools: a tool call in the model\'s format streams as input_json_delta pieces', async () => {
  // "glm" is scripted to answer with one GLM-format get_weather call (scripted_model.h).
  const params = { model: 'glm', max_tokens: 64, temperature: 0, tools: [weatherTool], messages: [{ role: 'user', content: 'Weather?' }] };
  const input = { city: 'San Francisco by the bay', days: 14 };
  const m = await client.messages.create(params);
  assert.deepEqual(m.content.find((b) => b.type === 'tool_use').input, input);
  const stream = client.messages.stream(params);
  const partial = [];
  stream.on('streamEvent', (e) => { if (e.type === 'content_block_delta' && e.delta.type === 'input_json_delta') partial.push(e.delta.partial_json); });
  const final = await stream.finalMessage();
  assert.ok(partial.length > 5, JSON.stringify(partial));
  assert.equal(partial.join(''), JSON.stringify(input));
  const use = final.content.find((b) => b.type === 'tool_use');
  assert.equal(use.name, 'get_weather');
  assert.deepEqual(use.input, input);
  assert.equal(final.stop_reason, 'tool_use');
});

test('stop_sequences: the answer ends before the first one met; stop_reason and stop_sequence say which', async () => {
  const params = { model: MODEL, max_tokens: 24, temperature: 0, messages: [{ role: 'user', content: 'say something' }] };
  const whole = (await client.messages.create(params)).content[0].text;
  // A stop sequence the greedy answer contains (a printable character after its start), and
  // one it does not, listed first.
  const at = [...whole].findIndex((c, i) => i > 0 && /[!-~]/.test(c));
  assert.ok(at > 0, `the tiny model's answer has no printable character to stop on: ${JSON.stringify(whole)}`);
  const stop = [...whole][at];
  const expected = whole.slice(0, whole.indexOf(stop));
  const stopSequences = ['\u0001never\u0002', stop];
  const m = await client.messages.create({ ...params, stop_sequences: stopSequences, metadata: { user_id: 'user-7' } });
  assert.equal(m.stop_reason, 'stop_sequence');
  assert.equal(m.stop_sequence, stop);
  assert.equal(m.content[0].text, expected);

  const stream = client.messages.stream({ ...params, stop_sequences: stopSequences });
  let delta;
  stream.on('streamEvent', (e) => { if (e.type === 'message_delta') delta = e.delta; });
  const final = await stream.finalMessage();
  assert.deepEqual(delta, { stop_reason: 'stop_sequence', stop_sequence: stop });
  assert.equal(final.stop_sequence, stop);
  assert.equal(final.content[0].text, expected);

  // Not met: the usual stop reasons, and stop_sequence null.
  const none = await client.messages.create({ ...params, stop_sequences: ['\u0001never\u0002'] });
  assert.ok(['end_turn', 'max_tokens'].includes(none.stop_reason), none.stop_reason);
  assert.equal(none.stop_sequence, null);
  assert.equal(none.content[0].text, whole);
});

test('the GLM coding plan prefix /api/anthropic serves the same API', async () => {
  const m = await glmClient.messages.create({ model: MODEL, max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(m.type, 'message');
});

test('errors are Anthropic-shaped with their status codes', async () => {
  await assert.rejects(client.messages.create({ model: 'gpt-unknown', max_tokens: 4, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.NotFoundError && e.status === 404 && e.error.type === 'error' && e.error.error.type === 'not_found_error');
  await assert.rejects(client.messages.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.BadRequestError && e.error.error.type === 'invalid_request_error' && /max_tokens/.test(e.error.error.message));
  await assert.rejects(client.messages.create({ model: MODEL, max_tokens: 4, messages: [{ role: 'user', content: [{ type: 'image', source: {} }] }] }),
    (e) => e instanceof Anthropic.BadRequestError && /image/.test(e.error.error.message));
  await assert.rejects(client.messages.create({ model: MODEL, max_tokens: 4, thinking: { type: 'enabled' }, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.BadRequestError && /budget_tokens/.test(e.error.error.message));
});
