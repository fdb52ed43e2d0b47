#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <optional>

#include "common/error.h"
#include "gguf/file.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/spm.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/utf8.h"

namespace tokenmill::tokenizer {
namespace {

constexpr std::string_view kSpaceEscape = "\xE2\x96\x81";  // "▁", SentencePiece's space

using Lookup = std::function<const gguf::Value*(const std::string&)>;

const gguf::Array& required_array(const Lookup& find, const std::string& key) {
  const gguf::Value* v = find(key);
  if (!v) throw Error("tokenizer metadata lacks " + key);
  const gguf::Array* a = v->as_array();
  if (!a) throw Error(key + " must be an array");
  return *a;
}

std::optional<uint64_t> optional_uint(const Lookup& find, const std::string& key) {
  const gguf::Value* v = find(key);
  if (!v) return std::nullopt;
  const auto x = v->as_uint();
  if (!x) throw Error(key + " must be a non-negative integer");
  return x;
}

std::optional<bool> optional_bool(const Lookup& find, const std::string& key) {
  const gguf::Value* v = find(key);
  if (!v) return std::nullopt;
  const auto x = v->as_bool();
  if (!x) throw Error(key + " must be a boolean");
  return x;
}

// Texts of the tokens that end a turn, for files whose metadata does not name them (Llama 3
// GGUFs name EOS <|end_of_text|> but the chat template ends turns with <|eot_id|>).
constexpr std::string_view kEndOfTurnTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "<｜end▁of▁sentence｜>",
};
constexpr std::string_view kEndOfMessageText = "<|eom_id|>";

TokenType token_type_of(int64_t value) {
  return value >= 1 && value <= 6 ? static_cast<TokenType>(value) : TokenType::Undefined;
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(text.substr(pos, hit - pos));
    out.append(to);
  }
  out.append(text.substr(pos));
  return out;
}

// The bytes a token stands for when decoded.
std::string piece_of(TokenizerKind kind, TokenType type, const std::string& text) {
  switch (type) {
    case TokenType::Normal:
    case TokenType::Undefined:
      return kind == TokenizerKind::ByteLevelBpe ? byte_level_decode(text) : replace_all(text, kSpaceEscape, " ");
    case TokenType::Byte:
      if (const auto b = byte_token_value(text)) return std::string(1, static_cast<char>(*b));
      return text;
    case TokenType::Unused:
      return {};
    case TokenType::Unknown:
    case TokenType::Control:
    case TokenType::UserDefined:
      return text;
  }
  return text;
}

}  // namespace

struct Tokenizer::Impl {
  TokenizerKind kind = TokenizerKind::ByteLevelBpe;
  std::string pre;
  Vocab vocab;
  SpecialTokenIds special;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
  std::vector<TokenId> end_of_generation;  // sorted
  SpecialTokenMatcher matcher;
  std::optional<Pretokenizer> pretokenizer;
  std::optional<BpeModel> bpe;
  std::optional<SpmModel> spm;

  void load_vocab(const Lookup& find);
  void load_special_tokens(const Lookup& find, bool bos_by_default);
  TokenId find_by_text(std::span<const std::string_view> texts) const;
};

void Tokenizer::Impl::load_vocab(const Lookup& find) {
  const gguf::Array& tokens = required_array(find, "tokenizer.ggml.tokens");
  if (tokens.element_type != gguf::ValueType::STRING || tokens.items.empty())
    throw Error("tokenizer.ggml.tokens must be a non-empty array of strings");
  const size_t n = tokens.items.size();
  vocab.texts.reserve(n);
  for (const gguf::Value& t : tokens.items) vocab.texts.push_back(*t.as_string());

  vocab.types.assign(n, TokenType::Normal);
  if (find("tokenizer.ggml.token_type")) {
    const gguf::Array& types = required_array(find, "tokenizer.ggml.token_type");
    if (types.items.size() < n) throw Error("tokenizer.ggml.token_type has fewer entries than tokenizer.ggml.tokens");
    for (size_t i = 0; i < n; ++i) {
      const auto t = types.items[i].as_int();
      if (!t) throw Error("tokenizer.ggml.token_type must be an array of integers");
      vocab.types[i] = token_type_of(*t);
    }
  }
  if (find("tokenizer.ggml.scores")) {
    const gguf::Array& scores = required_array(find, "tokenizer.ggml.scores");
    if (scores.items.size() < n) throw Error("tokenizer.ggml.scores has fewer entries than tokenizer.ggml.tokens");
    vocab.scores.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const auto s = scores.items[i].as_float();
      if (!s) throw Error("tokenizer.ggml.scores must be an array of numbers");
      vocab.scores.push_back(static_cast<float>(*s));
    }
  }
  vocab.pieces.reserve(n);
  for (size_t i = 0; i < n; ++i) vocab.pieces.push_back(piece_of(kind, vocab.types[i], vocab.texts[i]));
}

TokenId Tokenizer::Impl::find_by_text(std::span<const std::string_view> texts) const {
  for (std::string_view wanted : texts)
    for (size_t id = 0; id < vocab.size(); ++id)
      if (vocab.types[id] != TokenType::Normal && vocab.texts[id] == wanted) return static_cast<TokenId>(id);
  return kNoToken;
}

void Tokenizer::Impl::load_special_tokens(const Lookup& find, bool bos_by_default) {
  // SentencePiece files written by old converters omit the ids: LLaMA's are the defaults.
  if (kind == TokenizerKind::SentencePiece) special = {.bos = 1, .eos = 2, .unknown = 0};
  const std::pair<const char*, TokenId*> keys[] = {
      {"tokenizer.ggml.bos_token_id", &special.bos},
      {"tokenizer.ggml.eos_token_id", &special.eos},
      {"tokenizer.ggml.eot_token_id", &special.eot},
      {"tokenizer.ggml.eom_token_id", &special.eom},
      {"tokenizer.ggml.unknown_token_id", &special.unknown},
      {"tokenizer.ggml.padding_token_id", &special.padding},
      {"tokenizer.ggml.seperator_token_id", &special.separator},  // sic: GGUF's spelling
      {"tokenizer.ggml.mask_token_id", &special.mask},
  };
  for (const auto& [key, id] : keys) {
    if (const auto v = optional_uint(find, key)) {
      if (*v >= vocab.size())
        throw Error(std::string(key) + " = " + std::to_string(*v) + " is outside the vocabulary of " +
                    std::to_string(vocab.size()) + " tokens");
      *id = static_cast<TokenId>(*v);
    } else if (!vocab.contains(*id)) {
      *id = kNoToken;
    }
  }
  if (special.eot == kNoToken) special.eot = find_by_text(kEndOfTurnTexts);
  if (special.eom == kNoToken) special.eom = find_by_text({&kEndOfMessageText, 1});

  add_bos = optional_bool(find, "tokenizer.ggml.add_bos_token").value_or(bos_by_default);
  add_eos = optional_bool(find, "tokenizer.ggml.add_eos_token").value_or(false);
  if (add_bos && special.bos == kNoToken) throw Error("tokenizer.ggml.add_bos_token is set but there is no BOS token");
  if (add_eos && special.eos == kNoToken) throw Error("tokenizer.ggml.add_eos_token is set but there is no EOS token");

  for (TokenId id : {special.eos, special.eot, special.eom})
    if (id != kNoToken) end_of_generation.push_back(id);
  for (size_t id = 0; id < vocab.size(); ++id) {
    if (vocab.types[id] == TokenType::Normal) continue;
    for (std::string_view text : kEndOfTurnTexts)
      if (vocab.texts[id] == text) end_of_generation.push_back(static_cast<TokenId>(id));
  }
  std::sort(end_of_generation.begin(), end_of_generation.end());
  end_of_generation.erase(std::unique(end_of_generation.begin(), end_of_generation.end()), end_of_generation.end());
}

Tokenizer Tokenizer::from_lookup(const Lookup& find) {
  auto impl = std::make_unique<Impl>();
  const gguf::Value* model = find("tokenizer.ggml.model");
  if (!model || !model->as_string()) throw Error("tokenizer metadata lacks tokenizer.ggml.model");
  const std::string& model_name = *model->as_string();
  if (model_name == "gpt2") {
    impl->kind = TokenizerKind::ByteLevelBpe;
  } else if (model_name == "llama") {
    impl->kind = TokenizerKind::SentencePiece;
  } else {
    throw Error("tokenizer.ggml.model = '" + model_name + "' is not supported (supported: gpt2, llama)");
  }

  impl->load_vocab(find);

  bool bos_by_default = impl->kind == TokenizerKind::SentencePiece;
  if (impl->kind == TokenizerKind::ByteLevelBpe) {
    const gguf::Value* pre = find("tokenizer.ggml.pre");
    if (!pre || !pre->as_string())
      throw Error("tokenizer.ggml.pre is missing: the pre-tokenizer of this byte-level BPE vocabulary is unknown");
    impl->pre = *pre->as_string();
    impl->pretokenizer = Pretokenizer::for_name(impl->pre);
    bos_by_default = impl->pretokenizer->adds_bos_by_default();
    impl->bpe.emplace(impl->vocab, required_array(find, "tokenizer.ggml.merges"), impl->pretokenizer->ignore_merges());
  }
  impl->load_special_tokens(find, bos_by_default);
  if (impl->kind == TokenizerKind::SentencePiece) {
    impl->add_space_prefix = optional_bool(find, "tokenizer.ggml.add_space_prefix").value_or(true);
    impl->spm.emplace(impl->vocab, impl->special.unknown);
  }

  for (size_t id = 0; id < impl->vocab.size(); ++id) {
    const TokenType type = impl->vocab.types[id];
    if (type == TokenType::Control || type == TokenType::Unknown || type == TokenType::UserDefined)
      impl->matcher.add(impl->vocab.texts[id], static_cast<TokenId>(id), type == TokenType::UserDefined);
  }
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::from_gguf(const gguf::File& file) {
  return from_lookup([&](const std::string& key) { return file.find(key); });
}

Tokenizer Tokenizer::from_metadata(const Metadata& metadata) {
  return from_lookup([&](const std::string& key) -> const gguf::Value* {
    for (const auto& [k, v] : metadata)
      if (k == key) return &v;
    return nullptr;
  });
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<TokenId> Tokenizer::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& m = *impl_;
  std::string repaired;
  if (!is_valid_utf8(text)) {
    repaired = repair_utf8(text);
    text = repaired;
  }

  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && m.add_bos) out.push_back(m.special.bos);

  BpeModel::Workspace bpe_ws;
  SpmModel::Workspace spm_ws;
  std::vector<std::string_view> words;
  std::string escaped;
  // SentencePiece puts a space before text that starts the input or follows an added token.
  bool after_special = true;
  auto encode_text = [&](std::string_view segment) {
    if (m.bpe) {
      words.clear();
      m.pretokenizer->split(segment, words);
      for (std::string_view word : words) m.bpe->encode(word, out, bpe_ws);
    } else {
      escaped.assign(m.add_space_prefix && after_special ? kSpaceEscape : "");
      escaped += replace_all(segment, " ", kSpaceEscape);
      m.spm->encode(escaped, out, spm_ws);
    }
    after_special = false;
  };

  size_t pos = 0;
  while (true) {
    const auto match = m.matcher.find(text, pos, parse_special);
    const size_t end = match ? match->position : text.size();
    if (end > pos) encode_text(text.substr(pos, end - pos));
    if (!match) break;
    out.push_back(match->id);
    after_special = true;
    pos = match->position + match->length;
  }

  if (add_special && m.add_eos) out.push_back(m.special.eos);
  return out;
}

std::string Tokenizer::detokenize(std::span<const TokenId> ids, bool render_special) const {
  StreamDecoder decoder(*this, render_special);
  std::string out;
  for (TokenId id : ids) out += decoder.push(id);
  out += decoder.finish();
  return out;
}

TokenizerKind Tokenizer::kind() const { return impl_->kind; }
const std::string& Tokenizer::pre() const { return impl_->pre; }
size_t Tokenizer::size() const { return impl_->vocab.size(); }
TokenType Tokenizer::type(TokenId id) const {
  return impl_->vocab.contains(id) ? impl_->vocab.types[id] : TokenType::Undefined;
}
const std::string& Tokenizer::text(TokenId id) const { return impl_->vocab.texts.at(id); }
const std::string& Tokenizer::piece(TokenId id) const { return impl_->vocab.pieces.at(id); }
const SpecialTokenIds& Tokenizer::special() const { return impl_->special; }
bool Tokenizer::adds_bos() const { return impl_->add_bos; }
bool Tokenizer::adds_eos() const { return impl_->add_eos; }
bool Tokenizer::adds_space_prefix() const { return impl_->add_space_prefix; }
bool Tokenizer::is_end_of_generation(TokenId id) const {
  return std::binary_search(impl_->end_of_generation.begin(), impl_->end_of_generation.end(), id);
}
const std::vector<TokenId>& Tokenizer::end_of_generation() const { return impl_->end_of_generation; }

}  // namespace tokenmill::tokenizer
