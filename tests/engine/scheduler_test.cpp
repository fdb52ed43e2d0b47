// The paged KV cache and the continuous-batching scheduler on a synthetic model: paged and
// contiguous caches give the same logits; sequences batched together, resumed after preemption
// or started from the prefix cache generate exactly what they generate alone; the prefix cache
// never crosses salts; cancellation and the queue bound work.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/random.h"
#include "engine/engine.h"
#include "engine/kv_blocks.h"
#include "model/model_files.h"
#include "tokenizer/tokenizer.h"

namespace tokenmill::engine {
namespace {

struct Fixture {
  model::Model model;
  tokenizer::Tokenizer tokenizer;
  kernels::ThreadPool pool{2};

  explicit Fixture(model::Arch arch = model::Arch::Llama)
      : model(model::Model::load(testing::synthetic_model(arch, model::Preset::Tiny, "F32"))),
        tokenizer(tokenizer::Tokenizer::from_gguf(model.file())) {}
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

std::vector<int32_t> prompt_tokens(uint64_t seed, size_t n) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& id : t) id = 3 + static_cast<int32_t>(rng.next_u64() % 256);  // byte tokens
  return t;
}

// Collects what a sequence produced.
struct Collector : SequenceSink {
  std::vector<int32_t> tokens;
  std::vector<GeneratedToken> details;
  std::optional<SequenceReport> report;
  int64_t stop_after = -1;  // return false from on_token after this many tokens

  bool on_token(const GeneratedToken& t) override {
    tokens.push_back(t.token);
    details.push_back(t);
    return stop_after < 0 || static_cast<int64_t>(tokens.size()) < stop_after;
  }
  void on_finish(const SequenceReport& r) override {
    EXPECT_FALSE(report.has_value()) << "on_finish called twice";
    report = r;
  }
};

SequenceRequest greedy(std::vector<int32_t> prompt, int64_t max_tokens, std::string salt = "") {
  SequenceRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  r.cache_salt = std::move(salt);
  return r;
}

SchedulerConfig config(int64_t kv_blocks, int64_t step_tokens = 64) {
  SchedulerConfig c;
  c.kv_blocks = kv_blocks;
  c.kv_type = gguf::TensorType::F32;
  c.step_tokens = step_tokens;
  return c;
}

void run_until_idle(Scheduler& s) {
  for (int i = 0; i < 100000 && s.has_work(); ++i) s.step();
  ASSERT_FALSE(s.has_work());
}

// What one sequence generates on its own, through the plain contiguous cache.
std::vector<int32_t> generate_alone(const std::vector<int32_t>& prompt, int64_t max_tokens) {
  Fixture& f = fixture();
  model::Forward forward(f.model, f.pool);
  model::ContiguousCache cache(f.model.hparams(), 2048, gguf::TensorType::F32);
  std::vector<int32_t> out;
  std::vector<int32_t> feed = prompt;
  for (int64_t i = 0; i < max_tokens; ++i) {
    const model::SequenceInput in{&cache, feed, model::Logits::Last};
    const auto logits = forward.run(std::span(&in, 1));
    const auto token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (f.tokenizer.is_end_of_generation(token)) break;
    out.push_back(token);
    feed = {token};
  }
  return out;
}

TEST(PagedCache, SameLogitsAsContiguousCache) {
  Fixture& f = fixture();
  model::Forward paged_forward(f.model, f.pool), plain_forward(f.model, f.pool);
  KvBlockPool pool(f.model.hparams(), 16, gguf::TensorType::F16);
  // Blocks handed out in a scrambled order, so pages are not adjacent in the arena.
  std::vector<BlockId> hold;
  for (int i = 0; i < 5; ++i) hold.push_back(*pool.allocate());
  pool.release(hold[1]);
  pool.release(hold[3]);
  PagedCache a(pool, 512), b(pool, 512);
  const auto& hp = f.model.hparams();
  model::ContiguousCache ca(hp, 512, gguf::TensorType::F16), cb(hp, 512, gguf::TensorType::F16);
  const auto pa = prompt_tokens(1, 70), pb = prompt_tokens(2, 33);
  // A prefill of two sequences at once, then decode steps of both together.
  for (int step = 0; step < 6; ++step) {
    const std::vector<int32_t> ta = step == 0 ? pa : std::vector<int32_t>{int32_t(10 + step)};
    const std::vector<int32_t> tb = step == 0 ? pb : std::vector<int32_t>{int32_t(50 + step)};
    const model::SequenceInput paged[] = {{&a, ta, model::Logits::Last}, {&b, tb, model::Logits::All}};
    const model::SequenceInput plain[] = {{&ca, ta, model::Logits::Last}, {&cb, tb, model::Logits::All}};
    const auto got = paged_forward.run(paged);
    const auto want = plain_forward.run(plain);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin())) << "step " << step;
  }
  EXPECT_EQ(a.size(), 75);
  EXPECT_EQ(a.blocks().size(), 3u);
  EXPECT_EQ(b.blocks().size(), 2u);
  a.clear();
  EXPECT_EQ(pool.free_blocks(), 16 - 3 - 2);
}

TEST(PagedCache, TruncateCopiesASharedBlockBeforeItIsWritten) {
  Fixture& f = fixture();
  KvBlockPool pool(f.model.hparams(), 4, gguf::TensorType::F32);
  PagedCache a(pool, 256);
  a.reserve(64);
  a.commit(64);
  PagedCache b(pool, 256);
  b.adopt(a.blocks());
  EXPECT_EQ(b.size(), 64);
  EXPECT_EQ(pool.refs(a.blocks()[1]), 2);
  b.truncate(40);  // position 40 lies in the shared second block
  EXPECT_EQ(b.blocks()[0], a.blocks()[0]);
  EXPECT_NE(b.blocks()[1], a.blocks()[1]);
  EXPECT_EQ(pool.refs(a.blocks()[1]), 1);
  EXPECT_EQ(pool.free_blocks(), 1);
  EXPECT_THROW(b.reserve(1000), Error);  // beyond its capacity
  PagedCache c(pool, 256);
  EXPECT_THROW(c.reserve(64), Error);  // one block left, two needed
}

// Eight sequences of different lengths, batched together with prefill chunks mixed into decode
// steps, each generate what they generate alone.
TEST(Scheduler, BatchedSequencesGenerateWhatTheyGenerateAlone) {
  Fixture& f = fixture();
  Scheduler s(f.model, f.tokenizer, f.pool, config(64, 48));
  std::vector<std::shared_ptr<Collector>> sinks;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 8; ++i) {
    prompts.push_back(prompt_tokens(100 + i, 5 + 23 * i));
    sinks.push_back(std::make_shared<Collector>());
    s.submit(greedy(prompts.back(), 12), sinks.back());
    if (i % 3 == 0) s.step();  // later requests arrive while earlier ones decode
  }
  run_until_idle(s);
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(sinks[i]->report) << i;
    EXPECT_FALSE(sinks[i]->tokens.empty());
    EXPECT_EQ(sinks[i]->tokens, generate_alone(prompts[i], 12)) << "sequence " << i;
    EXPECT_EQ(sinks[i]->report->prompt_tokens, static_cast<int64_t>(prompts[i].size()));
    EXPECT_EQ(sinks[i]->report->completion_tokens, static_cast<int64_t>(sinks[i]->tokens.size()));
  }
  const SchedulerStats st = s.stats();
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.kv_blocks_used, st.prefix_cache_blocks);  // only the cache holds blocks now
}

TEST(Scheduler, PrefixCacheHitsWithinASaltOnly) {
  Fixture& f = fixture();
  Scheduler s(f.model, f.tokenizer, f.pool, config(64));
  const auto prompt = prompt_tokens(7, 150);
  auto run = [&](const std::string& salt, std::vector<int32_t> p) {
    auto sink = std::make_shared<Collector>();
    s.submit(greedy(std::move(p), 6, salt), sink);
    run_until_idle(s);
    return sink;
  };
  const auto first = run("tenant-a", prompt);
  EXPECT_EQ(first->report->cached_tokens, 0);
  const auto second = run("tenant-a", prompt);
  EXPECT_EQ(second->report->cached_tokens, 128);  // four whole blocks; the last token is always computed
  EXPECT_EQ(second->tokens, first->tokens);
  const auto other = run("tenant-b", prompt);
  EXPECT_EQ(other->report->cached_tokens, 0);
  // A prompt sharing 100 tokens reuses the three blocks they fill.
  auto longer = std::vector<int32_t>(prompt.begin(), prompt.begin() + 100);
  const auto tail = prompt_tokens(8, 60);
  longer.insert(longer.end(), tail.begin(), tail.end());
  const auto shared = run("tenant-a", longer);
  EXPECT_EQ(shared->report->cached_tokens, 96);
  EXPECT_EQ(shared->tokens, generate_alone(longer, 6));
  EXPECT_EQ(s.stats().prefix_hit_tokens, 128 + 96);
}

// Too little KV memory for everything at once: sequences are preempted and resumed, and every
// one still generates exactly its solo output.
TEST(Scheduler, PreemptionUnderMemoryPressureKeepsOutputsExact) {
  Fixture& f = fixture();
  Scheduler s(f.model, f.tokenizer, f.pool, config(8, 64));  // 256 positions in all
  std::vector<std::shared_ptr<Collector>> sinks;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 5; ++i) {
    prompts.push_back(prompt_tokens(300 + i, 60 + 10 * i));
    sinks.push_back(std::make_shared<Collector>());
    s.submit(greedy(prompts.back(), 40), sinks.back());
  }
  run_until_idle(s);
  int preemptions = 0;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(sinks[i]->report);
    EXPECT_NE(sinks[i]->report->reason, FinishReason::Error) << sinks[i]->report->error;
    EXPECT_EQ(sinks[i]->tokens, generate_alone(prompts[i], 40)) << "sequence " << i;
    preemptions += sinks[i]->report->preemptions;
  }
  EXPECT_GT(preemptions, 0);
  EXPECT_EQ(s.stats().preemptions, preemptions);
}

TEST(Scheduler, CancelFreesEverythingWithinAStep) {
  Fixture& f = fixture();
  Scheduler s(f.model, f.tokenizer, f.pool, config(32));
  auto a = std::make_shared<Collector>(), b = std::make_shared<Collector>();
  const uint64_t ia = s.submit(greedy(prompt_tokens(1, 40), 500), a);
  s.submit(greedy(prompt_tokens(2, 40), 3), b);
  for (int i = 0; i < 4; ++i) s.step();
  EXPECT_FALSE(a->report);
  s.cancel(ia);
  s.step();
  ASSERT_TRUE(a->report);
  EXPECT_EQ(a->report->reason, FinishReason::Cancelled);
  EXPECT_EQ(a->report->completion_tokens, static_cast<int64_t>(a->tokens.size()));
  run_until_idle(s);
  EXPECT_EQ(b->report->reason, FinishReason::Length);
  EXPECT_EQ(s.stats().kv_blocks_used, s.stats().prefix_cache_blocks);
  // A queued sequence is cancelled before it ever runs.
  auto c = std::make_shared<Collector>();
  s.cancel(s.submit(greedy(prompt_tokens(3, 10), 5), c));
  s.step();
  ASSERT_TRUE(c->report);
  EXPECT_EQ(c->report->reason, FinishReason::Cancelled);
  EXPECT_TRUE(c->tokens.empty());
}

TEST(Scheduler, SinkStopsAndLogprobs) {
  Fixture& f = fixture();
  Scheduler s(f.model, f.tokenizer, f.pool, config(16));
  auto sink = std::make_shared<Collector>();
  sink->stop_after = 3;
  SequenceRequest r = greedy(prompt_tokens(5, 20), 50);
  r.top_logprobs = 2;
  s.submit(std::move(r), sink);
  run_until_idle(s);
  EXPECT_EQ(sink->report->reason, FinishReason::Sink);
  ASSERT_EQ(sink->tokens.size(), 3u);
  for (const auto& t : sink->details) {
    ASSERT_EQ(t.top.size(), 2u);
    EXPECT_EQ(t.top[0].token, t.token);  // greedy takes the most likely token
    EXPECT_FLOAT_EQ(t.top[0].logprob, t.logprob);
    EXPECT_LE(t.top[1].logprob, t.top[0].logprob);
    EXPECT_LT(t.logprob, 0.0f);
  }
}

TEST(Scheduler, RejectsWhatCanNeverRunAndBoundsTheQueue) {
  Fixture& f = fixture();
  SchedulerConfig c = config(4);
  c.max_queued = 2;
  Scheduler s(f.model, f.tokenizer, f.pool, c);
  EXPECT_EQ(s.context_length(), 128);  // capped by the KV budget
  auto sink = std::make_shared<Collector>();
  EXPECT_THROW(s.submit(greedy({}, 5), sink), Error);
  EXPECT_THROW(s.submit(greedy(prompt_tokens(1, 100), 29), sink), Error);
  EXPECT_THROW(s.submit(greedy({100000}, 5), sink), Error);
  s.submit(greedy(prompt_tokens(1, 10), 5), std::make_shared<Collector>());
  s.submit(greedy(prompt_tokens(2, 10), 5), std::make_shared<Collector>());
  EXPECT_THROW(s.submit(greedy(prompt_tokens(3, 10), 5), sink), QueueFull);
  run_until_idle(s);
  EXPECT_NO_THROW(s.submit(greedy(prompt_tokens(3, 10), 5), sink));
  s.close(false);
  EXPECT_THROW(s.submit(greedy(prompt_tokens(3, 10), 5), sink), QueueFull);
  run_until_idle(s);
  EXPECT_EQ(sink->report->reason, FinishReason::Length);
}

// The engine thread serves two models; stop() lets the work in flight finish.
TEST(Engine, ServesSeveralModelsAndDrainsOnStop) {
  Fixture& f = fixture();
  static Fixture qwen(model::Arch::Qwen2);
  Engine engine(2);
  Scheduler& a = engine.add("llama", f.model, f.tokenizer, config(16));
  Scheduler& b = engine.add("qwen", qwen.model, qwen.tokenizer, config(16));
  EXPECT_THROW(engine.add("llama", f.model, f.tokenizer, config(16)), Error);
  EXPECT_EQ(engine.find("qwen"), &b);
  EXPECT_EQ(engine.find("nope"), nullptr);
  engine.start();
  auto sa = std::make_shared<Collector>(), sb = std::make_shared<Collector>();
  a.submit(greedy(prompt_tokens(1, 30), 20), sa);
  b.submit(greedy(prompt_tokens(1, 30), 20), sb);
  engine.stop(false);
  ASSERT_TRUE(sa->report && sb->report);
  EXPECT_EQ(sa->report->reason, FinishReason::Length);
  EXPECT_EQ(sb->report->reason, FinishReason::Length);
  EXPECT_EQ(sa->tokens, generate_alone(prompt_tokens(1, 30), 20));
}

}  // namespace
}  // namespace tokenmill::engine
