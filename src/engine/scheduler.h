// Continuous batching for one model. Every step runs a single forward pass over all running
// sequences: one token for each sequence that is generating, and with the tokens left in the
// step's budget, chunks of the prompts being read (chunked prefill), so a long prompt never
// stalls the streams already running. KV memory is paged (kv_blocks.h) under a fixed budget;
// prompt blocks are kept in a prefix cache (prefix_cache.h) for later requests with the same
// salt. When memory runs out, the most recently admitted sequence is preempted: its blocks go
// back (the full ones into the prefix cache, so resuming is cheap) and it waits at the front of
// the queue to recompute its tokens; no other sequence is touched.
//
// Admission is first-in first-out from a bounded queue. submit() and cancel() may be called from
// any thread; step() runs on the engine's thread (engine.h), which also calls the sinks.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "engine/kv_blocks.h"
#include "engine/prefix_cache.h"
#include "engine/sampler.h"
#include "engine/token_constraint.h"
#include "kernels/thread_pool.h"
#include "model/forward.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace tokenmill::engine {

struct SequenceRequest {
  std::vector<int32_t> prompt;
  int64_t max_tokens = 16;
  SamplingParams sampling;
  int top_logprobs = -1;  // < 0: no logprobs; else the sampled token's and this many alternatives
  std::string cache_salt;  // prefix-cache partition (the tenant)
  bool ignore_eos = false;  // end-of-generation tokens are generated like any other
  std::unique_ptr<TokenConstraint> constraint;  // optional
};

struct GeneratedToken {
  int32_t token = 0;
  float logprob = 0;               // when logprobs were asked for
  std::vector<TokenLogprob> top;   // the top_logprobs alternatives, most likely first
};

enum class FinishReason {
  EndOfGeneration,  // the model (or a completed constraint) ended it
  Length,           // max_tokens
  ContextFull,
  Sink,             // the sink ended it (a stop sequence)
  Cancelled,
  Error,
};

struct SequenceReport {
  FinishReason reason = FinishReason::EndOfGeneration;
  std::string error;  // for FinishReason::Error
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens found in the prefix cache on admission
  int64_t completion_tokens = 0;
  int preemptions = 0;
  // Seconds from submit() to the first forward pass, to the first token, to the end.
  double queued_seconds = 0, first_token_seconds = 0, total_seconds = 0;
};

// Receives a sequence's output on the engine thread; must return quickly and not throw.
class SequenceSink {
 public:
  virtual ~SequenceSink() = default;
  // Every generated token (not the end-of-generation one); false ends the sequence.
  virtual bool on_token(const GeneratedToken& token) = 0;
  virtual void on_finish(const SequenceReport& report) = 0;  // exactly once, last
};

// The queue is full, or the scheduler is shutting down: try again later.
class QueueFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SchedulerConfig {
  int64_t kv_blocks = 0;                        // the KV budget in blocks of kKvBlockPositions
  gguf::TensorType kv_type = gguf::TensorType::F16;
  int64_t context = 0;                          // positions per sequence; 0 = the model's training context
  int64_t step_tokens = 256;                    // tokens per forward pass: decode tokens + prefill chunks
  int64_t max_running = 64;
  int64_t max_queued = 256;
};

// A snapshot for /metrics, updated after every step.
struct SchedulerStats {
  int64_t running = 0, waiting = 0;
  int64_t kv_blocks_used = 0, kv_blocks_total = 0, prefix_cache_blocks = 0;
  int64_t prompt_tokens = 0, prefix_hit_tokens = 0, generated_tokens = 0;  // totals
  int64_t preemptions = 0, steps = 0;
};

class Scheduler {
 public:
  // `wake` is called (from any thread) when new work arrives, to rouse the engine thread.
  Scheduler(const model::Model& model, const tokenizer::Tokenizer& tokenizer, kernels::ThreadPool& pool,
            const SchedulerConfig& config, std::function<void()> wake = {});
  ~Scheduler();

  // Queues a sequence; returns its id. Throws QueueFull, or tokenmill::Error for a request that
  // could never run (empty prompt, prompt + max_tokens beyond context_length(), bad ids).
  uint64_t submit(SequenceRequest request, std::shared_ptr<SequenceSink> sink);
  // Ends a sequence wherever it is; its sink gets on_finish(Cancelled) by the end of the next
  // step. Unknown or finished ids are ignored.
  void cancel(uint64_t id);
  // Stops admitting (submit throws QueueFull); with `cancel_all` also cancels everything.
  void close(bool cancel_all);

  bool has_work() const;
  void step();

  // Positions one sequence may use: the model's context, capped by the whole KV budget.
  int64_t context_length() const { return context_; }
  SchedulerStats stats() const;

 private:
  struct Sequence;

  void intake();
  void admit();
  std::vector<int64_t> plan_tokens() const;
  void run_batch();
  bool make_room(Sequence& seq, int64_t n_tokens);
  void preempt(Sequence& seq);
  void after_forward(Sequence& seq, std::span<const float> logits);
  std::optional<int32_t> choose_token(Sequence& seq, std::span<const float> logits);
  void finish(Sequence& seq, FinishReason reason, std::string error = {});
  void remember_blocks(const Sequence& seq);
  void drop_finished();
  void publish_stats();

  const model::Model& model_;
  const tokenizer::Tokenizer& tokenizer_;
  SchedulerConfig config_;
  int64_t context_;
  model::Forward forward_;
  KvBlockPool blocks_;
  PrefixCache prefix_cache_;
  std::function<void()> wake_;

  // Engine thread only.
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;  // in admission order
  std::vector<float> scratch_;
  SchedulerStats totals_;  // counters, copied to stats_ after each step

  // Shared with submitters.
  mutable std::mutex inbox_mutex_;
  std::vector<std::unique_ptr<Sequence>> inbox_;
  std::unordered_set<uint64_t> cancels_;
  int64_t queued_ = 0;  // inbox + waiting, for the queue bound
  bool closed_ = false;
  bool cancel_all_ = false;
  uint64_t next_id_ = 1;

  mutable std::mutex stats_mutex_;
  SchedulerStats stats_;
};

const char* finish_reason_name(FinishReason reason);

}  // namespace tokenmill::engine
