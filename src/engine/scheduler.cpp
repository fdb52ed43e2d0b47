#include "engine/scheduler.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace tokenmill::engine {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace

struct Scheduler::Sequence {
  Sequence(uint64_t id, SequenceRequest r, std::shared_ptr<SequenceSink> s)
      : id(id), request(std::move(r)), sink(std::move(s)), sampler(request.sampling),
        tokens(request.prompt), submitted(Clock::now()) {}

  uint64_t id;
  SequenceRequest request;
  std::shared_ptr<SequenceSink> sink;
  Sampler sampler;
  std::vector<int32_t> tokens;  // prompt, then every generated token
  std::unique_ptr<PagedCache> cache;  // while admitted
  bool done = false;
  bool admitted_once = false;
  SequenceReport report;
  Clock::time_point submitted;

  int64_t n_generated() const { return static_cast<int64_t>(tokens.size() - request.prompt.size()); }
  std::span<const int32_t> generated() const { return std::span(tokens).subspan(request.prompt.size()); }
  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - cache->size(); }
};

Scheduler::Scheduler(const model::Model& model, const tokenizer::Tokenizer& tokenizer, kernels::ThreadPool& pool,
                     const SchedulerConfig& config, std::function<void()> wake)
    : model_(model), tokenizer_(tokenizer), config_(config), forward_(model, pool),
      blocks_(model.hparams(), config.kv_blocks, config.kv_type), prefix_cache_(blocks_), wake_(std::move(wake)) {
  if (config.step_tokens < 1 || config.max_running < 1 || config.max_queued < 0)
    throw Error("scheduler: step_tokens and max_running must be positive");
  const int64_t model_context = config.context > 0 ? config.context : model.hparams().n_ctx_train;
  context_ = std::min(model_context, blocks_.n_blocks() * kKvBlockPositions);
  if (context_ <= 1) throw Error("scheduler: the context must hold more than one position");
  publish_stats();
}

// Sequences still queued or running hold blocks and sinks; finish them before the pool goes.
Scheduler::~Scheduler() {
  close(true);
  intake();
}

uint64_t Scheduler::submit(SequenceRequest request, std::shared_ptr<SequenceSink> sink) {
  const auto n_prompt = static_cast<int64_t>(request.prompt.size());
  if (n_prompt == 0) throw Error("the prompt is empty");
  if (request.max_tokens < 1) throw Error("max_tokens must be at least 1");
  if (n_prompt + request.max_tokens > context_)
    throw Error("this model's context holds " + std::to_string(context_) + " tokens; the request needs " +
                std::to_string(n_prompt + request.max_tokens) + " (" + std::to_string(n_prompt) + " in the prompt, " +
                std::to_string(request.max_tokens) + " to generate)");
  for (int32_t t : request.prompt)
    if (t < 0 || static_cast<uint32_t>(t) >= model_.hparams().n_vocab)
      throw Error("token id " + std::to_string(t) + " is outside the vocabulary");
  request.sampling.validate();
  uint64_t id;
  {
    std::lock_guard lock(inbox_mutex_);
    if (closed_) throw QueueFull("the server is shutting down");
    if (queued_ >= config_.max_queued) throw QueueFull("the queue is full");
    id = next_id_++;
    inbox_.push_back(std::make_unique<Sequence>(id, std::move(request), std::move(sink)));
    ++queued_;
  }
  if (wake_) wake_();
  return id;
}

void Scheduler::cancel(uint64_t id) {
  {
    std::lock_guard lock(inbox_mutex_);
    cancels_.insert(id);
  }
  if (wake_) wake_();
}

void Scheduler::close(bool cancel_all) {
  {
    std::lock_guard lock(inbox_mutex_);
    closed_ = true;
    cancel_all_ = cancel_all_ || cancel_all;
  }
  if (wake_) wake_();
}

bool Scheduler::has_work() const {
  std::lock_guard lock(inbox_mutex_);
  return !inbox_.empty() || !cancels_.empty() || !waiting_.empty() || !running_.empty();
}

void Scheduler::intake() {
  std::unordered_set<uint64_t> cancels;
  bool cancel_all;
  {
    std::lock_guard lock(inbox_mutex_);
    for (auto& s : inbox_) waiting_.push_back(std::move(s));
    inbox_.clear();
    cancels.swap(cancels_);
    cancel_all = cancel_all_;
  }
  auto cancelled = [&](const Sequence& s) { return cancel_all || cancels.contains(s.id); };
  for (auto& s : running_)
    if (cancelled(*s)) finish(*s, FinishReason::Cancelled);
  for (auto& s : waiting_)
    if (cancelled(*s)) finish(*s, FinishReason::Cancelled);
  drop_finished();
}

void Scheduler::drop_finished() {
  std::erase_if(running_, [](const auto& s) { return s->done; });
  const auto before = waiting_.size();
  std::erase_if(waiting_, [](const auto& s) { return s->done; });
  if (waiting_.size() != before) {
    std::lock_guard lock(inbox_mutex_);
    queued_ -= static_cast<int64_t>(before - waiting_.size());
  }
}

// First in, first out: the head of the queue waits for memory rather than being overtaken.
void Scheduler::admit() {
  while (!waiting_.empty() && static_cast<int64_t>(running_.size()) < config_.max_running) {
    Sequence& seq = *waiting_.front();
    auto cache = std::make_unique<PagedCache>(blocks_, context_);
    // At least the last token is computed, for its logits.
    const int64_t reusable = (static_cast<int64_t>(seq.tokens.size()) - 1) / kKvBlockPositions;
    cache->adopt(prefix_cache_.match(seq.request.cache_salt, seq.tokens, reusable));
    const int64_t need = cache->blocks_needed(static_cast<int64_t>(seq.tokens.size()) - cache->size());
    if (need > blocks_.free_blocks()) prefix_cache_.evict(need - blocks_.free_blocks());
    if (need > blocks_.free_blocks() && !running_.empty()) break;  // the cache's blocks go back
    if (!seq.admitted_once) {
      seq.admitted_once = true;
      seq.report.cached_tokens = cache->size();
      seq.report.queued_seconds = seconds_between(seq.submitted, Clock::now());
      totals_.prefix_hit_tokens += cache->size();
      totals_.prompt_tokens += static_cast<int64_t>(seq.request.prompt.size());
    }
    seq.cache = std::move(cache);
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    std::lock_guard lock(inbox_mutex_);
    --queued_;
  }
}

// Every generating sequence gets its next token; prompts share what is left of the step's
// budget, oldest first. Returns the tokens per running sequence (0: sits this step out).
std::vector<int64_t> Scheduler::plan_tokens() const {
  std::vector<int64_t> n(running_.size(), 0);
  int64_t budget = config_.step_tokens;
  for (size_t i = 0; i < running_.size(); ++i) {
    if (running_[i]->pending() == 1) {
      n[i] = 1;
      --budget;
    }
  }
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    if (running_[i]->pending() > 1) {
      n[i] = std::min(running_[i]->pending(), budget);
      budget -= n[i];
    }
  }
  return n;
}

// Blocks for n more positions of `seq`: free ones, then ones the prefix cache gives up, then
// the newest sequence's. False when `seq` itself was the newest and got preempted.
bool Scheduler::make_room(Sequence& seq, int64_t n) {
  for (;;) {
    const int64_t need = seq.cache->blocks_needed(n);
    if (need > blocks_.free_blocks()) prefix_cache_.evict(need - blocks_.free_blocks());
    if (seq.cache->grow(n)) return true;
    Sequence* victim = running_.back().get();
    preempt(*victim);
    if (victim == &seq) return false;
  }
}

// The newest running sequence goes back to the front of the queue. Its full blocks stay in the
// prefix cache, so it recomputes only what was evicted meanwhile.
void Scheduler::preempt(Sequence& seq) {
  remember_blocks(seq);
  seq.cache.reset();
  ++seq.report.preemptions;
  ++totals_.preemptions;
  waiting_.push_front(std::move(running_.back()));
  running_.pop_back();
  std::lock_guard lock(inbox_mutex_);
  ++queued_;
}

void Scheduler::step() {
  intake();
  admit();
  if (!running_.empty()) run_batch();
  drop_finished();
  publish_stats();
}

void Scheduler::run_batch() {
  std::vector<int64_t> n = plan_tokens();
  for (size_t i = 0; i < running_.size(); ++i)
    if (n[i] > 0 && !make_room(*running_[i], n[i])) break;  // it was the last one
  std::vector<model::SequenceInput> inputs;
  std::vector<Sequence*> sequences;
  for (size_t i = 0; i < running_.size(); ++i) {
    if (n[i] == 0) continue;
    Sequence& seq = *running_[i];
    const bool last_chunk = n[i] == seq.pending();
    inputs.push_back({seq.cache.get(), std::span(seq.tokens).subspan(seq.cache->size(), n[i]),
                      last_chunk ? model::Logits::Last : model::Logits::None});
    sequences.push_back(&seq);
  }
  if (inputs.empty()) return;
  std::span<const float> logits;
  try {
    logits = forward_.run(inputs);
  } catch (const std::exception& e) {
    for (Sequence* seq : sequences) finish(*seq, FinishReason::Error, e.what());
    return;
  }
  ++totals_.steps;
  const int64_t n_vocab = model_.hparams().n_vocab;
  int64_t row = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].logits == model::Logits::None) continue;
    after_forward(*sequences[i], logits.subspan(row++ * n_vocab, n_vocab));
  }
}

void Scheduler::after_forward(Sequence& seq, std::span<const float> logits) {
  if (seq.n_generated() == 0) {
    seq.report.first_token_seconds = seconds_between(seq.submitted, Clock::now());
    remember_blocks(seq);  // the prompt, for later requests that start the same way
  }
  const std::optional<int32_t> token = choose_token(seq, logits);
  if (!token) return finish(seq, FinishReason::Error, "constrained decoding left no token to choose");
  if (!seq.request.ignore_eos && tokenizer_.is_end_of_generation(*token))
    return finish(seq, FinishReason::EndOfGeneration);
  seq.tokens.push_back(*token);
  ++totals_.generated_tokens;
  GeneratedToken out{*token, 0.0f, {}};
  if (seq.request.top_logprobs >= 0) {
    out.logprob = Sampler::logprob_of(logits, *token);
    out.top = Sampler::top_logprobs(logits, seq.request.top_logprobs);
  }
  if (seq.request.constraint) seq.request.constraint->accept(*token);
  if (!seq.sink->on_token(out)) return finish(seq, FinishReason::Sink);
  if (seq.request.constraint && seq.request.constraint->complete()) return finish(seq, FinishReason::EndOfGeneration);
  if (seq.n_generated() >= seq.request.max_tokens) return finish(seq, FinishReason::Length);
  if (static_cast<int64_t>(seq.tokens.size()) >= context_) return finish(seq, FinishReason::ContextFull);
}

// Samples as usual; only when a constraint refuses that token are the logits masked and the
// token drawn again (token_constraint.h).
std::optional<int32_t> Scheduler::choose_token(Sequence& seq, std::span<const float> logits) {
  scratch_.assign(logits.begin(), logits.end());
  const int32_t token = seq.sampler.sample(scratch_, seq.generated());
  TokenConstraint* constraint = seq.request.constraint.get();
  const int64_t remaining = std::min(seq.request.max_tokens - seq.n_generated(),
                                     context_ - static_cast<int64_t>(seq.tokens.size())) - 1;
  if (!constraint || constraint->allows(token, remaining)) return token;
  scratch_.assign(logits.begin(), logits.end());
  if (constraint->mask(scratch_, remaining) == 0) return std::nullopt;
  return seq.sampler.sample(scratch_, seq.generated());
}

void Scheduler::remember_blocks(const Sequence& seq) {
  if (!seq.cache) return;
  const int64_t full = seq.cache->size() / kKvBlockPositions;
  prefix_cache_.insert(seq.request.cache_salt, std::span(seq.tokens).first(full * kKvBlockPositions),
                       seq.cache->blocks().first(full));
}

void Scheduler::finish(Sequence& seq, FinishReason reason, std::string error) {
  if (seq.done) return;
  seq.done = true;
  remember_blocks(seq);
  seq.cache.reset();
  SequenceReport& r = seq.report;
  r.reason = reason;
  r.error = std::move(error);
  r.prompt_tokens = static_cast<int64_t>(seq.request.prompt.size());
  r.completion_tokens = seq.n_generated();
  r.total_seconds = seconds_between(seq.submitted, Clock::now());
  seq.sink->on_finish(r);
}

void Scheduler::publish_stats() {
  std::lock_guard lock(stats_mutex_);
  stats_ = totals_;
  stats_.running = static_cast<int64_t>(running_.size());
  stats_.waiting = static_cast<int64_t>(waiting_.size());
  stats_.kv_blocks_total = blocks_.n_blocks();
  stats_.kv_blocks_used = blocks_.n_blocks() - blocks_.free_blocks();
  stats_.prefix_cache_blocks = prefix_cache_.size();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::EndOfGeneration: return "end_of_generation";
    case FinishReason::Length: return "length";
    case FinishReason::ContextFull: return "context_full";
    case FinishReason::Sink: return "stopped";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
  }
  return "unknown";
}

}  // namespace tokenmill::engine
