#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>

#include "common/error.h"

namespace tokenmill::tokenizer {
namespace {

// Llama 3's regex, from its tokenizer.json; GLM-4's tiktoken pattern is the same string.
constexpr std::string_view kLlama3 =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// GPT-2's ByteLevel regex.
constexpr std::string_view kGpt2 =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";

struct Family {
  std::vector<std::string_view> names;  // tokenizer.ggml.pre values
  std::vector<std::string_view> patterns;
  bool ignore_merges;
  bool adds_bos_by_default = false;
};

// The splitters of the model families we serve, transcribed from each family's tokenizer.json.
const std::vector<Family>& families() {
  static const std::vector<Family> table = {
      {{"llama3", "llama-v3", "llama-bpe"}, {kLlama3}, true, true},
      // GLM-4 is tiktoken: a word that is a token is emitted whole. Its Hugging Face conversion
      // keeps that (model.ignore_merges), and it matters: BPE over all-splits merges does not
      // always rebuild such a word (" 厦门" would become four tokens instead of one).
      {{"glm4", "chatglm-bpe"}, {kLlama3}, true},
      {{"qwen2", "deepseek-r1-qwen"},
       {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
       false},
      {{"qwen35"},
       {R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
       false},
      // Non-ASCII characters are written as escapes: a copy through an editor that normalizes
      // to NFC would silently change some of them (U+1FD3 becomes U+0390).
      {{"deepseek-llm"},
       {R"re([\r\n])re",
        R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})re"
        R"re(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5})re"
        R"re(\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD})re"
        R"re(\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15})re"
        R"re(\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D})re"
        R"re(\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB})re"
        R"re(\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D})re"
        R"re(\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E})re"
        R"re(\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D})re"
        R"re(\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06})re"
        R"re(\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB})re"
        R"re(\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)re",
        R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re",
        R"re(\s+$)re",
        R"re([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re",
        R"re(\p{N}+)re"},
       false},
      {{"deepseek-coder"},
       {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", R"re([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re",
        R"re(\p{N})re"},
       false},
      {{"deepseek-v3"},
       {R"re(\p{N}{1,3})re",
        R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re",
        R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
       false},
      {{"gpt-2", "mpt", "olmo"}, {kGpt2}, false},
      {{"starcoder", "refact", "command-r"}, {R"re(\p{N})re", kGpt2}, false},
      {{"falcon"}, {R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2, R"re([0-9][0-9][0-9])re"}, false},
  };
  return table;
}

// Unicode's White_Space property, as class contents.
constexpr std::string_view kWhiteSpace =
    R"re(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})re";

// Per-thread match state: PCRE2 match data is not shareable between concurrent matches, and the
// JIT stack is enlarged so that very long runs of one character class cannot exhaust it.
class MatchScratch {
 public:
  MatchScratch() {
    data_ = pcre2_match_data_create(1, nullptr);
    context_ = pcre2_match_context_create(nullptr);
    stack_ = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (!data_ || !context_ || !stack_) throw std::bad_alloc();
    pcre2_jit_stack_assign(context_, nullptr, stack_);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack_);
    pcre2_match_context_free(context_);
    pcre2_match_data_free(data_);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;

  pcre2_match_data* data() { return data_; }
  pcre2_match_context* context() { return context_; }

 private:
  pcre2_match_data* data_ = nullptr;
  pcre2_match_context* context_ = nullptr;
  pcre2_jit_stack* stack_ = nullptr;
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

}  // namespace

struct Pretokenizer::Regex {
  explicit Regex(std::string_view pattern) {
    const std::string expanded = with_unicode_white_space(pattern);
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(expanded.data()), expanded.size(),
                         PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &error, &error_offset, nullptr);
    if (!code) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      throw Error("pre-tokenizer regex does not compile at offset " + std::to_string(error_offset) + ": " +
                  reinterpret_cast<const char*>(message) + ": " + std::string(pattern));
    }
    // Without JIT (an exotic platform) pcre2_match interprets the same pattern: same results.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the matches of this regex in `piece` and the gaps between them.
  void split(std::string_view piece, std::vector<std::string_view>& out) const {
    MatchScratch& s = scratch();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
    size_t pos = 0;
    while (pos < piece.size()) {
      // The whole piece is the subject, so lookarounds see the same context as in the reference.
      const int rc = pcre2_match(code, subject, piece.size(), pos, PCRE2_NO_UTF_CHECK, s.data(), s.context());
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof message);
        throw Error(std::string("pre-tokenizer regex failed: ") + reinterpret_cast<const char*>(message));
      }
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(s.data());
      const size_t start = ovector[0];
      const size_t end = ovector[1];
      if (end == start) break;  // none of our patterns matches empty; never loop on one that does
      if (start > pos) out.push_back(piece.substr(pos, start - pos));
      out.push_back(piece.substr(start, end - start));
      pos = end;
    }
    if (pos < piece.size()) out.push_back(piece.substr(pos));
  }

  pcre2_code* code = nullptr;
};

Pretokenizer::Pretokenizer(const std::vector<std::string>& patterns) {
  for (const auto& p : patterns) regexes_.push_back(std::make_shared<const Regex>(p));
}

Pretokenizer Pretokenizer::for_name(std::string_view pre) {
  for (const Family& family : families()) {
    for (std::string_view name : family.names) {
      if (name != pre) continue;
      Pretokenizer result(std::vector<std::string>(family.patterns.begin(), family.patterns.end()));
      result.ignore_merges_ = family.ignore_merges;
      result.adds_bos_by_default_ = family.adds_bos_by_default;
      return result;
    }
  }
  std::string known;
  for (const Family& family : families())
    for (std::string_view name : family.names) known += (known.empty() ? "" : ", ") + std::string(name);
  throw Error("unknown pre-tokenizer tokenizer.ggml.pre = '" + std::string(pre) + "' (supported: " + known + ")");
}

void Pretokenizer::split(std::string_view text, std::vector<std::string_view>& words) const {
  if (text.empty()) return;
  if (regexes_.empty()) {
    words.push_back(text);
    return;
  }
  // Every regex but the last splits into a scratch list; the last appends to `words`.
  std::vector<std::string_view> pieces{text};
  std::vector<std::string_view> next;
  for (size_t r = 0; r + 1 < regexes_.size(); ++r) {
    next.clear();
    for (std::string_view piece : pieces) regexes_[r]->split(piece, next);
    pieces.swap(next);
  }
  for (std::string_view piece : pieces) regexes_.back()->split(piece, words);
}

std::string with_unicode_white_space(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      } else if (e == 'S') {
        if (in_class) throw std::logic_error("\\S inside a character class is not supported");
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' (or '^]') right after the opening bracket is a literal, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

}  // namespace tokenmill::tokenizer
