// Conformance of the chat-template engine with @huggingface/jinja: every template of the npm
// bundle's models/templates/ and of ../shared/templates/ is rendered over every conversation of
// chat_template_corpus.json by the reference (render_chat_templates.mjs under node) and by us,
// and the outputs must be byte-identical. The few (template, case) pairs where the reference
// departs from Python Jinja2 semantics are recognised by known_difference() and listed in
// docs/chat-templates.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <unistd.h>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja_error.h"
#include "tokenizer/jinja_template.h"

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// Why our result may differ from @huggingface/jinja's: one rule, checked on every mismatch.
// Templates that concatenate a string with a list or dict (content given as parts to a
// template that only takes strings, tool-call arguments given as a dict to a template that
// wants a JSON string) fail in Python Jinja2 with a TypeError, and we raise the same error;
// @huggingface/jinja instead pastes JavaScript's toString of the value ("a,b", "[object Map]").
std::string known_difference(const std::string& our_error) {
  if (our_error.find("unsupported operand types for +") != std::string::npos &&
      (our_error.find("'list'") != std::string::npos || our_error.find("'dict'") != std::string::npos)) {
    return "string + list/dict: Python raises TypeError, the reference pastes JavaScript's toString";
  }
  return "";
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The folder holding node_modules/@huggingface/jinja: $TOKENMILL_JINJA_MODULES, else the one
// the build installs into.
fs::path reference_modules() {
  if (const char* env = std::getenv("TOKENMILL_JINJA_MODULES")) return env;
  return TOKENMILL_JINJA_MODULES;
}

std::vector<fs::path> template_files() {
  std::vector<fs::path> files;
  const auto add_dir = [&](const fs::path& dir) {
    if (!fs::is_directory(dir)) return;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().extension() == ".jinja") files.push_back(entry.path());
    }
  };
  if (const char* tree = std::getenv("TOKENMILL_LLAMA_TREE")) add_dir(fs::path(tree) / "models" / "templates");
  add_dir(fs::path(TOKENMILL_SOURCE_DIR) / ".." / "shared" / "templates");
  std::sort(files.begin(), files.end());
  return files;
}

// A corpus case's variables, as render_chat_templates.mjs builds them.
ordered_json case_variables(const ordered_json& corpus, const ordered_json& input) {
  ordered_json vars = corpus["defaults"];
  for (const auto& [key, value] : input.items()) vars[key] = value;
  if (vars.contains("tools") && vars["tools"] == "$tools") vars["tools"] = corpus["tools"];
  return vars;
}

std::tm corpus_time(const std::string& iso) {
  std::tm tm{};
  std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t t = timegm(&tm);
  gmtime_r(&t, &tm);
  return tm;
}

TEST(ChatTemplateConformance, ByteIdenticalToHuggingFaceJinja) {
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  const fs::path modules = reference_modules();
  if (!fs::exists(modules / "node_modules" / "@huggingface" / "jinja" / "package.json")) {
    GTEST_SKIP() << "@huggingface/jinja is not installed in " << modules
                 << " (npm install --prefix DIR @huggingface/jinja@0.5.11, and set TOKENMILL_JINJA_MODULES=DIR)";
  }
  const std::vector<fs::path> templates = template_files();
  if (templates.empty()) GTEST_SKIP() << "no templates: set TOKENMILL_LLAMA_TREE and/or provide ../shared/templates";

  const fs::path tests_dir = fs::path(TOKENMILL_SOURCE_DIR) / "tests" / "tokenizer";
  const fs::path corpus_path = tests_dir / "chat_template_corpus.json";
  const fs::path expected_path = fs::temp_directory_path() / ("tokenmill-jinja-reference-" + std::to_string(getpid()) + ".json");
  std::string command = "node '" + (tests_dir / "render_chat_templates.mjs").string() + "' '" + modules.string() + "' '" +
                        corpus_path.string() + "' '" + expected_path.string() + "'";
  for (const fs::path& t : templates) command += " '" + t.string() + "'";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const ordered_json expected = ordered_json::parse(read_file(expected_path));
  fs::remove(expected_path);
  const ordered_json corpus = ordered_json::parse(read_file(corpus_path));

  std::map<std::string, fs::path> paths;
  for (const fs::path& t : templates) paths[t.filename().string()] = t;
  std::map<std::string, std::unique_ptr<tokenmill::jinja::Template>> parsed;
  std::map<std::string, ordered_json> inputs;
  for (const auto& c : corpus["cases"]) inputs[c["name"]] = case_variables(corpus, c["input"]);
  tokenmill::jinja::RenderOptions options;
  options.now = corpus_time(corpus["now"]);

  int identical = 0, compared = 0, reference_errors = 0, both_error = 0, known = 0;
  for (const auto& record : expected["results"]) {
    const std::string name = record["template"], case_name = record["case"];
    SCOPED_TRACE(name + " / " + case_name);
    std::string ours, our_error;
    try {
      auto& tmpl = parsed[name];
      if (!tmpl) tmpl = std::make_unique<tokenmill::jinja::Template>(read_file(paths.at(name)));
      ours = tmpl->render(inputs.at(case_name), options);
    } catch (const tokenmill::Error& e) {
      our_error = e.what();
    }
    if (!record["ok"].get<bool>()) {
      ++reference_errors;
      if (!our_error.empty()) ++both_error;
      continue;
    }
    ++compared;
    const std::string reference = record["output"];
    if (our_error.empty() && ours == reference) {
      ++identical;
      continue;
    }
    if (const std::string why = known_difference(our_error); !why.empty()) {
      ++known;
      std::printf("known difference: %s / %s: %s\n", name.c_str(), case_name.c_str(), why.c_str());
      continue;
    }
    if (!our_error.empty()) {
      ADD_FAILURE() << "we failed where @huggingface/jinja rendered: " << our_error;
      continue;
    }
    size_t at = 0;
    while (at < ours.size() && at < reference.size() && ours[at] == reference[at]) ++at;
    const size_t from = at < 80 ? 0 : at - 80;
    ADD_FAILURE() << "output differs from byte " << at << "\n  ours:      ..." << ours.substr(from, 160)
                  << "\n  reference: ..." << reference.substr(from, 160);
  }
  std::printf("chat templates: %zu templates x %zu cases; reference rendered %d, of which %d byte-identical and %d "
              "known differences; reference failed %d (we failed too on %d)\n",
              templates.size(), inputs.size(), compared, identical, known, reference_errors, both_error);
  EXPECT_GT(compared, 0);
}

}  // namespace
