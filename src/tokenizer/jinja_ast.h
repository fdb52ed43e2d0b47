// The syntax tree of a chat template: statements (text, output, if, for, set, macro, call,
// filter blocks, break, continue) and expressions. Every node keeps its source offset so that
// evaluation errors can name the template line and column.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace tokenmill::jinja {

struct Node {
  enum class Kind {
    // expressions
    Literal, ListLiteral, TupleLiteral, DictLiteral, Name, Member, Slice, Call, Filter, Test,
    Unary, Binary, Conditional,
    // statements
    Text, Output, If, For, Set, Macro, CallBlock, FilterBlock, Break, Continue,
  };
  Node(Kind k, uint32_t at) : kind(k), offset(at) {}
  virtual ~Node() = default;
  Kind kind;
  uint32_t offset;
};
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct LiteralNode : Node {
  LiteralNode(uint32_t at, Value v) : Node(Kind::Literal, at), value(std::move(v)) {}
  Value value;
};

// [a, b] and (a, b): both evaluate to lists; tuples are also assignment targets.
struct SequenceNode : Node {
  using Node::Node;
  std::vector<NodePtr> items;
};

struct DictNode : Node {
  explicit DictNode(uint32_t at) : Node(Kind::DictLiteral, at) {}
  std::vector<std::pair<NodePtr, NodePtr>> items;
};

struct NameNode : Node {
  NameNode(uint32_t at, std::string n) : Node(Kind::Name, at), name(std::move(n)) {}
  std::string name;
};

// a.b (attribute, a string literal key) or a[expr] (subscript).
struct MemberNode : Node {
  MemberNode(uint32_t at, NodePtr o, NodePtr k, bool sub)
      : Node(Kind::Member, at), object(std::move(o)), key(std::move(k)), subscript(sub) {}
  NodePtr object;
  NodePtr key;
  bool subscript;
};

struct SliceNode : Node {
  explicit SliceNode(uint32_t at) : Node(Kind::Slice, at) {}
  NodePtr object, start, stop, step;  // start/stop/step may be null
};

struct Argument {
  enum class Kind { Positional, Keyword, Spread, KeywordSpread } kind = Kind::Positional;
  std::string name;  // for Keyword
  NodePtr value;
};

struct CallNode : Node {
  explicit CallNode(uint32_t at) : Node(Kind::Call, at) {}
  NodePtr callee;
  std::vector<Argument> args;
};

// value | name(args) and value is [not] name(args).
struct FilterNode : Node {
  FilterNode(Kind k, uint32_t at) : Node(k, at) {}
  NodePtr operand;  // null in a {% filter %} block
  std::string name;
  std::vector<Argument> args;
  bool negate = false;  // tests only
};

struct UnaryNode : Node {
  UnaryNode(uint32_t at, std::string o, NodePtr a) : Node(Kind::Unary, at), op(std::move(o)), operand(std::move(a)) {}
  std::string op;  // "not", "-", "+"
  NodePtr operand;
};

struct BinaryNode : Node {
  BinaryNode(uint32_t at, std::string o, NodePtr l, NodePtr r)
      : Node(Kind::Binary, at), op(std::move(o)), left(std::move(l)), right(std::move(r)) {}
  std::string op;  // and or == != < > <= >= in "not in" + - ~ * / // % **
  NodePtr left, right;
};

// a if test else b; without "else" the value is Undefined when the test fails.
struct ConditionalNode : Node {
  explicit ConditionalNode(uint32_t at) : Node(Kind::Conditional, at) {}
  NodePtr test, then, otherwise;
};

struct TextNode : Node {
  TextNode(uint32_t at, std::string t) : Node(Kind::Text, at), text(std::move(t)) {}
  std::string text;
};

struct OutputNode : Node {
  OutputNode(uint32_t at, NodePtr e) : Node(Kind::Output, at), expr(std::move(e)) {}
  NodePtr expr;
};

struct IfNode : Node {
  explicit IfNode(uint32_t at) : Node(Kind::If, at) {}
  NodePtr test;
  Body then, otherwise;  // elif chains nest an IfNode in `otherwise`
};

struct ForNode : Node {
  explicit ForNode(uint32_t at) : Node(Kind::For, at) {}
  std::vector<std::string> targets;  // one name, or several to unpack each item into
  NodePtr iterable;
  NodePtr filter;  // `for x in xs if cond`, may be null
  Body body, otherwise;
};

struct SetNode : Node {
  explicit SetNode(uint32_t at) : Node(Kind::Set, at) {}
  NodePtr target;  // NameNode, TupleLiteral of names, or MemberNode (namespace attribute)
  NodePtr value;   // null for a {% set x %}...{% endset %} block
  Body body;
};

struct Parameter {
  std::string name;
  NodePtr default_value;  // may be null
};

struct MacroNode : Node {
  explicit MacroNode(uint32_t at) : Node(Kind::Macro, at) {}
  std::string name;
  std::vector<Parameter> params;
  Body body;
};

// {% call(params) macro(args) %}body{% endcall %}: the body is passed as `caller`.
struct CallBlockNode : Node {
  explicit CallBlockNode(uint32_t at) : Node(Kind::CallBlock, at) {}
  std::unique_ptr<CallNode> call;
  std::vector<Parameter> params;
  Body body;
};

struct FilterBlockNode : Node {
  explicit FilterBlockNode(uint32_t at) : Node(Kind::FilterBlock, at) {}
  std::unique_ptr<FilterNode> filter;
  Body body;
};

}  // namespace tokenmill::jinja
