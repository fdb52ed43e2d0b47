// Constrained JSON decoding: the byte matcher accepts exactly the documents of its schema, its
// distance is the true shortest completion, and the scheduler with a json_constraint makes a
// random-weight model emit documents that parse and validate — within any token budget.
#include "engine/json_schema.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "common/random.h"
#include "engine/scheduler.h"
#include "model/model_files.h"

namespace tokenmill::engine {
namespace {

using Json = nlohmann::json;

// An independent validator for the supported subset, written from the JSON Schema spec.
bool validates(const Json& v, const Json& s, const Json& root) {
  if (s.is_boolean()) return s.get<bool>();
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"];
    return validates(v, ref == "#" ? root : root.at(Json::json_pointer(ref.substr(1))), root);
  }
  for (const char* k : {"anyOf", "oneOf"})
    if (s.contains(k)) {
      for (const Json& alt : s[k])
        if (validates(v, alt, root)) return true;
      return false;
    }
  if (s.contains("const")) return v == s["const"];
  if (s.contains("enum")) {
    for (const Json& e : s["enum"])
      if (v == e) return true;
    return false;
  }
  if (s.contains("type")) {
    const Json types = s["type"].is_array() ? s["type"] : Json::array({s["type"]});
    bool ok = false;
    for (const Json& t : types) {
      const std::string name = t;
      ok |= (name == "object" && v.is_object()) || (name == "array" && v.is_array()) ||
            (name == "string" && v.is_string()) || (name == "boolean" && v.is_boolean()) ||
            (name == "null" && v.is_null()) || (name == "number" && v.is_number()) ||
            (name == "integer" && v.is_number_integer());
    }
    if (!ok) return false;
  }
  if (v.is_object()) {
    for (const Json& r : s.value("required", Json::array()))
      if (!v.contains(r.get<std::string>())) return false;
    const Json props = s.value("properties", Json::object());
    for (const auto& [k, x] : v.items()) {
      if (props.contains(k)) {
        if (!validates(x, props[k], root)) return false;
      } else if (s.contains("additionalProperties") && !validates(x, s["additionalProperties"], root)) {
        return false;
      }
    }
  }
  if (v.is_array() && s.contains("items"))
    for (const Json& x : v)
      if (!validates(x, s["items"], root)) return false;
  return true;
}

bool feed(JsonMatcher& m, const std::string& text) {
  return m.feed(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

const Json kPerson = Json::parse(R"({
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": "integer"},
    "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "bc"]}},
    "score": {"type": ["number", "null"]}
  },
  "required": ["name", "age"],
  "additionalProperties": false
})");

TEST(JsonMatcher, AcceptsValidDocumentsAndRejectsInvalidOnes) {
  const auto schema = JsonSchema::compile(kPerson);
  for (const char* ok : {R"({"name":"x","age":3})", R"({ "age": -12, "name": "\u00e9\n" , "tags":["bc","a"]})",
                         R"({"name":"Zoë","age":0,"score":null})", R"({"score":1.5e-3,"age":7,"name":""})"}) {
    JsonMatcher m(schema);
    EXPECT_TRUE(feed(m, ok)) << ok;
    EXPECT_TRUE(m.complete()) << ok;
    EXPECT_EQ(m.distance(), 0) << ok;
  }
  for (const char* bad : {R"({"name":"x"})",              // missing required (cannot close)
                          R"({"name":"x","age":1.5})",     // not an integer
                          R"({"nam":1)",                   // undeclared key
                          R"({"name":"x","name")",         // duplicate key
                          R"({"name":"\q")",               // bad escape
                          "{\"name\":\"\x01",              // control character
                          "{\"name\":\"\xC0\xAF",          // overlong UTF-8
                          R"({"age":01)", R"({"tags":["c"])", R"({"tags":["a",])", R"([)"}) {
    JsonMatcher m(schema);
    std::string text = bad;
    bool accepted = feed(m, text);
    if (accepted) accepted = feed(m, "}") && m.complete();
    EXPECT_FALSE(accepted) << bad;
  }
}

TEST(JsonMatcher, MatchesNestedAnyOfRefsAndAnyValue) {
  const Json tree = Json::parse(R"({
    "$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
              "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["v"]}},
    "anyOf": [{"$ref": "#/$defs/node"}, {"type": "string"}, {"const": [1, true]}]
  })");
  const auto schema = JsonSchema::compile(tree);
  for (const char* ok : {R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[]}]})", R"("leaf")", R"([1,true])"}) {
    JsonMatcher m(schema);
    EXPECT_TRUE(feed(m, ok) && m.complete()) << ok;
  }
  JsonMatcher m(schema);
  EXPECT_FALSE(feed(m, R"({"v":1,"kids":[{"w":2}]})"));
  // json_object mode: any object, any values.
  const auto object = JsonSchema::compile(Json{{"type", "object"}});
  JsonMatcher any(object);
  EXPECT_TRUE(feed(any, R"({"a":[1,{"b":null}],"c":"d","e":false,"f":-0.5E+10})") && any.complete());
  JsonMatcher not_object(object);
  EXPECT_FALSE(feed(not_object, "[1]"));
}

TEST(JsonMatcher, RejectsSchemasItCannotEnforce) {
  EXPECT_THROW(JsonSchema::compile(Json::parse(R"({"type":"string","pattern":"^a"})")), Error);
  EXPECT_THROW(JsonSchema::compile(Json::parse(R"({"type":"integer","minimum":3})")), Error);
  EXPECT_THROW(JsonSchema::compile(Json::parse(R"({"type":"object","required":["x"],"properties":{}})")), Error);
  EXPECT_THROW(JsonSchema::compile(Json::parse(R"({"$ref":"#/$defs/missing"})")), Error);
  EXPECT_THROW(JsonSchema::compile(Json::parse(R"({"type":"wat"})")), Error);
  EXPECT_THROW(JsonSchema::compile(false), Error);
  // A schema whose every document is infinite.
  EXPECT_THROW(JsonSchema::compile(Json::parse(
                   R"({"type":"object","properties":{"x":{"$ref":"#"}},"required":["x"]})")),
               Error);
}

// From any prefix, following a byte that lowers distance() by one reaches a complete,
// valid document in exactly distance() bytes: the budget check relies on this.
TEST(JsonMatcher, DistanceIsTheShortestCompletion) {
  const Json schemas[] = {kPerson, Json{{"type", "object"}},
                          Json::parse(R"({"type":"array","items":{"type":"object","properties":{"k":{"enum":["long value",7]}},"required":["k"]}})")};
  Rng rng(3);
  for (const Json& s : schemas) {
    const auto schema = JsonSchema::compile(s);
    for (int trial = 0; trial < 60; ++trial) {
      // A random valid prefix: random bytes the matcher accepts.
      JsonMatcher m(schema);
      std::string text;
      const int prefix = static_cast<int>(rng.next_u64() % 40);
      for (int i = 0; i < prefix; ++i) {
        for (int attempt = 0; attempt < 64; ++attempt) {
          const auto b = static_cast<uint8_t>(" \n{}[]\":,0123456789.-eEtrufalsnkgmb\\\xC3\xA9xyz"[rng.next_u64() % 46]);
          if (m.feed(b)) {
            text += static_cast<char>(b);
            break;
          }
        }
        if (m.complete()) break;
      }
      int64_t d = m.distance();
      const int64_t start = d;
      int64_t steps = 0;
      while (d > 0) {
        bool moved = false;
        for (int b = 0; b < 256 && !moved; ++b) {
          JsonMatcher next = m;
          if (next.feed(static_cast<uint8_t>(b)) && next.distance() == d - 1) {
            m = next;
            text += static_cast<char>(b);
            moved = true;
          }
        }
        ASSERT_TRUE(moved) << "stuck after '" << text << "' at distance " << d;
        --d;
        ++steps;
      }
      EXPECT_EQ(steps, start);
      ASSERT_TRUE(m.complete()) << text;
      const Json doc = Json::parse(text, nullptr, false);
      ASSERT_FALSE(doc.is_discarded()) << text;
      EXPECT_TRUE(validates(doc, s, s)) << text;
    }
  }
}

// The scheduler with the constraint: a random-weight model, sampling at temperature 1, with
// budgets from tight to roomy, always ends with a complete document that validates.
TEST(JsonConstraint, RandomModelEmitsValidDocumentsWithinTheBudget) {
  const model::Model m = model::Model::load(testing::synthetic_model(model::Arch::Llama, model::Preset::Tiny, "F32"));
  const auto tok = tokenizer::Tokenizer::from_gguf(m.file());
  const auto vocabulary = std::make_shared<VocabularyIndex>(tok);
  kernels::ThreadPool pool(2);
  SchedulerConfig config;
  config.kv_blocks = 64;
  Scheduler s(m, tok, pool, config);
  struct Sink : SequenceSink {
    std::vector<int32_t> tokens;
    std::optional<SequenceReport> report;
    bool on_token(const GeneratedToken& t) override {
      tokens.push_back(t.token);
      return true;
    }
    void on_finish(const SequenceReport& r) override { report = r; }
  };
  const Json schemas[] = {kPerson, Json{{"type", "object"}}, Json::parse(R"({"enum":["yes","no"]})")};
  std::vector<std::pair<std::shared_ptr<Sink>, const Json*>> runs;
  for (const Json& schema : schemas) {
    const auto compiled = JsonSchema::compile(schema);
    for (int64_t budget : {20, 60, 200}) {
      SequenceRequest r;
      r.prompt = {3, 4, 5};
      r.max_tokens = budget;
      r.sampling.seed = static_cast<uint64_t>(budget);
      r.constraint = json_constraint(compiled, vocabulary);
      auto sink = std::make_shared<Sink>();
      s.submit(std::move(r), sink);
      runs.emplace_back(sink, &schema);
    }
  }
  while (s.has_work()) s.step();
  for (const auto& [sink, schema] : runs) {
    ASSERT_TRUE(sink->report);
    EXPECT_EQ(sink->report->reason, FinishReason::EndOfGeneration) << sink->report->error;
    const std::string text = tok.detokenize(sink->tokens);
    const Json doc = Json::parse(text, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << text;
    EXPECT_TRUE(validates(doc, *schema, *schema)) << text;
  }
}

}  // namespace
}  // namespace tokenmill::engine
