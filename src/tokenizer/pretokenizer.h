// Pre-tokenization: splitting text into the words that byte-level BPE encodes one at a time.
// Each model family names its splitter in tokenizer.ggml.pre; the splitter is a sequence of
// Unicode regexes (PCRE2, JIT-compiled), each splitting every piece the previous one produced
// into its matches and the gaps between them (Hugging Face's Split with "Isolated" behaviour).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tokenmill::tokenizer {

class Pretokenizer {
 public:
  // The splitter for a tokenizer.ggml.pre value; tokenmill::Error naming the value when unknown.
  static Pretokenizer for_name(std::string_view pre);
  // From regexes written in the syntax of tokenizer.json's Split patterns.
  explicit Pretokenizer(const std::vector<std::string>& patterns);

  // Llama 3 style vocabularies skip BPE for words that are whole tokens (tokenizer.json's
  // model.ignore_merges); a property of the family, so it travels with the splitter.
  bool ignore_merges() const { return ignore_merges_; }
  // Whether BOS is added when the GGUF has no tokenizer.ggml.add_bos_token: Llama 3 files
  // written before that key existed rely on it.
  bool adds_bos_by_default() const { return adds_bos_by_default_; }

  // Appends the words of `text` (which must be valid UTF-8) to `words`, in order; their
  // concatenation is `text`. Thread-safe.
  void split(std::string_view text, std::vector<std::string_view>& words) const;

  struct Regex;  // a compiled pattern (pretokenizer.cpp)

 private:
  std::vector<std::shared_ptr<const Regex>> regexes_;
  bool ignore_merges_ = false;
  bool adds_bos_by_default_ = false;
};

// Rewrites \s and \S to Unicode's White_Space property, the definition the reference
// tokenizers' regex engines (Rust regex, Oniguruma) use; PCRE2's own \s also matches U+180E.
std::string with_unicode_white_space(std::string_view pattern);

}  // namespace tokenmill::tokenizer
