// Incremental detokenization for streaming responses: each generated token's text is sent as
// soon as it forms complete UTF-8. A character split across tokens is held back until its last
// byte arrives; bytes that can no longer become a character are sent as U+FFFD at once, so a
// model emitting garbage bytes (random weights do) never stalls the stream.
#pragma once

#include <string>

#include "tokenizer/tokenizer.h"

namespace tokenmill::tokenizer {

class StreamDecoder {
 public:
  // The tokenizer must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool render_special = false);

  // The text `id` completes (possibly empty). tokenmill::Error for an id outside the vocabulary.
  std::string push(TokenId id);
  // The held-back bytes of an unfinished character, as U+FFFD; the next push starts a new text.
  std::string finish();

 private:
  const Tokenizer* tokenizer_;
  bool render_special_;
  bool at_start_ = true;  // SentencePiece drops the space its encoder put before the first word
  std::string pending_;
};

}  // namespace tokenmill::tokenizer
