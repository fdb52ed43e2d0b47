// Token counts for the SDK tests, from the CLI, which shares the server's tokenizer and template
// engine. Environment: TOKENMILL_BIN, TOKENMILL_MODEL, TOKENMILL_TEMPLATE (see openai_sdk.test.mjs).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const scratch = mkdtempSync(path.join(tmpdir(), 'tokenmill-sdk-'));

export function countTokens(text) {
  const file = path.join(scratch, 'text.txt');
  writeFileSync(file, text);
  const out = execFileSync(process.env.TOKENMILL_BIN, ['tokenize', process.env.TOKENMILL_MODEL, '-f', file, '--json']);
  return JSON.parse(out.toString()).length;
}

export function renderChat(messages, extra = {}) {
  const file = path.join(scratch, 'conv.json');
  writeFileSync(file, JSON.stringify({ messages, add_generation_prompt: true, ...extra }));
  return execFileSync(process.env.TOKENMILL_BIN, ['chat-template', 'render', '--model', process.env.TOKENMILL_MODEL,
    '--chat-template', process.env.TOKENMILL_TEMPLATE, '--input', file]).toString();
}
