// `tokenmill tokenize MODEL (-p TEXT | -f FILE) [--json] [--no-add-special] [--no-parse-special]`
// and `tokenmill detokenize MODEL IDS...`: a model's tokenizer from the command line, for
// checking what a text costs in tokens and what ids stand for.
#include <climits>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "gguf/file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace tokenmill::cli {
namespace {

using tokenizer::TokenId;
using tokenizer::Tokenizer;

// A token's bytes for a terminal: whole UTF-8 characters as they are, control characters and
// bytes that are only part of a character (byte tokens) as escapes.
std::string escaped_piece(std::string_view bytes) {
  std::string out = "'";
  for (size_t i = 0; i < bytes.size();) {
    const tokenizer::Utf8Step step = tokenizer::utf8_step(bytes.substr(i));
    const auto c = static_cast<uint8_t>(bytes[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c == '\\') out += "\\\\";
    else if (c == '\'') out += "\\'";
    else if (step.status == tokenizer::Utf8Status::Valid && c >= 0x20 && c != 0x7F) {
      out.append(bytes.substr(i, step.length));
      i += step.length;
      continue;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    }
    ++i;
  }
  return out + "'";
}

std::string read_bytes(const std::string& path) {
  const MappedFile file(path);
  return std::string(reinterpret_cast<const char*>(file.data()), file.size());
}

// Ids as separate arguments, or in one argument separated by commas or spaces, optionally in
// brackets: `tokenize --json` output can be pasted back.
std::vector<TokenId> parse_ids(const std::vector<std::string>& args) {
  std::vector<TokenId> ids;
  for (const std::string& arg : args) {
    std::string number;
    auto flush = [&] {
      if (number.empty()) return;
      size_t used = 0;
      long long v = -1;
      try {
        v = std::stoll(number, &used);
      } catch (const std::exception&) {
      }
      if (used != number.size() || v < 0 || v > INT32_MAX) throw Error("'" + number + "' is not a token id");
      ids.push_back(static_cast<TokenId>(v));
      number.clear();
    };
    for (char c : arg) {
      if (c == ',' || c == '[' || c == ']' || c == ' ' || c == '\t' || c == '\n') flush();
      else number += c;
    }
    flush();
  }
  return ids;
}

}  // namespace

void register_tokenize(CLI::App& app) {
  struct Options {
    std::string model;
    std::string prompt;
    std::string file;
    bool json = false;
    bool no_add_special = false;
    bool no_parse_special = false;
  };
  auto o = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("tokenize", "Show the token ids of a text");
  cmd->add_option("model", o->model, "GGUF model whose tokenizer to use")->required();
  auto* prompt = cmd->add_option("-p,--prompt", o->prompt, "The text");
  auto* file = cmd->add_option("-f,--file", o->file, "A file whose raw bytes are the text");
  prompt->excludes(file);
  cmd->add_flag("--json", o->json, "Print a JSON array of ids instead of ids with their pieces");
  cmd->add_flag("--no-add-special", o->no_add_special, "Do not add the BOS / EOS tokens the model's metadata asks for");
  cmd->add_flag("--no-parse-special", o->no_parse_special,
                "Treat text spelling a control token (e.g. <|user|>) as ordinary text");
  cmd->callback([o, prompt, file] {
    if (!*prompt && !*file) throw Error("tokenize: give the text with -p TEXT or -f FILE");
    const std::string text = *file ? read_bytes(o->file) : o->prompt;
    const Tokenizer t = Tokenizer::from_gguf(gguf::File::open(o->model));
    const std::vector<TokenId> ids = t.tokenize(text, !o->no_add_special, !o->no_parse_special);
    if (o->json) {
      std::string line = "[";
      for (size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
      std::printf("%s]\n", line.c_str());
      return;
    }
    for (TokenId id : ids) std::printf("%6d -> %s\n", id, escaped_piece(t.piece(id)).c_str());
  });
}

void register_detokenize(CLI::App& app) {
  auto model = std::make_shared<std::string>();
  auto args = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand("detokenize", "Print the text of token ids (control tokens included), as is");
  cmd->add_option("model", *model, "GGUF model whose tokenizer to use")->required();
  cmd->add_option("ids", *args, "Token ids, as arguments or as one list like [1,2,3]")->required();
  cmd->callback([model, args] {
    const std::vector<TokenId> ids = parse_ids(*args);
    const Tokenizer t = Tokenizer::from_gguf(gguf::File::open(*model));
    const std::string text = t.detokenize(ids, /*render_special=*/true);
    std::fwrite(text.data(), 1, text.size(), stdout);
  });
}

}  // namespace tokenmill::cli
