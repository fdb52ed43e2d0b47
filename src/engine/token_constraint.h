// What a sequence may generate next, beyond what the model prefers: constrained decoding (a
// JSON schema, a forced tool call) plugs into the scheduler's sampling through this interface.
// The scheduler first samples as usual and keeps the token when the constraint allows it;
// only otherwise does it mask the logits and sample again. Both give the model's distribution
// restricted to the allowed tokens, and the first costs one check per token.
#pragma once

#include <cstdint>
#include <span>

namespace tokenmill::engine {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;

  // May `token` come next, when at most `remaining` more tokens may follow it? A constraint
  // that must finish within the budget refuses tokens that would leave it unable to.
  virtual bool allows(int32_t token, int64_t remaining) const = 0;
  // Sets the logit of every token allows() refuses to -infinity; returns how many are left.
  virtual int64_t mask(std::span<float> logits, int64_t remaining) const = 0;
  virtual void accept(int32_t token) = 0;
  // The output is whole: generation ends here, as if the model had ended it.
  virtual bool complete() const = 0;
};

}  // namespace tokenmill::engine
