// Renders chat templates with @huggingface/jinja, the reference that tokenmill's Jinja engine is
// compared with byte for byte (tests/tokenizer/chat_template_conformance_test.cpp).
//
//   node render_chat_templates.mjs MODULES_DIR CORPUS.json OUT.json TEMPLATE.jinja...
//
// MODULES_DIR is the folder that holds node_modules/@huggingface/jinja (the test's build folder
// or $TOKENMILL_JINJA_MODULES). Each template is rendered over every case of the corpus; OUT.json
// gets one record per (template, case): the output, or the error the reference raised.
// strftime_now must be deterministic, so the clock is frozen at the corpus's "now", in UTC.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";

const [modulesDir, corpusPath, outPath, ...templatePaths] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node render_chat_templates.mjs MODULES_DIR CORPUS.json OUT.json TEMPLATE...");
  process.exit(2);
}
const require = createRequire(modulesDir.replace(/\/?$/, "/"));
const { Template } = require("@huggingface/jinja");
const packageDir = require.resolve("@huggingface/jinja").replace(/dist\/[^/]*$/, "");
const version = JSON.parse(readFileSync(`${packageDir}package.json`, "utf8")).version;

const corpus = JSON.parse(readFileSync(corpusPath, "utf8"));
process.env.TZ = "UTC";
const frozen = Date.parse(corpus.now);
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length ? args : [frozen]));
  }
  static now() {
    return frozen;
  }
};

// A case's input with the corpus defaults filled in and "$tools" replaced by the shared tools.
function resolveInput(input) {
  const vars = { ...corpus.defaults, ...input };
  if (vars.tools === "$tools") vars.tools = corpus.tools;
  return vars;
}

const results = [];
for (const path of templatePaths) {
  const name = basename(path);
  let template;
  try {
    template = new Template(readFileSync(path, "utf8"));
  } catch (e) {
    for (const c of corpus.cases) results.push({ template: name, case: c.name, ok: false, error: `parse: ${e.message}` });
    continue;
  }
  for (const c of corpus.cases) {
    try {
      results.push({ template: name, case: c.name, ok: true, output: template.render(resolveInput(c.input)) });
    } catch (e) {
      results.push({ template: name, case: c.name, ok: false, error: e.message });
    }
  }
}
writeFileSync(outPath, JSON.stringify({ reference: `@huggingface/jinja@${version}`, results }, null, 1));
