// The template engine feature by feature, with expected outputs as Python Jinja2 (the way
// Hugging Face renders chat templates: trim_blocks, lstrip_blocks, loop controls, tojson as
// json.dumps) gives them — except that None prints as nothing and lists and dicts as JSON, as
// in @huggingface/jinja (docs/chat-templates.md). Errors must name the template line and column.
#include <gtest/gtest.h>

#include "tokenizer/jinja_error.h"
#include "tokenizer/jinja_template.h"

namespace tokenmill::jinja {
namespace {

using nlohmann::ordered_json;

std::string render(const std::string& source, const std::string& variables = "{}") {
  std::tm now{};
  now.tm_year = 2024 - 1900;
  now.tm_mon = 6;
  now.tm_mday = 26;
  now.tm_hour = 10;
  now.tm_min = 30;
  RenderOptions options;
  options.now = now;
  return Template(source).render(ordered_json::parse(variables), options);
}

struct Case {
  const char* source;
  const char* variables;
  const char* expected;
};

void check_all(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.source);
    try {
      EXPECT_EQ(render(c.source, c.variables), c.expected);
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

TEST(Jinja, WhitespaceControlTrimAndLstripBlocks) {
  check_all({
      {"a\n  {% if true %}\n  b\n  {% endif %}\nc", "{}", "a\n  b\nc"},
      {"{{ 'x' }}\ny", "{}", "x\ny"},
      {"a  {{- 'b' -}}  c", "{}", "abc"},
      {"a {%- if true %} b {% endif -%}  c", "{}", "a b c"},
      {"a {#- comment -#} b", "{}", "ab"},
      {"{# one #}\nline\n", "{}", "line"},
      {"  {{ 'expr lines keep indentation' }}", "{}", "  expr lines keep indentation"},
  });
}

TEST(Jinja, LoopsAndLoopVariables) {
  check_all({
      {"{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}",
       R"({"xs": ["a", "b"]})", "102TrueFalse2|211FalseTrue2|"},
      {"{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
       R"({"xs": [1, 2, 3, 4, 5]})", "13"},
      {"{% for x in xs if x is odd %}{{ x }}{% else %}none{% endfor %}", R"({"xs": [2, 4]})", "none"},
      {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", R"({"d": {"b": 1, "a": 2}})", "b=1;a=2;"},
      {"{% for k in d %}{{ k }}{% endfor %}", R"({"d": {"x": 1, "y": 2}})", "xy"},
      {"{% for x in xs %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}", R"({"xs": [1, 2, 3]})", "-2,1-3,2-,"},
      {"{% for x in missing %}never{% endfor %}done", "{}", "done"},
      {"{% for x in xs %}{{ loop.cycle('odd', 'even') }}{% endfor %}", R"({"xs": [1, 2, 3]})", "oddevenodd"},
  });
}

TEST(Jinja, ScopingNamespaceAndSetBlocks) {
  check_all({
      {"{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", "{}", "1"},
      {"{% set ns = namespace(n=0) %}{% for i in [1, 2, 3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", "{}", "6"},
      {"{% set block %}Hello {{ name }}{% endset %}[{{ block }}]", R"({"name": "Ann"})", "[Hello Ann]"},
      {"{% set a, b = [1, 2] %}{{ b }}{{ a }}", "{}", "21"},
  });
}

TEST(Jinja, MacrosAndCallingStringMethodsOnTheirResults) {
  check_all({
      {"{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bo') }} {{ greet('Al', punct='?') }}",
       "{}", "Hi Bo! Hi Al?"},
      {"{% macro text(c) %}  {{ c }}\n{% endmacro %}[{{ text('x').strip() }}] {{ text('abc</think>').endswith('</think>\\n') }}",
       "{}", "[x] True"},
      {"{% macro m() %}{{ varargs|length }}{{ kwargs.k }}{% endmacro %}{{ m(1, 2, k='v') }}", "{}", "2v"},
      {"{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}body{% endcall %}", "{}", "<body>"},
  });
}

TEST(Jinja, Tests) {
  check_all({
      {"{{ s is string }}{{ n is string }}{{ d is mapping }}{{ l is mapping }}{{ l is iterable }}{{ s is iterable }}", R"({"s": "a", "n": 1, "d": {}, "l": []})",
       "TrueFalseTrueFalseTrueTrue"},
      {"{{ x is defined }}{{ y is defined }}{{ y is undefined }}{{ z is none }}{{ x is not none }}", R"({"x": 1, "z": null})",
       "TrueFalseTrueTrueTrue"},
      {"{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 1 is number }}{{ 1.5 is float }}{{ true is boolean }}", "{}",
       "TrueTrueTrueTrueTrueTrue"},
      {"{{ 'a' is in ['a'] }}{{ 2 is eq 2 }}{{ f is callable }}", R"({})", "TrueTrueFalse"},
  });
}

TEST(Jinja, Filters) {
  check_all({
      {"{{ xs|length }} {{ 'héllo'|length }} {{ d|length }}", R"({"xs": [1, 2], "d": {"a": 1}})", "2 5 1"},
      {"[{{ '  pad  '|trim }}] {{ 'abc'|upper }} {{ 'ABC'|lower }} {{ 'hello world'|title }} {{ 'hELLO'|capitalize }}", "{}",
       "[pad] ABC abc Hello World Hello"},
      {"{{ xs|join(', ') }}|{{ xs|first }}|{{ xs|last }}|{{ xs|reverse|join }}", R"({"xs": ["a", "b", "c"]})", "a, b, c|a|c|cba"},
      {"{{ missing|default('dflt') }} {{ ''|default('e', true) }} {{ 0|default(5) }}", "{}", "dflt e 0"},
      {"{{ 'a-b-a'|replace('a', 'x') }} {{ 'a-b-a'.replace('a', 'x', 1) }}", "{}", "x-b-x x-b-a"},
      {"{{ users|selectattr('admin')|map(attribute='name')|join(',') }}|{{ users|rejectattr('admin')|map(attribute='name')|list }}",
       R"({"users": [{"name": "a", "admin": true}, {"name": "b", "admin": false}]})", "a|[\"b\"]"},
      {"{{ tools|selectattr('type', 'equalto', 'function')|list|length }}", R"({"tools": [{"type": "function"}, {"type": "x"}]})", "1"},
      {"{{ [3, 1, 2]|sort|join }}{{ ['b', 'A', 'c']|sort|join }}{{ [1, 2, 1]|unique|join }}{{ [4, 9]|max }}{{ [4, 9]|min }}", "{}",
       "123Abc1294"},
      {"{% for k, v in d|dictsort %}{{ k }}{{ v }}{% endfor %}|{{ d|items|list|length }}", R"({"d": {"b": 2, "a": 1}})", "a1b2|2"},
      {"{{ '3'|int + 1 }} {{ 'x'|int(7) }} {{ '2.5'|float }} {{ 7|string ~ '!' }} {{ -3|abs }}", "{}", "4 7 2.5 7! 3"},
      {"{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}", "{}", "a\n  b\n\n  c|  a\n  b"},
      {"{{ d|string }} {{ none|string }} {{ [true, none]|string }}", R"({"d": {"k": "v", "n": 1}})", "{'k': 'v', 'n': 1} None [True, None]"},
      {"{{ none|selectattr('type', 'equalto', 'x')|list|length }}{{ none|map(attribute='a')|list|length }}", "{}", "00"},
      {"{{ ['a', 'b']|map('upper')|join }}{{ [1, 2, 3]|select('odd')|join }}{{ [1, 2, 3]|reject('odd')|join }}", "{}", "AB132"},
  });
}

TEST(Jinja, ToJsonIsPythonJsonDumps) {
  check_all({
      {"{{ v|tojson }}", R"({"v": {"b": 1, "a": [true, null, 1.5, "x"]}})", R"({"b": 1, "a": [true, null, 1.5, "x"]})"},
      {"{{ v|tojson(indent=2) }}", R"({"v": {"a": [1, 2], "e": {}, "l": []}})", "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"e\": {},\n  \"l\": []\n}"},
      {"{{ v|tojson }}|{{ v|tojson(ensure_ascii=True) }}", R"({"v": "é😀\"\\\n"})", "\"é😀\\\"\\\\\\n\"|\"\\u00e9\\ud83d\\ude00\\\"\\\\\\n\""},
      {"{{ v|tojson(separators=(',', ':'), sort_keys=True) }}", R"({"v": {"b": 1, "a": 2}})", R"({"a":2,"b":1})"},
      {"{{ a|tojson }} {{ b|tojson }} {{ c|tojson }} {{ d|tojson }} {{ b }}", R"({"a": 2.0, "b": 1e-7, "c": 0.1, "d": 1e16})",
       "2.0 1e-07 0.1 1e+16 1e-07"},
  });
}

TEST(Jinja, StringListAndDictMethods) {
  check_all({
      {"{{ s.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}", R"({"s": "<think>\nwhy \n</think>ans"})", "why "},
      {"{{ s.split()|join('|') }} {{ s.split(' ', 1)|join('|') }}", R"({"s": " a  b c "})", "a|b|c |a  b c "},
      {"{{ s.startswith('ab') }}{{ s.endswith(('x', 'cd')) }}{{ s.find('c') }}{{ s.count('b') }}{{ s.upper() }}", R"({"s": "abcd"})",
       "TrueTrue21ABCD"},
      {"[{{ '\\u3000 x\\u00a0'.strip() }}][{{ 'é\\n'.rstrip() }}][{{ 'aé'.rstrip('é') }}]", "{}", "[x][é][a]"},
      {"{{ '{} and {name}'.format(1, name='x') }} {{ '-'.join(['a', 'b']) }} {{ 'xxhixx'.strip('x') }}", "{}", "1 and x a-b hi"},
      {"{{ d.get('a') }}{{ d.get('z', 'dz') }}{{ d.keys()|list|join }}{{ d['a'] }}{{ d.a }}", R"({"d": {"a": 1, "b": 2}})", "1dzab11"},
      {"{% set l = [1] %}{% set _ = l.append(2) %}{{ l|join }}{{ l.pop() }}{{ l|join }}", "{}", "1221"},
  });
}

TEST(Jinja, SlicingAndIndexing) {
  check_all({
      {"{{ xs[1:]|join }}{{ xs[:-1]|join }}{{ xs[::-1]|join }}{{ xs[-1] }}{{ xs[::2]|join }}", R"({"xs": [1, 2, 3, 4]})", "2341234321413"},
      {"{{ s[1:3] }}{{ s[-1] }}{{ s[::-1] }}", R"({"s": "héllo"})", "éloolléh"},
      {"{{ messages[0].content }}{{ messages[5] is defined }}", R"({"messages": [{"content": "c"}]})", "cFalse"},
  });
}

TEST(Jinja, ExpressionsAndOperators) {
  check_all({
      {"{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 3 }} {{ 'ab' * 2 }}", "{}", "3 -4 1 2 3.5 8 abab"},
      {"{{ 'a' ~ 1 ~ none }} {{ [1] + [2] }} {{ 'x' in 'xyz' }} {{ 3 not in [1, 2] }} {{ 'k' in {'k': 1} }}", "{}", "a1 [1, 2] True True True"},
      {"{{ 'yes' if x else 'no' }} {{ x and 'a' or 'b' }} {{ not x }}", R"({"x": 0})", "no b True"},
      {"{{ 1 == 1.0 }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ none == none }} {{ 1 < 2 < 3 }}", "{}", "True True True True True"},
      {"{{ range(3)|join }} {{ range(1, 7, 2)|join }} {{ (1, 2)|length }} {{ {'a': 1}['a'] }}", "{}", "012 135 2 1"},
      {"{{ \"it's\" ~ 'a \\'q\\'' ~ '\\u00e9\\x41' }}", "{}", "it'sa 'q'éA"},
  });
}

TEST(Jinja, UndefinedBehavesAsInJinja) {
  check_all({
      {"[{{ missing }}][{{ missing.attr }}][{{ d.missing }}][{{ missing|length }}]", R"({"d": {}})", "[][][][0]"},
      {"{% if missing %}a{% elif d %}b{% else %}c{% endif %}", R"({"d": {}})", "c"},
      {"{{ x }}", R"({"x": null})", ""},
  });
}

TEST(Jinja, GlobalsRaiseExceptionAndStrftime) {
  check_all({
      {"{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M') }}", "{}", "26 Jul 2024 2024-07-26 10:30"},
      {"{{ dict(a=1)|tojson }} {{ bos_token }}", R"({"bos_token": "<s>"})", "{\"a\": 1} <s>"},
  });
  try {
    render("line one\n{{ raise_exception('Roles must alternate') }}");
    FAIL() << "raise_exception did not raise";
  } catch (const TemplateError& e) {
    EXPECT_EQ(e.reason(), "Roles must alternate");
    EXPECT_EQ(e.line(), 2);
    EXPECT_EQ(e.column(), 4);
  }
}

TEST(Jinja, ErrorsNameLineAndColumn) {
  const struct {
    const char* source;
    int line, column;
    const char* message_part;
  } cases[] = {
      {"ok\n{% if x %}\nno end", 3, 7, "unclosed 'if'"},
      {"{{ 1 + }}", 1, 8, "unexpected '}}'"},
      {"a\n  {{ x | nosuchfilter }}", 2, 10, "unknown filter 'nosuchfilter'"},
      {"{% for x in 5 %}{% endfor %}", 1, 13, "not iterable"},
      {"{{ 'x' @ 1 }}", 1, 8, "unexpected character '@'"},
      {"{% frob %}", 1, 4, "unknown statement 'frob'"},
      {"{{ 'unterminated }}", 1, 4, "unterminated string"},
      {"{{ x.y() }}", 1, 4, "'y' is not callable"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.source);
    try {
      render(c.source);
      ADD_FAILURE() << "no error";
    } catch (const TemplateError& e) {
      EXPECT_EQ(e.line(), c.line) << e.what();
      EXPECT_EQ(e.column(), c.column) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.message_part), std::string::npos) << e.what();
    }
  }
}

TEST(Jinja, RunawayRecursionIsAnErrorNotACrash) {
  EXPECT_THROW(render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"), TemplateError);
}

}  // namespace
}  // namespace tokenmill::jinja

namespace tokenmill::jinja {
namespace {

// Every prefix of a realistic template either renders or fails with a located error: bad
// templates from GGUF files must never crash the server.
TEST(Jinja, TruncatedTemplatesFailCleanly) {
  const std::string source =
      "{%- macro text(c) -%}{%- if c is string -%}{{ c }}{%- else -%}{%- for p in c -%}{{ p.text }}{%- endfor -%}"
      "{%- endif -%}{%- endmacro -%}\n{% set ns = namespace(last=-1) %}{% for m in messages %}{% if m.role == 'user' %}"
      "{% set ns.last = loop.index0 %}{% endif %}{% endfor %}{% for m in messages %}<|{{ m.role }}|>{{ text(m.content).strip() }}"
      "{% if m.tool_calls %}{% for tc in m.tool_calls %}<tool_call>{{ tc.function.name }}{% for k, v in tc.function.arguments.items() %}"
      "<arg_key>{{ k }}</arg_key><arg_value>{{ v if v is string else v | tojson(ensure_ascii=False) }}</arg_value>{% endfor %}"
      "</tool_call>{% endfor %}{% endif %}{% endfor %}{{ '<|assistant|>' if add_generation_prompt else '' }}";
  const auto variables = ordered_json::parse(R"({"add_generation_prompt": true, "messages": [
      {"role": "user", "content": [{"type": "text", "text": "hi"}]},
      {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1, "b": "x"}}}]}]})");
  EXPECT_EQ(Template(source).render(variables),
            "<|user|>hi<|assistant|><tool_call>f<arg_key>a</arg_key><arg_value>1</arg_value><arg_key>b</arg_key>"
            "<arg_value>x</arg_value></tool_call><|assistant|>");
  int failures = 0;
  for (size_t n = 0; n < source.size(); ++n) {
    try {
      Template(source.substr(0, n)).render(variables);
    } catch (const TemplateError& e) {
      ++failures;
      EXPECT_GE(e.line(), 1);
    }
  }
  EXPECT_GT(failures, 0);
}

}  // namespace
}  // namespace tokenmill::jinja
