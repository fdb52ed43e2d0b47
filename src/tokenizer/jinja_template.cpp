// The evaluator: walks the syntax tree, writing text into the output. Variables live in a chain
// of scopes (template, for loop, macro call); like Jinja, a `set` inside a loop or macro stays
// there, and namespace() objects carry state out. Macros resolve free names in the scope they
// are called from, as @huggingface/jinja does.
#include "tokenizer/jinja_template.h"

#include <algorithm>
#include <cmath>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_error.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_text.h"

namespace tokenmill::jinja {

namespace {

// Deep enough for any real template; stops runaway recursion before the stack does.
constexpr int kMaxCallDepth = 256;

enum class Flow { Normal, Break, Continue };

struct Scope {
  Scope* parent = nullptr;
  Object vars;

  const Value* lookup(std::string_view name) const {
    for (const Scope* s = this; s; s = s->parent) {
      if (const Value* v = s->vars.find(name)) return v;
    }
    return nullptr;
  }
};

// Python slice semantics, shared by lists and strings (whose elements are code points).
std::vector<size_t> slice_indices(size_t size, const Value& start_v, const Value& stop_v, const Value& step_v) {
  const int64_t n = static_cast<int64_t>(size);
  const int64_t step = step_v.is_undefined() || step_v.is_none() ? 1 : step_v.integer();
  if (step == 0) throw RuntimeError("slice step cannot be zero");
  const auto bound = [&](const Value& v, int64_t fallback) {
    if (v.is_undefined() || v.is_none()) return fallback;
    int64_t i = v.integer();
    if (i < 0) i += n;
    return step > 0 ? std::clamp<int64_t>(i, 0, n) : std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t start = bound(start_v, step > 0 ? 0 : n - 1);
  const int64_t stop = bound(stop_v, step > 0 ? n : -1);
  std::vector<size_t> indices;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) indices.push_back(static_cast<size_t>(i));
  return indices;
}

class Interpreter {
 public:
  explicit Interpreter(std::string_view source) : source_(source) {}

  Flow exec(const Body& body, Scope& scope, std::string& out) {
    for (const NodePtr& node : body) {
      const Flow flow = exec_located(*node, scope, out);
      if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
  }

  Value eval(const Node& node, Scope& scope) {
    try {
      return eval_node(node, scope);
    } catch (const RuntimeError& e) {
      located_fail(node, e.what());
    }
  }

 private:
  [[noreturn]] void located_fail(const Node& node, const std::string& message) const {
    const SourceLocation where = locate(source_, node.offset);
    throw TemplateError(where.line, where.column, message);
  }

  Flow exec_located(const Node& node, Scope& scope, std::string& out) {
    try {
      return exec_node(node, scope, out);
    } catch (const RuntimeError& e) {
      located_fail(node, e.what());
    }
  }

  Flow exec_node(const Node& node, Scope& scope, std::string& out) {
    switch (node.kind) {
      case Node::Kind::Text:
        out += static_cast<const TextNode&>(node).text;
        return Flow::Normal;
      case Node::Kind::Output:
        out += eval(*static_cast<const OutputNode&>(node).expr, scope).to_string();
        return Flow::Normal;
      case Node::Kind::If: {
        const auto& n = static_cast<const IfNode&>(node);
        return exec(eval(*n.test, scope).truthy() ? n.then : n.otherwise, scope, out);
      }
      case Node::Kind::For:
        return exec_for(static_cast<const ForNode&>(node), scope, out);
      case Node::Kind::Set:
        exec_set(static_cast<const SetNode&>(node), scope);
        return Flow::Normal;
      case Node::Kind::Macro: {
        const auto& macro = static_cast<const MacroNode&>(node);
        scope.vars.set(macro.name, Value(Function([this, &macro](const CallArgs& args) {
                         return call_macro(macro.params, macro.body, args, *call_scope_, macro.name);
                       })));
        return Flow::Normal;
      }
      case Node::Kind::CallBlock:
        out += call_block(static_cast<const CallBlockNode&>(node), scope).to_string();
        return Flow::Normal;
      case Node::Kind::FilterBlock: {
        const auto& n = static_cast<const FilterBlockNode&>(node);
        std::string body;
        exec(n.body, scope, body);
        out += apply_filter(n.filter->name, Value(body), arguments(n.filter->args, scope)).to_string();
        return Flow::Normal;
      }
      case Node::Kind::Break:
        return Flow::Break;
      case Node::Kind::Continue:
        return Flow::Continue;
      default:
        throw RuntimeError("expression used as a statement");
    }
  }

  void bind_targets(const std::vector<std::string>& targets, const Value& item, Scope& scope) {
    if (targets.size() == 1) {
      scope.vars.set(targets[0], item);
      return;
    }
    if (!item.is_array()) throw RuntimeError("cannot unpack " + item.type_name() + " into " + std::to_string(targets.size()) + " loop variables");
    if (item.array().size() != targets.size()) {
      throw RuntimeError("expected " + std::to_string(targets.size()) + " values to unpack, got " + std::to_string(item.array().size()));
    }
    for (size_t i = 0; i < targets.size(); ++i) scope.vars.set(targets[i], item.array()[i]);
  }

  Flow exec_for(const ForNode& node, Scope& scope, std::string& out) {
    Scope loop_scope{&scope, {}};
    const Value iterable = eval(*node.iterable, loop_scope);
    Array items;
    try {
      if (iterable.is_none()) throw RuntimeError("'NoneType' object is not iterable");
      items = iterate(iterable);
    } catch (const RuntimeError& e) {
      located_fail(*node.iterable, e.what());
    }
    if (node.filter) {
      Array kept;
      for (const Value& item : items) {
        Scope test_scope{&loop_scope, {}};
        bind_targets(node.targets, item, test_scope);
        if (eval(*node.filter, test_scope).truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      exec(node.otherwise, loop_scope, out);
      return Flow::Normal;
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      Object loop;
      loop.set("index", Value(i + 1));
      loop.set("index0", Value(i));
      loop.set("revindex", Value(n - i));
      loop.set("revindex0", Value(n - i - 1));
      loop.set("first", Value(i == 0));
      loop.set("last", Value(i == n - 1));
      loop.set("length", Value(n));
      loop.set("previtem", i > 0 ? items[i - 1] : Value());
      loop.set("nextitem", i + 1 < n ? items[i + 1] : Value());
      loop.set("cycle", Value(Function([i](const CallArgs& args) {
                 if (args.positional.empty()) throw RuntimeError("loop.cycle() needs at least one value");
                 return args.positional[static_cast<size_t>(i) % args.positional.size()];
               })));
      loop_scope.vars.set("loop", Value(std::move(loop)));
      bind_targets(node.targets, items[i], loop_scope);
      if (exec(node.body, loop_scope, out) == Flow::Break) break;
    }
    return Flow::Normal;
  }

  void exec_set(const SetNode& node, Scope& scope) {
    Value value;
    if (node.value) {
      value = eval(*node.value, scope);
    } else {
      std::string body;
      exec(node.body, scope, body);
      value = Value(body);
    }
    const Node& target = *node.target;
    if (target.kind == Node::Kind::Name) {
      scope.vars.set(static_cast<const NameNode&>(target).name, std::move(value));
    } else if (target.kind == Node::Kind::TupleLiteral) {
      std::vector<std::string> names;
      for (const NodePtr& item : static_cast<const SequenceNode&>(target).items) {
        if (item->kind != Node::Kind::Name) located_fail(*item, "can only unpack into names");
        names.push_back(static_cast<const NameNode&>(*item).name);
      }
      bind_targets(names, value, scope);
    } else {
      const auto& member = static_cast<const MemberNode&>(target);
      const Value object = eval(*member.object, scope);
      if (!object.is_namespace()) located_fail(target, "cannot assign an attribute of " + object.type_name() + " (only of a namespace)");
      const Value key = eval(*member.key, scope);
      if (!key.is_string()) located_fail(target, "namespace attribute names must be strings");
      object.object().set(key.str(), std::move(value));
    }
  }

  // Binds a macro's (or call block's) parameters and renders its body.
  Value call_macro(const std::vector<Parameter>& params, const Body& body, const CallArgs& args, Scope& parent,
                   const std::string& name) {
    if (depth_ >= kMaxCallDepth) throw RuntimeError("macro calls nested deeper than " + std::to_string(kMaxCallDepth));
    Scope scope{&parent, {}};
    std::vector<bool> bound(params.size(), false);
    for (size_t i = 0; i < params.size() && i < args.positional.size(); ++i) {
      scope.vars.set(params[i].name, args.positional[i]);
      bound[i] = true;
    }
    Object kwargs;
    for (const auto& [key, value] : args.keyword) {
      size_t i = 0;
      while (i < params.size() && params[i].name != key) ++i;
      if (i == params.size()) {
        kwargs.set(key, value);
      } else if (bound[i]) {
        throw RuntimeError("macro '" + name + "' got multiple values for argument '" + key + "'");
      } else {
        scope.vars.set(key, value);
        bound[i] = true;
      }
    }
    for (size_t i = 0; i < params.size(); ++i) {
      if (!bound[i]) scope.vars.set(params[i].name, params[i].default_value ? eval(*params[i].default_value, scope) : Value());
    }
    Array varargs;
    for (size_t i = params.size(); i < args.positional.size(); ++i) varargs.push_back(args.positional[i]);
    scope.vars.set("varargs", Value(std::move(varargs)));
    scope.vars.set("kwargs", Value(std::move(kwargs)));
    std::string out;
    ++depth_;
    exec(body, scope, out);
    --depth_;
    return Value(out);
  }

  Value call_block(const CallBlockNode& node, Scope& scope) {
    Scope caller_scope{&scope, {}};
    caller_scope.vars.set("caller", Value(Function([this, &node, &scope](const CallArgs& args) {
                            return call_macro(node.params, node.body, args, scope, "caller");
                          })));
    const Value callee = eval(*node.call->callee, scope);
    if (!callee.is_function()) located_fail(node, "'" + static_cast<const NameNode&>(*node.call->callee).name + "' is not a macro");
    const CallArgs args = arguments(node.call->args, scope);
    call_scope_ = &caller_scope;
    return callee.function()(args);
  }

  CallArgs arguments(const std::vector<Argument>& args, Scope& scope) {
    CallArgs out;
    for (const Argument& arg : args) {
      Value value = eval(*arg.value, scope);
      switch (arg.kind) {
        case Argument::Kind::Positional:
          out.positional.push_back(std::move(value));
          break;
        case Argument::Kind::Keyword:
          out.keyword.emplace_back(arg.name, std::move(value));
          break;
        case Argument::Kind::Spread:
          for (const Value& item : iterate(value)) out.positional.push_back(item);
          break;
        case Argument::Kind::KeywordSpread:
          if (!value.is_mapping()) located_fail(*arg.value, "argument after ** must be a dict");
          for (const auto& entry : value.object().entries) out.keyword.push_back(entry);
          break;
      }
    }
    return out;
  }

  static std::string describe(const Node& node) {
    if (node.kind == Node::Kind::Name) return "'" + static_cast<const NameNode&>(node).name + "'";
    if (node.kind == Node::Kind::Member) {
      const auto& key = static_cast<const LiteralNode&>(*static_cast<const MemberNode&>(node).key);
      if (key.kind == Node::Kind::Literal && key.value.is_string()) return "'" + key.value.str() + "'";
    }
    return "the expression";
  }

  Value member(const Value& object, const Value& key) {
    if (object.is_object()) {
      if (!key.is_string()) return Value();
      if (const Value* found = object.object().find(key.str())) return *found;
      return builtin_attribute(object, key.str());
    }
    if (object.is_array() || object.is_string()) {
      if (key.is_string()) return builtin_attribute(object, key.str());
      if (!key.is_int()) return Value();
      if (object.is_array()) {
        const int64_t size = static_cast<int64_t>(object.array().size());
        const int64_t i = key.integer() < 0 ? key.integer() + size : key.integer();
        return i >= 0 && i < size ? object.array()[i] : Value();
      }
      const std::vector<size_t> offsets = code_point_offsets(object.str());
      const int64_t size = static_cast<int64_t>(offsets.size()) - 1;
      const int64_t i = key.integer() < 0 ? key.integer() + size : key.integer();
      if (i < 0 || i >= size) return Value();
      return Value(object.str().substr(offsets[i], offsets[i + 1] - offsets[i]));
    }
    return Value();
  }

  Value slice(const SliceNode& node, Scope& scope) {
    const Value object = eval(*node.object, scope);
    const auto part = [&](const NodePtr& p) { return p ? eval(*p, scope) : Value(); };
    const Value start = part(node.start), stop = part(node.stop), step = part(node.step);
    if (object.is_array()) {
      Array out;
      for (size_t i : slice_indices(object.array().size(), start, stop, step)) out.push_back(object.array()[i]);
      return Value(std::move(out));
    }
    if (object.is_string()) {
      const std::vector<size_t> offsets = code_point_offsets(object.str());
      std::string out;
      for (size_t i : slice_indices(offsets.size() - 1, start, stop, step)) {
        out += object.str().substr(offsets[i], offsets[i + 1] - offsets[i]);
      }
      return Value(out);
    }
    if (object.is_undefined()) return Value();
    throw RuntimeError("cannot slice " + object.type_name());
  }

  Value arithmetic(const std::string& op, const Value& a, const Value& b) {
    const bool numbers = (a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool());
    if (op == "~") return Value(a.to_string() + b.to_string());
    if (op == "+") {
      if (a.is_array() && b.is_array()) {
        Array out = a.array();
        out.insert(out.end(), b.array().begin(), b.array().end());
        return Value(std::move(out));
      }
      if (a.is_string() && b.is_string()) return Value(a.str() + b.str());
    }
    if (op == "*" && (a.is_string() || a.is_array()) && (b.is_int() || b.is_bool())) {
      if (a.is_string()) {
        std::string out;
        for (int64_t i = 0; i < b.integer(); ++i) out += a.str();
        return Value(out);
      }
      Array out;
      for (int64_t i = 0; i < b.integer(); ++i) out.insert(out.end(), a.array().begin(), a.array().end());
      return Value(std::move(out));
    }
    if (!numbers) {
      const auto scalar = [](const Value& v) { return v.is_string() || v.is_number() || v.is_bool(); };
      if (op == "+" && (a.is_string() || b.is_string()) && scalar(a) && scalar(b)) {
        return Value(a.to_string() + b.to_string());  // "n=" + 3: lenient, as @huggingface/jinja
      }
      throw RuntimeError("unsupported operand types for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
    }
    const bool as_float = a.is_float() || b.is_float();
    if (op == "/") {
      if (b.number() == 0) throw RuntimeError("division by zero");
      return Value(a.number() / b.number());
    }
    if (op == "**") {
      const double r = std::pow(a.number(), b.number());
      return as_float || b.integer() < 0 ? Value(r) : Value(static_cast<int64_t>(std::llround(r)));
    }
    if (as_float) {
      const double x = a.number(), y = b.number();
      if ((op == "//" || op == "%") && y == 0) throw RuntimeError("division by zero");
      if (op == "+") return Value(x + y);
      if (op == "-") return Value(x - y);
      if (op == "*") return Value(x * y);
      if (op == "//") return Value(std::floor(x / y));
      return Value(x - std::floor(x / y) * y);  // %: the sign of the divisor, as in Python
    }
    const int64_t x = a.integer(), y = b.integer();
    if ((op == "//" || op == "%") && y == 0) throw RuntimeError("division by zero");
    if (op == "+") return Value(x + y);
    if (op == "-") return Value(x - y);
    if (op == "*") return Value(x * y);
    int64_t q = x / y;
    if ((x % y != 0) && ((x < 0) != (y < 0))) --q;  // floor division
    if (op == "//") return Value(q);
    return Value(x - q * y);
  }

  Value binary(const BinaryNode& node, Scope& scope) {
    const Value left = eval(*node.left, scope);
    if (node.op == "and") return left.truthy() ? eval(*node.right, scope) : left;
    if (node.op == "or") return left.truthy() ? left : eval(*node.right, scope);
    const Value right = eval(*node.right, scope);
    if (node.op == "==") return Value(equals(left, right));
    if (node.op == "!=") return Value(!equals(left, right));
    if (node.op == "in") return Value(contains(right, left));
    if (node.op == "not in") return Value(!contains(right, left));
    if (node.op == "<") return Value(compare(left, right) < 0);
    if (node.op == ">") return Value(compare(left, right) > 0);
    if (node.op == "<=") return Value(compare(left, right) <= 0);
    if (node.op == ">=") return Value(compare(left, right) >= 0);
    return arithmetic(node.op, left, right);
  }

  Value eval_node(const Node& node, Scope& scope) {
    switch (node.kind) {
      case Node::Kind::Literal:
        return static_cast<const LiteralNode&>(node).value;
      case Node::Kind::ListLiteral:
      case Node::Kind::TupleLiteral: {
        Array items;
        for (const NodePtr& item : static_cast<const SequenceNode&>(node).items) items.push_back(eval(*item, scope));
        return Value(std::move(items));
      }
      case Node::Kind::DictLiteral: {
        Object dict;
        for (const auto& [key, value] : static_cast<const DictNode&>(node).items) {
          dict.set(eval(*key, scope).to_string(), eval(*value, scope));
        }
        return Value(std::move(dict));
      }
      case Node::Kind::Name: {
        const Value* v = scope.lookup(static_cast<const NameNode&>(node).name);
        return v ? *v : Value();
      }
      case Node::Kind::Member: {
        const auto& n = static_cast<const MemberNode&>(node);
        return member(eval(*n.object, scope), eval(*n.key, scope));
      }
      case Node::Kind::Slice:
        return slice(static_cast<const SliceNode&>(node), scope);
      case Node::Kind::Call: {
        const auto& n = static_cast<const CallNode&>(node);
        const Value callee = eval(*n.callee, scope);
        if (!callee.is_function()) {
          throw RuntimeError(describe(*n.callee) + " is not callable (it is " + callee.type_name() + ")");
        }
        const CallArgs args = arguments(n.args, scope);
        call_scope_ = &scope;
        return callee.function()(args);
      }
      case Node::Kind::Filter: {
        const auto& n = static_cast<const FilterNode&>(node);
        return apply_filter(n.name, eval(*n.operand, scope), arguments(n.args, scope));
      }
      case Node::Kind::Test: {
        const auto& n = static_cast<const FilterNode&>(node);
        return Value(apply_test(n.name, eval(*n.operand, scope), arguments(n.args, scope)) != n.negate);
      }
      case Node::Kind::Unary: {
        const auto& n = static_cast<const UnaryNode&>(node);
        const Value v = eval(*n.operand, scope);
        if (n.op == "not") return Value(!v.truthy());
        if (!v.is_number() && !v.is_bool()) throw RuntimeError("bad operand type for unary " + n.op + ": '" + v.type_name() + "'");
        if (n.op == "+") return v.is_float() ? v : Value(v.integer());
        return v.is_float() ? Value(-v.number()) : Value(-v.integer());
      }
      case Node::Kind::Binary:
        return binary(static_cast<const BinaryNode&>(node), scope);
      case Node::Kind::Conditional: {
        const auto& n = static_cast<const ConditionalNode&>(node);
        if (eval(*n.test, scope).truthy()) return eval(*n.then, scope);
        return n.otherwise ? eval(*n.otherwise, scope) : Value();
      }
      default:
        throw RuntimeError("statement used as an expression");
    }
  }

  std::string_view source_;
  Scope* call_scope_ = nullptr;  // the scope of the call being made: a macro's parent scope
  int depth_ = 0;
};

}  // namespace

Template::Template(std::string source) : source_(std::move(source)), body_(parse_template(source_)) {}

std::string Template::render(const nlohmann::ordered_json& variables, const RenderOptions& options) const {
  if (!variables.is_object()) throw Error("chat template variables must be a JSON object");
  Scope globals{nullptr, make_globals(options)};
  Scope top{&globals, {}};
  for (const auto& [key, value] : variables.items()) top.vars.set(key, Value::from_json(value));
  Interpreter interpreter(source_);
  std::string out;
  interpreter.exec(body_, top, out);
  return out;
}

}  // namespace tokenmill::jinja
