#include "tokenizer/jinja_lexer.h"

#include <array>
#include <utility>

#include "tokenizer/jinja_error.h"
#include "tokenizer/jinja_text.h"

namespace tokenmill::jinja {

SourceLocation locate(std::string_view source, uint32_t offset) {
  SourceLocation location;
  for (size_t pos = 0; pos < source.size() && pos < offset;) {
    if (source[pos] == '\n') {
      ++location.line;
      location.column = 1;
      ++pos;
    } else {
      next_code_point(source, pos);
      ++location.column;
    }
  }
  return location;
}

namespace {

// Text after whitespace preprocessing, with the source offset of every byte kept beside it.
struct MappedText {
  std::string text;
  std::vector<uint32_t> origin;  // origin[i]: source offset of text[i]; one extra entry at the end

  void push(char c, uint32_t from) {
    text += c;
    origin.push_back(from);
  }
  // Builds a copy keeping only the bytes for which keep(i) is true.
  template <typename Keep>
  MappedText filtered(Keep keep) const {
    MappedText out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (keep(i)) out.push(text[i], origin[i]);
    }
    out.origin.push_back(origin.back());
    return out;
  }
};

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Length of the run of whitespace (any Unicode space) starting at pos.
size_t space_run(const std::string& text, size_t pos) {
  size_t end = pos;
  while (end < text.size()) {
    size_t next = end;
    if (!is_space(next_code_point(text, next))) break;
    end = next;
  }
  return end - pos;
}

bool block_start(const std::string& text, size_t pos) {
  return pos + 1 < text.size() && text[pos] == '{' &&
         (text[pos + 1] == '#' || text[pos + 1] == '%' || text[pos + 1] == '-');
}

// The optional transformers `{% generation %}` / `{% endgeneration %}` markers are removed
// before lexing, with their whitespace modifiers honoured. Returns the tag length or 0.
size_t generation_tag(const std::string& text, size_t pos, bool& strip_before, bool& strip_after) {
  if (text.compare(pos, 2, "{%") != 0) return 0;
  size_t i = pos + 2;
  strip_before = i < text.size() && text[i] == '-';
  if (strip_before) ++i;
  i += space_run(text, i);
  if (text.compare(i, 3, "end") == 0) i += 3;
  if (text.compare(i, 10, "generation") != 0) return 0;
  i += 10;
  i += space_run(text, i);
  strip_after = i < text.size() && text[i] == '-';
  if (strip_after) ++i;
  if (text.compare(i, 2, "%}") != 0) return 0;
  return i + 2 - pos;
}

MappedText preprocess(std::string_view source) {
  MappedText mapped;
  for (size_t i = 0; i < source.size(); ++i) mapped.push(source[i], static_cast<uint32_t>(i));
  mapped.origin.push_back(static_cast<uint32_t>(source.size()));
  if (!mapped.text.empty() && mapped.text.back() == '\n') {
    mapped.text.pop_back();
    mapped.origin.erase(mapped.origin.end() - 2);
  }

  // lstrip_blocks: spaces and tabs from a line start up to a block or comment tag.
  std::vector<bool> drop(mapped.text.size(), false);
  for (size_t line = 0; line < mapped.text.size();) {
    size_t i = line;
    while (i < mapped.text.size() && (mapped.text[i] == ' ' || mapped.text[i] == '\t')) ++i;
    if (block_start(mapped.text, i)) {
      for (size_t j = line; j < i; ++j) drop[j] = true;
    }
    const size_t eol = mapped.text.find_first_of("\n\r", i);
    if (eol == std::string::npos) break;
    line = eol + 1;
  }
  mapped = mapped.filtered([&](size_t i) { return !drop[i]; });

  // trim_blocks: the first newline after a block or comment tag (also after "-}").
  drop.assign(mapped.text.size(), false);
  for (size_t i = 0; i + 2 < mapped.text.size(); ++i) {
    const char c = mapped.text[i];
    if ((c == '#' || c == '%' || c == '-') && mapped.text[i + 1] == '}' && mapped.text[i + 2] == '\n') {
      drop[i + 2] = true;
      i += 2;
    }
  }
  mapped = mapped.filtered([&](size_t i) { return !drop[i]; });

  if (mapped.text.find("generation") == std::string::npos) return mapped;
  drop.assign(mapped.text.size(), false);
  size_t kept_until = 0;  // whitespace before this offset belongs to an earlier tag
  for (size_t i = 0; i < mapped.text.size(); ++i) {
    bool strip_before = false, strip_after = false;
    const size_t length = generation_tag(mapped.text, i, strip_before, strip_after);
    if (length == 0) continue;
    for (size_t j = i; j < i + length; ++j) drop[j] = true;
    if (strip_before) {
      for (size_t j = i; j > kept_until && is_ascii_space(mapped.text[j - 1]); --j) drop[j - 1] = true;
    }
    i += length;
    const size_t after = space_run(mapped.text, i);
    if (strip_after) {
      for (size_t j = i; j < i + after; ++j) drop[j] = true;
    }
    i += after;
    kept_until = i;
    --i;
  }
  return mapped.filtered([&](size_t i) { return !drop[i]; });
}

constexpr std::array<std::pair<std::string_view, TokenType>, 29> kSymbols{{
    {"{%", TokenType::OpenStatement},  {"%}", TokenType::CloseStatement},
    {"{{", TokenType::OpenExpression}, {"}}", TokenType::CloseExpression},
    {"(", TokenType::OpenParen},       {")", TokenType::CloseParen},
    {"{", TokenType::OpenBrace},       {"}", TokenType::CloseBrace},
    {"[", TokenType::OpenBracket},     {"]", TokenType::CloseBracket},
    {",", TokenType::Comma},           {".", TokenType::Dot},
    {":", TokenType::Colon},           {"|", TokenType::Pipe},
    {"<=", TokenType::Comparison},     {">=", TokenType::Comparison},
    {"==", TokenType::Comparison},     {"!=", TokenType::Comparison},
    {"<", TokenType::Comparison},      {">", TokenType::Comparison},
    {"+", TokenType::Additive},        {"-", TokenType::Additive},
    {"~", TokenType::Additive},        {"**", TokenType::Power},
    {"*", TokenType::Multiplicative},  {"//", TokenType::Multiplicative},
    {"/", TokenType::Multiplicative},  {"%", TokenType::Multiplicative},
    {"=", TokenType::Equals},
}};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

class Lexer {
 public:
  explicit Lexer(std::string_view source) : source_(source), mapped_(preprocess(source)), text_(mapped_.text) {}

  std::vector<Token> run() {
    while (pos_ < text_.size()) {
      if (outside_tags()) {
        const size_t start = pos_;
        while (pos_ < text_.size() && !tag_opens_at(pos_)) ++pos_;
        if (pos_ > start) {
          push(TokenType::Text, text_.substr(start, pos_ - start), start);
          continue;
        }
      }
      if (text_.compare(pos_, 2, "{#") == 0) {
        comment();
      } else if (text_.compare(pos_, 3, "{%-") == 0 || text_.compare(pos_, 3, "{{-") == 0) {
        strip_trailing_text();
        push(text_[pos_ + 1] == '%' ? TokenType::OpenStatement : TokenType::OpenExpression,
             text_.substr(pos_, 2), pos_);
        if (text_[pos_ + 1] == '{') brace_depth_ = 0;
        pos_ += 3;
      } else {
        inside_tag();
      }
    }
    return std::move(tokens_);
  }

 private:
  bool outside_tags() const {
    if (tokens_.empty()) return true;
    const TokenType last = tokens_.back().type;
    return last == TokenType::CloseStatement || last == TokenType::CloseExpression || after_comment_;
  }

  bool tag_opens_at(size_t i) const {
    return text_[i] == '{' && i + 1 < text_.size() && (text_[i + 1] == '%' || text_[i + 1] == '{' || text_[i + 1] == '#');
  }

  [[noreturn]] void fail(size_t at, const std::string& message) const {
    const SourceLocation where = locate(source_, mapped_.origin[std::min(at, mapped_.origin.size() - 1)]);
    throw TemplateError(where.line, where.column, message);
  }

  void push(TokenType type, std::string value, size_t at) {
    tokens_.push_back(Token{type, std::move(value), mapped_.origin[at]});
    after_comment_ = false;
  }

  // "{%-", "{{-", "{#-": the text before the tag loses its trailing whitespace.
  // Right after a comment there is no text token to strip (the comment stands between).
  void strip_trailing_text() {
    if (after_comment_ || tokens_.empty() || tokens_.back().type != TokenType::Text) return;
    tokens_.back().value = strip(tokens_.back().value, nullptr, StripSide::Right);
    if (tokens_.back().value.empty()) tokens_.pop_back();
  }

  void skip_whitespace() { pos_ += space_run(text_, pos_); }

  void comment() {
    const size_t start = pos_;
    pos_ += 2;
    const bool strip_before = pos_ < text_.size() && text_[pos_] == '-';
    const size_t end = text_.find("#}", pos_);
    if (end == std::string::npos) fail(start, "unterminated comment: missing '#}'");
    const bool strip_after = end > pos_ && text_[end - 1] == '-';
    if (strip_before) strip_trailing_text();
    pos_ = end + 2;
    if (strip_after) skip_whitespace();
    after_comment_ = true;
  }

  void inside_tag() {
    skip_whitespace();
    if (pos_ >= text_.size()) return;
    if (text_.compare(pos_, 3, "-%}") == 0 || text_.compare(pos_, 3, "-}}") == 0) {
      push(text_[pos_ + 1] == '%' ? TokenType::CloseStatement : TokenType::CloseExpression, text_.substr(pos_ + 1, 2), pos_);
      pos_ += 3;
      skip_whitespace();
      return;
    }
    const char c = text_[pos_];
    if ((c == '-' || c == '+') && sign_position()) {
      const size_t start = pos_++;
      std::string number = digits();
      if (!number.empty() && pos_ + 1 < text_.size() && text_[pos_] == '.' && is_digit(text_[pos_ + 1])) {
        ++pos_;
        number += "." + digits();
      }
      push(number.empty() ? TokenType::Unary : TokenType::Number, std::string(1, c) + number, start);
      return;
    }
    for (const auto& [symbol, type] : kSymbols) {
      if (symbol == "}}" && brace_depth_ > 0) continue;
      if (text_.compare(pos_, symbol.size(), symbol) != 0) continue;
      push(type, std::string(symbol), pos_);
      if (type == TokenType::OpenExpression) brace_depth_ = 0;
      if (type == TokenType::OpenBrace) ++brace_depth_;
      if (type == TokenType::CloseBrace) --brace_depth_;
      pos_ += symbol.size();
      return;
    }
    if (c == '\'' || c == '"') {
      string_literal(c);
    } else if (is_digit(c)) {
      const size_t start = pos_;
      std::string number = digits();
      const bool after_dot = !tokens_.empty() && tokens_.back().type == TokenType::Dot;
      if (!after_dot && pos_ + 1 < text_.size() && text_[pos_] == '.' && is_digit(text_[pos_ + 1])) {
        ++pos_;
        number += "." + digits();
      }
      push(TokenType::Number, number, start);
    } else if (is_word(c)) {
      const size_t start = pos_;
      while (pos_ < text_.size() && is_word(text_[pos_])) ++pos_;
      push(TokenType::Name, text_.substr(start, pos_ - start), start);
    } else {
      size_t end = pos_;
      next_code_point(text_, end);
      fail(pos_, "unexpected character '" + text_.substr(pos_, end - pos_) + "'");
    }
  }

  // A + or - is a sign unless it follows something that can be a left operand.
  bool sign_position() const {
    if (tokens_.empty()) return true;
    switch (tokens_.back().type) {
      case TokenType::Name:
      case TokenType::Number:
      case TokenType::String:
      case TokenType::CloseParen:
      case TokenType::CloseBracket:
        return false;
      default:
        return true;
    }
  }

  std::string digits() {
    const size_t start = pos_;
    while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  void string_literal(char quote) {
    const size_t start = pos_++;
    std::string value;
    while (true) {
      if (pos_ >= text_.size()) fail(start, "unterminated string literal");
      const char c = text_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        continue;
      }
      if (pos_ >= text_.size()) fail(start, "unterminated string literal");
      const char e = text_[pos_++];
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'v': value += '\v'; break;
        case '\'': case '"': case '\\': value += e; break;
        case 'x': case 'u': {
          const size_t length = e == 'x' ? 2 : 4;
          const std::string hex = text_.substr(pos_, length);
          if (hex.size() != length || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
            fail(pos_ - 2, "invalid escape sequence \\" + std::string(1, e) + hex);
          }
          append_utf8(value, static_cast<uint32_t>(std::stoul(hex, nullptr, 16)));
          pos_ += length;
          break;
        }
        default:  // Python keeps unknown escapes as written
          value += '\\';
          value += e;
      }
    }
    push(TokenType::String, std::move(value), start);
  }

  std::string_view source_;
  MappedText mapped_;
  const std::string& text_;
  size_t pos_ = 0;
  int brace_depth_ = 0;  // inside {{ }}, "}}" closes a dict literal first
  bool after_comment_ = false;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace tokenmill::jinja
