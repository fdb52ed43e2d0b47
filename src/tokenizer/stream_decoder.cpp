#include "tokenizer/stream_decoder.h"

#include <string_view>

#include "common/error.h"
#include "tokenizer/utf8.h"

namespace tokenmill::tokenizer {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(&tokenizer), render_special_(render_special) {}

std::string StreamDecoder::push(TokenId id) {
  const TokenType type = tokenizer_->type(id);
  if (type == TokenType::Undefined && (id < 0 || static_cast<size_t>(id) >= tokenizer_->size()))
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(tokenizer_->size()) + " tokens");
  if ((type == TokenType::Control || type == TokenType::Unknown) && !render_special_) return {};

  std::string_view piece = tokenizer_->piece(id);
  if (piece.empty()) return {};
  if (at_start_ && tokenizer_->adds_space_prefix() && type == TokenType::Normal && piece.front() == ' ')
    piece.remove_prefix(1);
  at_start_ = false;
  pending_.append(piece);

  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const Utf8Step step = utf8_step(std::string_view(pending_).substr(i));
    if (step.status == Utf8Status::Incomplete) break;
    if (step.status == Utf8Status::Valid) {
      out.append(pending_, i, step.length);
    } else {
      append_utf8(out, kReplacementCharacter);
    }
    i += step.length;
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out = repair_utf8(pending_);
  pending_.clear();
  at_start_ = true;
  return out;
}

}  // namespace tokenmill::tokenizer
