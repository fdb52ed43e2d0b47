#include "tokenizer/jinja_parser.h"

#include <initializer_list>

#include "tokenizer/jinja_error.h"
#include "tokenizer/jinja_lexer.h"

namespace tokenmill::jinja {

namespace {

bool is_one_of(const std::string& s, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (s == n) return true;
  }
  return false;
}

class Parser {
 public:
  Parser(std::string_view source, std::vector<Token> tokens) : source_(source), tokens_(std::move(tokens)) {}

  Body run() {
    Body body;
    while (!at_end()) body.push_back(statement());
    return body;
  }

 private:
  bool at_end() const { return pos_ >= tokens_.size(); }
  const Token& peek(size_t ahead = 0) const {
    static const Token end{TokenType::Text, "", 0};
    return pos_ + ahead < tokens_.size() ? tokens_[pos_ + ahead] : end;
  }
  bool is(TokenType type) const { return !at_end() && peek().type == type; }
  bool is_name(const char* name, size_t ahead = 0) const {
    return pos_ + ahead < tokens_.size() && peek(ahead).type == TokenType::Name && peek(ahead).value == name;
  }
  uint32_t offset() const { return at_end() ? static_cast<uint32_t>(source_.size()) : peek().offset; }

  [[noreturn]] void fail(const std::string& message) const { fail_at(offset(), message); }
  [[noreturn]] void fail_at(uint32_t at, const std::string& message) const {
    const SourceLocation where = locate(source_, at);
    throw TemplateError(where.line, where.column, message);
  }

  const Token& expect(TokenType type, const char* what) {
    if (!is(type)) fail(std::string("expected ") + what + (at_end() ? " before the end of the template" : ", found '" + peek().value + "'"));
    return tokens_[pos_++];
  }
  void expect_name(const char* name) {
    if (!is_name(name)) fail(std::string("expected '") + name + "'");
    ++pos_;
  }
  // "{% name" ahead?
  bool at_statement(std::initializer_list<const char*> names) const {
    return is(TokenType::OpenStatement) && pos_ + 1 < tokens_.size() && peek(1).type == TokenType::Name &&
           is_one_of(peek(1).value, names);
  }
  void end_block(const char* name) {
    expect(TokenType::OpenStatement, "'{%'");
    expect_name(name);
    expect(TokenType::CloseStatement, "'%}'");
  }
  Body body_until(std::initializer_list<const char*> names, const char* opened) {
    Body body;
    while (!at_statement(names)) {
      if (at_end()) fail(std::string("unclosed '") + opened + "' block: missing {% " + *names.begin() + " %}");
      body.push_back(statement());
    }
    return body;
  }

  NodePtr statement() {
    const Token& token = peek();
    switch (token.type) {
      case TokenType::Text:
        ++pos_;
        return std::make_unique<TextNode>(token.offset, token.value);
      case TokenType::OpenExpression: {
        ++pos_;
        auto node = std::make_unique<OutputNode>(token.offset, expression());
        expect(TokenType::CloseExpression, "'}}'");
        return node;
      }
      case TokenType::OpenStatement:
        ++pos_;
        return block_statement();
      default:
        fail("unexpected '" + token.value + "'");
    }
  }

  NodePtr block_statement() {
    if (!is(TokenType::Name)) fail("expected a statement name after '{%'");
    const Token& name = tokens_[pos_++];
    const uint32_t at = name.offset;
    if (name.value == "if") {
      auto node = if_chain(at);
      end_block("endif");
      return node;
    }
    if (name.value == "for") return for_statement(at);
    if (name.value == "set") return set_statement(at);
    if (name.value == "macro") return macro_statement(at);
    if (name.value == "call") return call_block(at);
    if (name.value == "filter") return filter_block(at);
    if (name.value == "break" || name.value == "continue") {
      expect(TokenType::CloseStatement, "'%}'");
      return std::make_unique<Node>(name.value == "break" ? Node::Kind::Break : Node::Kind::Continue, at);
    }
    fail_at(at, "unknown statement '" + name.value + "'");
  }

  std::unique_ptr<IfNode> if_chain(uint32_t at) {
    auto node = std::make_unique<IfNode>(at);
    node->test = expression();
    expect(TokenType::CloseStatement, "'%}'");
    node->then = body_until({"endif", "elif", "else"}, "if");
    if (at_statement({"elif"})) {
      const uint32_t elif_at = peek(1).offset;
      pos_ += 2;
      node->otherwise.push_back(if_chain(elif_at));
    } else if (at_statement({"else"})) {
      pos_ += 2;
      expect(TokenType::CloseStatement, "'%}'");
      node->otherwise = body_until({"endif"}, "if");
    }
    return node;
  }

  NodePtr for_statement(uint32_t at) {
    auto node = std::make_unique<ForNode>(at);
    do {
      node->targets.push_back(expect(TokenType::Name, "a loop variable name").value);
    } while (is(TokenType::Comma) && (++pos_, true));
    expect_name("in");
    NodePtr iterable = expression();
    // `for x in xs if cond` parses as a conditional without else: the condition filters items.
    if (iterable->kind == Node::Kind::Conditional && !static_cast<ConditionalNode&>(*iterable).otherwise) {
      auto& conditional = static_cast<ConditionalNode&>(*iterable);
      node->filter = std::move(conditional.test);
      node->iterable = std::move(conditional.then);
    } else {
      node->iterable = std::move(iterable);
    }
    expect(TokenType::CloseStatement, "'%}'");
    node->body = body_until({"endfor", "else"}, "for");
    if (at_statement({"else"})) {
      pos_ += 2;
      expect(TokenType::CloseStatement, "'%}'");
      node->otherwise = body_until({"endfor"}, "for");
    }
    end_block("endfor");
    return node;
  }

  NodePtr set_statement(uint32_t at) {
    auto node = std::make_unique<SetNode>(at);
    node->target = expression_sequence();
    const Node::Kind kind = node->target->kind;
    if (kind != Node::Kind::Name && kind != Node::Kind::TupleLiteral && kind != Node::Kind::Member) {
      fail_at(node->target->offset, "cannot assign to this expression");
    }
    if (is(TokenType::Equals)) {
      ++pos_;
      node->value = expression_sequence();
      expect(TokenType::CloseStatement, "'%}'");
    } else {
      expect(TokenType::CloseStatement, "'%}' or '='");
      node->body = body_until({"endset"}, "set");
      end_block("endset");
    }
    return node;
  }

  std::vector<Parameter> parameters() {
    std::vector<Parameter> params;
    expect(TokenType::OpenParen, "'('");
    while (!is(TokenType::CloseParen)) {
      Parameter param;
      param.name = expect(TokenType::Name, "a parameter name").value;
      if (is(TokenType::Equals)) {
        ++pos_;
        param.default_value = expression();
      }
      params.push_back(std::move(param));
      if (!is(TokenType::Comma)) break;
      ++pos_;
    }
    expect(TokenType::CloseParen, "')'");
    return params;
  }

  NodePtr macro_statement(uint32_t at) {
    auto node = std::make_unique<MacroNode>(at);
    node->name = expect(TokenType::Name, "a macro name").value;
    node->params = parameters();
    expect(TokenType::CloseStatement, "'%}'");
    node->body = body_until({"endmacro"}, "macro");
    end_block("endmacro");
    return node;
  }

  NodePtr call_block(uint32_t at) {
    auto node = std::make_unique<CallBlockNode>(at);
    if (is(TokenType::OpenParen)) node->params = parameters();
    const uint32_t callee_at = offset();
    auto callee = std::make_unique<NameNode>(callee_at, expect(TokenType::Name, "a macro name").value);
    node->call = std::make_unique<CallNode>(callee_at);
    node->call->callee = std::move(callee);
    node->call->args = arguments();
    expect(TokenType::CloseStatement, "'%}'");
    node->body = body_until({"endcall"}, "call");
    end_block("endcall");
    return node;
  }

  NodePtr filter_block(uint32_t at) {
    auto node = std::make_unique<FilterBlockNode>(at);
    node->filter = std::make_unique<FilterNode>(Node::Kind::Filter, offset());
    node->filter->name = expect(TokenType::Name, "a filter name").value;
    if (is(TokenType::OpenParen)) node->filter->args = arguments();
    expect(TokenType::CloseStatement, "'%}'");
    node->body = body_until({"endfilter"}, "filter");
    end_block("endfilter");
    return node;
  }

  // a, b, c as a tuple (set targets and values, parenthesised tuples).
  NodePtr expression_sequence() {
    const uint32_t at = offset();
    NodePtr first = expression();
    if (!is(TokenType::Comma)) return first;
    auto tuple = std::make_unique<SequenceNode>(Node::Kind::TupleLiteral, at);
    tuple->items.push_back(std::move(first));
    while (is(TokenType::Comma)) {
      ++pos_;
      if (is(TokenType::CloseParen) || is(TokenType::CloseStatement) || is(TokenType::Equals)) break;
      tuple->items.push_back(expression());
    }
    return tuple;
  }

  NodePtr expression() {
    NodePtr value = or_expression();
    if (!is_name("if")) return value;
    auto node = std::make_unique<ConditionalNode>(peek().offset);
    ++pos_;
    node->test = or_expression();
    node->then = std::move(value);
    if (is_name("else")) {
      ++pos_;
      node->otherwise = expression();
    }
    return node;
  }

  template <typename Next>
  NodePtr left_assoc(Next next, std::initializer_list<const char*> keyword_ops, TokenType op_type) {
    NodePtr left = (this->*next)();
    while (true) {
      const Token& token = peek();
      const bool keyword = token.type == TokenType::Name && is_one_of(token.value, keyword_ops);
      if (at_end() || (!keyword && (op_type == TokenType::Text || token.type != op_type))) return left;
      ++pos_;
      left = std::make_unique<BinaryNode>(token.offset, token.value, std::move(left), (this->*next)());
    }
  }

  NodePtr or_expression() { return left_assoc(&Parser::and_expression, {"or"}, TokenType::Text); }
  NodePtr and_expression() { return left_assoc(&Parser::not_expression, {"and"}, TokenType::Text); }

  NodePtr not_expression() {
    if (is_name("not")) {
      const uint32_t at = peek().offset;
      ++pos_;
      return std::make_unique<UnaryNode>(at, "not", not_expression());
    }
    return comparison();
  }

  NodePtr comparison() {
    NodePtr left = additive();
    while (true) {
      const uint32_t at = offset();
      std::string op;
      if (is_name("not") && is_name("in", 1)) {
        op = "not in";
        pos_ += 2;
      } else if (is_name("in") || is(TokenType::Comparison)) {
        op = tokens_[pos_++].value;
      } else {
        return left;
      }
      left = std::make_unique<BinaryNode>(at, op, std::move(left), additive());
    }
  }

  NodePtr additive() { return left_assoc(&Parser::multiplicative, {}, TokenType::Additive); }
  NodePtr multiplicative() { return left_assoc(&Parser::power, {}, TokenType::Multiplicative); }
  NodePtr power() { return left_assoc(&Parser::test_expression, {}, TokenType::Power); }

  NodePtr test_expression() {
    NodePtr operand = filter_expression();
    while (is_name("is")) {
      auto node = std::make_unique<FilterNode>(Node::Kind::Test, peek().offset);
      ++pos_;
      if (is_name("not")) {
        node->negate = true;
        ++pos_;
      }
      // "is none", "is true" etc.: names that are also constants
      node->name = expect(TokenType::Name, "a test name").value;
      if (is(TokenType::OpenParen)) {
        node->args = arguments();
      } else if (test_argument_follows()) {
        Argument arg;
        arg.value = primary_with_members();
        node->args.push_back(std::move(arg));
      }
      node->operand = std::move(operand);
      operand = std::move(node);
    }
    return operand;
  }

  // Jinja allows one argument without parentheses: `x is divisibleby 3`, `x is sameas none`.
  bool test_argument_follows() const {
    if (at_end()) return false;
    const Token& token = peek();
    if (token.type == TokenType::Name) {
      return !is_one_of(token.value, {"and", "or", "else", "if", "not", "in", "is"});
    }
    return token.type == TokenType::Number || token.type == TokenType::String || token.type == TokenType::OpenBracket ||
           token.type == TokenType::OpenBrace;
  }

  NodePtr filter_expression() {
    NodePtr operand = unary();
    while (is(TokenType::Pipe)) {
      ++pos_;
      auto node = std::make_unique<FilterNode>(Node::Kind::Filter, offset());
      node->name = expect(TokenType::Name, "a filter name").value;
      if (is(TokenType::OpenParen)) node->args = arguments();
      node->operand = std::move(operand);
      operand = std::move(node);
    }
    return operand;
  }

  NodePtr unary() {
    if ((is(TokenType::Unary) || is(TokenType::Additive)) && (peek().value == "-" || peek().value == "+")) {
      const Token& token = tokens_[pos_++];
      return std::make_unique<UnaryNode>(token.offset, token.value, unary());
    }
    NodePtr node = primary_with_members();
    while (is(TokenType::OpenParen)) {
      auto call = std::make_unique<CallNode>(node->offset);  // errors point at the callee
      call->callee = std::move(node);
      call->args = arguments();
      node = members(std::move(call));
    }
    return node;
  }

  NodePtr primary_with_members() { return members(primary()); }

  NodePtr members(NodePtr object) {
    while (is(TokenType::Dot) || is(TokenType::OpenBracket)) {
      const Token& token = tokens_[pos_++];
      const uint32_t at = object->offset;  // errors point at the start of `a.b` / `a[b]`
      if (token.type == TokenType::Dot) {
        const Token& key = peek();
        if (key.type == TokenType::Name) {
          ++pos_;
          object = std::make_unique<MemberNode>(at, std::move(object),
                                                std::make_unique<LiteralNode>(key.offset, Value(key.value)), false);
        } else if (key.type == TokenType::Number && key.value.find_first_not_of("0123456789") == std::string::npos) {
          ++pos_;
          object = std::make_unique<MemberNode>(at, std::move(object),
                                                std::make_unique<LiteralNode>(key.offset, Value(int64_t{std::stoll(key.value)})), false);
        } else {
          fail("expected an attribute name after '.'");
        }
        continue;
      }
      object = subscript(at, std::move(object));
    }
    return object;
  }

  // [key] or a slice [start:stop:step]; the '[' is consumed.
  NodePtr subscript(uint32_t at, NodePtr object) {
    std::vector<NodePtr> parts(1);
    bool is_slice = false;
    while (!is(TokenType::CloseBracket)) {
      if (at_end()) fail("expected ']'");
      if (is(TokenType::Colon)) {
        ++pos_;
        is_slice = true;
        parts.emplace_back();
        if (parts.size() > 3) fail("a slice takes at most three parts");
        continue;
      }
      if (parts.back()) fail("expected ']' or ':'");
      parts.back() = expression();
    }
    ++pos_;
    if (!is_slice) {
      if (!parts[0]) fail_at(at, "expected a subscript between '[' and ']'");
      return std::make_unique<MemberNode>(at, std::move(object), std::move(parts[0]), true);
    }
    auto slice = std::make_unique<SliceNode>(at);
    slice->object = std::move(object);
    parts.resize(3);
    slice->start = std::move(parts[0]);
    slice->stop = std::move(parts[1]);
    slice->step = std::move(parts[2]);
    return slice;
  }

  std::vector<Argument> arguments() {
    std::vector<Argument> args;
    expect(TokenType::OpenParen, "'('");
    bool keyword_seen = false;
    while (!is(TokenType::CloseParen)) {
      if (at_end()) fail("expected ')'");
      Argument arg;
      if (is(TokenType::Power)) {
        ++pos_;
        arg.kind = Argument::Kind::KeywordSpread;
      } else if (is(TokenType::Multiplicative) && peek().value == "*") {
        ++pos_;
        arg.kind = Argument::Kind::Spread;
      } else if (is(TokenType::Name) && peek(1).type == TokenType::Equals) {
        arg.kind = Argument::Kind::Keyword;
        arg.name = tokens_[pos_].value;
        pos_ += 2;
      }
      const uint32_t at = offset();
      arg.value = expression();
      if (arg.kind == Argument::Kind::Keyword || arg.kind == Argument::Kind::KeywordSpread) {
        keyword_seen = true;
      } else if (keyword_seen && arg.kind == Argument::Kind::Positional) {
        fail_at(at, "positional argument follows keyword argument");
      }
      args.push_back(std::move(arg));
      if (!is(TokenType::Comma)) break;
      ++pos_;
    }
    expect(TokenType::CloseParen, "')'");
    return args;
  }

  NodePtr primary() {
    if (at_end()) fail("expected an expression");
    const Token& token = tokens_[pos_++];
    switch (token.type) {
      case TokenType::Number:
        if (token.value.find('.') != std::string::npos) {
          return std::make_unique<LiteralNode>(token.offset, Value(std::stod(token.value)));
        }
        try {
          return std::make_unique<LiteralNode>(token.offset, Value(int64_t{std::stoll(token.value)}));
        } catch (const std::out_of_range&) {
          fail_at(token.offset, "integer literal out of range");
        }
      case TokenType::String: {
        std::string value = token.value;
        while (is(TokenType::String)) value += tokens_[pos_++].value;  // 'a' 'b' concatenates
        return std::make_unique<LiteralNode>(token.offset, Value(std::move(value)));
      }
      case TokenType::Name:
        if (token.value == "true" || token.value == "True") return std::make_unique<LiteralNode>(token.offset, Value(true));
        if (token.value == "false" || token.value == "False") return std::make_unique<LiteralNode>(token.offset, Value(false));
        if (token.value == "none" || token.value == "None") return std::make_unique<LiteralNode>(token.offset, Value(None{}));
        return std::make_unique<NameNode>(token.offset, token.value);
      case TokenType::OpenParen: {
        NodePtr inner = expression_sequence();
        expect(TokenType::CloseParen, "')'");
        return inner;
      }
      case TokenType::OpenBracket: {
        auto list = std::make_unique<SequenceNode>(Node::Kind::ListLiteral, token.offset);
        while (!is(TokenType::CloseBracket)) {
          list->items.push_back(expression());
          if (!is(TokenType::Comma)) break;
          ++pos_;
        }
        expect(TokenType::CloseBracket, "']'");
        return list;
      }
      case TokenType::OpenBrace: {
        auto dict = std::make_unique<DictNode>(token.offset);
        while (!is(TokenType::CloseBrace)) {
          NodePtr key = expression();
          expect(TokenType::Colon, "':' in a dict literal");
          dict->items.emplace_back(std::move(key), expression());
          if (!is(TokenType::Comma)) break;
          ++pos_;
        }
        expect(TokenType::CloseBrace, "'}'");
        return dict;
      }
      default:
        fail_at(token.offset, "unexpected '" + token.value + "'");
    }
  }

  std::string_view source_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

}  // namespace

Body parse_template(std::string_view source) { return Parser(source, tokenize(source)).run(); }

}  // namespace tokenmill::jinja
