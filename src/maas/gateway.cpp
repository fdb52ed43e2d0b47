#include "maas/gateway.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/error.h"
#include "maas/crypto.h"
#include "maas/keys.h"
#include "maas/money.h"
#include "maas/names.h"
#include "maas/prices.h"

namespace tokenmill::maas {

// Everything settle() needs to price the actual tokens the way admission priced the worst case.
struct Ticket::State {
  Reservation reservation;
  std::optional<ModelPrice> price;  // Billing::Balance
  std::optional<Plan> plan;         // Billing::Plan
  int64_t model_mult_milli = 1000;
  int64_t peak_mult_milli = 1000;
};

namespace {

// JWTs live minutes; one that claims to live longer than a day is refused rather than trusted.
constexpr TimeMs kMaxJwtLifetime = 24 * 3600 * 1000;
constexpr TimeMs kMaxClockSkew = 5 * 60 * 1000;

TimeMs system_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Rejection auth_error(int code, std::string message) {
  return Rejection{401, code, code == code::kAuthMissing ? "missing_api_key" : "invalid_api_key", std::move(message)};
}

Rejection bad_request(std::string message) {
  return Rejection{400, code::kBadParameter, "invalid_request_error", std::move(message)};
}

RequestRef request_ref(const Principal& who, const AdmitRequest& request) {
  RequestRef ref;
  ref.request_id = request.request_id;
  ref.tenant_id = who.tenant_id;
  ref.project_id = who.project_id;
  ref.key_id = who.key_id;
  ref.model = request.model;
  return ref;
}

int64_t seconds_until(TimeMs when, TimeMs now) { return std::max<int64_t>(1, (when - now + 999) / 1000); }

std::string units_text(int64_t milli, WindowUnit unit) {
  return format_fixed(milli, 3) + (unit == WindowUnit::Prompts ? " prompts" : " weighted tokens");
}

}  // namespace

Ticket::Ticket(Gateway* gateway, std::unique_ptr<State> state) : gateway_(gateway), state_(std::move(state)) {}
Ticket::Ticket(Ticket&&) noexcept = default;

Ticket& Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    Ticket dropped(std::move(*this));  // releases what this ticket held
    gateway_ = other.gateway_;
    state_ = std::move(other.state_);
  }
  return *this;
}

Ticket::~Ticket() {
  if (!state_) return;
  try {
    gateway_->store_.release(state_->reservation.tenant_id, state_->reservation.request_id);
  } catch (const std::exception& e) {
    // The reservation stays open; recover() releases it once this instance is gone.
    std::fprintf(stderr, "tokenmill: could not release request %s: %s\n", state_->reservation.request_id.c_str(), e.what());
  }
}

const std::string& Ticket::request_id() const {
  static const std::string kNone;
  return state_ ? state_->reservation.request_id : kNone;
}

Billing Ticket::billing() const { return state_ ? state_->reservation.billing : Billing::None; }

SettleStatus Ticket::settle(const TokenUsage& tokens, Outcome outcome, const std::string& error, int64_t first_token_ms) {
  if (!state_) return SettleStatus::AlreadySettled;
  const SettleStatus status = gateway_->settle(*state_, tokens, outcome, error, first_token_ms);
  state_.reset();
  return status;
}

Gateway::Gateway(Store& store, Clock clock) : store_(store), clock_(clock ? std::move(clock) : Clock(system_now)) {
  instance_id_ = store_.instance_id(clock_());
}

Gateway::~Gateway() {
  {
    std::lock_guard<std::mutex> lock(sweeper_mutex_);
    stopping_ = true;
  }
  sweeper_wake_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

std::variant<Principal, Rejection> Gateway::authenticate(const std::string& credential) {
  if (credential.empty()) {
    return auth_error(code::kAuthMissing, "no API key: send Authorization: Bearer <key> or x-api-key: <key>");
  }
  const TimeMs now = clock_();
  std::optional<KeyRecord> key;
  std::string id;
  std::string secret;
  if (split_key(credential, id, secret)) {
    if (id.size() <= 64) key = store_.find_key(id);
    // A wrong id costs the same hash as a wrong secret: timing does not tell which ids exist.
    const bool valid = verify_secret(key ? *key : KeyRecord{}, secret);
    if (!key || !valid) return auth_error(code::kAuthFailed, "invalid API key");
  } else if (looks_like_jwt(credential)) {
    std::string why;
    const std::optional<JwtClaims> claims = decode_jwt(credential, why);
    if (!claims) return auth_error(code::kTokenInvalid, "invalid token: " + why);
    if (claims->api_key.size() <= 64) key = store_.find_key(claims->api_key);
    if (!key) return auth_error(code::kAuthFailed, "invalid API key");
    if (key->sealed_secret.empty()) {
      return auth_error(code::kTokenInvalid, "this API key was created without JWT support; send the key itself");
    }
    const std::string sealing_key = store_.sealing_key(false);
    if (sealing_key.empty()) return auth_error(code::kAuthFailed, "this server cannot verify JWTs: its master key is missing");
    std::string secret_of_key;
    try {
      secret_of_key = unseal(sealing_key, key->sealed_secret);
    } catch (const Error&) {
      return auth_error(code::kAuthFailed, "this server cannot verify JWTs for this key: its master key has changed");
    }
    if (!jwt_signature_valid(credential, secret_of_key)) {
      return auth_error(code::kTokenSignature, "invalid token: the signature does not verify");
    }
    if (claims->exp <= now) return auth_error(code::kTokenExpired, "the token has expired");
    if (claims->exp - now > kMaxJwtLifetime || claims->timestamp > now + kMaxClockSkew) {
      return auth_error(code::kTokenInvalid, "invalid token: it must be issued now and live at most 24 hours");
    }
  } else {
    return auth_error(code::kTokenInvalid, "malformed API key: expected id.secret or a JWT");
  }
  if (key->revoked_at != 0) return auth_error(code::kAuthFailed, "this API key has been revoked");
  if (key->expires_at != 0 && key->expires_at <= now) return auth_error(code::kTokenExpired, "this API key has expired");
  const std::optional<Tenant> tenant = store_.tenant_by_id(key->tenant_id);
  if (!tenant) return auth_error(code::kAuthFailed, "invalid API key");
  return Principal{tenant->id, tenant->name, key->project_id, key->id, key->models, key->admin, key->limits};
}

Rejection Gateway::reject(const Principal& who, const AdmitRequest& request, Rejection rejection) {
  LedgerRecord r;
  static_cast<RequestRef&>(r) = request_ref(who, request);
  r.tokens.prompt = request.prompt_tokens;
  r.outcome = Outcome::Rejected;
  r.code = rejection.code;
  r.error = rejection.message;
  r.admitted_at = r.finished_at = clock_();
  store_.record_rejection(r);
  return rejection;
}

std::variant<Ticket, Rejection> Gateway::admit(const Principal& who, const AdmitRequest& request) {
  // Parameter errors come first and are not recorded: their strings are not safe to store.
  if (!is_valid_request_id(request.request_id)) {
    return bad_request("a request id must be 1 to 128 letters, digits, '.', '_', '-' or ':'");
  }
  try {
    check_model_name(request.model);
  } catch (const Error& e) {
    return bad_request(e.what());
  }
  if (request.prompt_tokens < 0 || request.prompt_tokens > kMaxRequestTokens) {
    return bad_request("the prompt is out of range: " + std::to_string(request.prompt_tokens) + " tokens");
  }
  if (request.max_tokens < 1 || request.max_tokens > kMaxRequestTokens) {
    return bad_request("max_tokens must be between 1 and " + std::to_string(kMaxRequestTokens) + ", got " +
                       std::to_string(request.max_tokens));
  }
  if (!who.models.empty() && std::find(who.models.begin(), who.models.end(), request.model) == who.models.end()) {
    return reject(who, request, Rejection{403, code::kNoPermission, "permission_denied",
                                          "this API key may not use model '" + request.model + "'"});
  }

  const TimeMs now = clock_();
  auto state = std::make_unique<Ticket::State>();
  Reservation& r = state->reservation;
  static_cast<RequestRef&>(r) = request_ref(who, request);
  r.prompt_tokens = request.prompt_tokens;
  r.max_tokens = request.max_tokens;
  r.tokens = request.prompt_tokens + request.max_tokens;
  r.now = now;
  if (who.limits.any()) r.counters.push_back({"key:" + who.key_id, who.limits});
  if (const Limits model_limits = store_.model_limits(request.model); model_limits.any()) {
    r.counters.push_back({"model:" + request.model, model_limits});
  }

  const TokenUsage worst{request.prompt_tokens, 0, request.max_tokens, 0};
  if (const std::optional<Subscription> sub = store_.subscription_of(who.tenant_id)) {
    std::optional<Plan> plan = store_.plan_by_id(sub->plan_id);
    if (!plan) throw Error("internal: subscription " + std::to_string(sub->id) + " names a missing plan");
    if (now >= sub->period_end) {
      return reject(who, request, Rejection{403, code::kPlanExpired, "plan_expired",
                                            "the subscription to plan '" + plan->name + "' ended at " +
                                                format_utc(sub->period_end) + "; it must be renewed"});
    }
    if (!plan_covers(*plan, request.model)) {
      return reject(who, request, Rejection{403, code::kModelNotInPlan, "model_not_in_plan",
                                            "plan '" + plan->name + "' does not include model '" + request.model + "'"});
    }
    r.billing = Billing::Plan;
    r.subscription_id = sub->id;
    state->model_mult_milli = model_multiplier(*plan, request.model);
    state->peak_mult_milli = peak_multiplier(*plan, now);
    for (const PlanWindow& w : plan->windows) {
      r.windows.push_back({w.name, w.duration_ms, fresh_window_start(w, *sub, now), w.limit_milli,
                           window_amount(*plan, w.unit, worst, state->model_mult_milli, state->peak_mult_milli), w.code});
    }
    state->plan = std::move(plan);
  } else {
    std::optional<ModelPrice> price = store_.find_price(request.model);
    if (!price) {
      return reject(who, request, Rejection{403, code::kNoPermission, "model_not_priced",
                                            "model '" + request.model + "' has no price in this server's catalogue"});
    }
    r.billing = Billing::Balance;
    r.amount_micros = cost_micros(tier_for(*price, request.prompt_tokens), worst);
    state->price = std::move(price);
  }

  const AdmitResult result = store_.admit(r, instance_id_);
  switch (result.status) {
    case AdmitStatus::Admitted:
      return Ticket(this, std::move(state));
    case AdmitStatus::Duplicate:
      return Rejection{409, code::kBadParameter, "duplicate_request_id",
                       "request id '" + request.request_id + "' is already in use"};
    case AdmitStatus::Balance: {
      const std::string currency = store_.currency();
      Rejection rej{402, code::kBalance, "insufficient_quota",
                    "the balance cannot cover this request: it may cost up to " + format_money(r.amount_micros) + " " +
                        currency + " (" + std::to_string(request.prompt_tokens) + " prompt tokens + max_tokens " +
                        std::to_string(request.max_tokens) + " at list price), " + format_money(result.available_micros) +
                        " " + currency + " available"};
      rej.extra = {{"required", format_money(r.amount_micros)}, {"available", format_money(result.available_micros)}};
      return reject(who, request, std::move(rej));
    }
    case AdmitStatus::Window: {
      const auto w = std::find_if(state->plan->windows.begin(), state->plan->windows.end(),
                                  [&](const PlanWindow& pw) { return pw.name == result.window; });
      const WindowUnit unit = w == state->plan->windows.end() ? WindowUnit::Prompts : w->unit;
      const int64_t needed = std::find_if(r.windows.begin(), r.windows.end(), [&](const WindowCharge& c) {
                               return c.window == result.window;
                             })->amount_milli;
      Rejection rej{429, result.code, "plan_window_exhausted",
                    "the usage limit of plan window '" + result.window + "' is reached (this request needs " +
                        units_text(needed, unit) + ", " + units_text(result.window_remaining_milli, unit) +
                        " left); it resets at " + format_utc(result.retry_at)};
      rej.retry_after_s = seconds_until(result.retry_at, now);
      rej.next_flush_time = result.retry_at;
      rej.extra = {{"window", result.window},
                   {"required", format_fixed(needed, 3)},
                   {"available", format_fixed(result.window_remaining_milli, 3)}};
      return reject(who, request, std::move(rej));
    }
    case AdmitStatus::Concurrency: {
      Rejection rej{429, code::kConcurrency, "rate_limit_exceeded",
                    "too many concurrent requests for " + result.scope + "; retry when one finishes"};
      rej.retry_after_s = 1;
      return reject(who, request, std::move(rej));
    }
    case AdmitStatus::RequestRate:
    case AdmitStatus::TokenRate: {
      const bool tokens = result.status == AdmitStatus::TokenRate;
      Rejection rej{429, code::kRate, "rate_limit_exceeded",
                    std::string(tokens ? "tokens" : "requests") + "-per-minute limit of " + result.scope +
                        " reached; retry after " + format_utc(result.retry_at)};
      rej.retry_after_s = seconds_until(result.retry_at, now);
      return reject(who, request, std::move(rej));
    }
  }
  throw Error("internal: unknown admission status");
}

SettleStatus Gateway::settle(Ticket::State& state, const TokenUsage& tokens, Outcome outcome, const std::string& error,
                             int64_t first_token_ms) {
  if (tokens.prompt < 0 || tokens.cached < 0 || tokens.output < 0 || tokens.reasoning < 0 ||
      tokens.cached > tokens.prompt || tokens.reasoning > tokens.output || tokens.prompt > kMaxRequestTokens ||
      tokens.output > kMaxRequestTokens) {
    throw Error("internal: impossible token counts reported for request " + state.reservation.request_id);
  }
  const Reservation& r = state.reservation;
  Settlement s;
  s.request_id = r.request_id;
  s.tenant_id = r.tenant_id;
  s.tokens = tokens.prompt + tokens.output;
  LedgerRecord& rec = s.record;
  static_cast<RequestRef&>(rec) = r;
  rec.tokens = tokens;
  rec.outcome = outcome;
  rec.error = error.substr(0, 500);
  rec.admitted_at = r.now;
  rec.finished_at = clock_();
  rec.first_token_ms = first_token_ms;
  if (r.billing == Billing::Balance) {
    rec.cost_micros = s.cost_micros = cost_micros(tier_for(*state.price, tokens.prompt), tokens);
  } else {
    // A request that failed before producing anything is not counted against the plan.
    const bool free = outcome == Outcome::Error && tokens.output == 0;
    const Plan& plan = *state.plan;
    auto amount = [&](WindowUnit unit) {
      return free ? 0 : window_amount(plan, unit, tokens, state.model_mult_milli, state.peak_mult_milli);
    };
    rec.plan_prompts_milli = amount(WindowUnit::Prompts);
    rec.plan_tokens_milli = amount(WindowUnit::WeightedTokens);
    for (const PlanWindow& w : plan.windows) {
      s.window_amounts.emplace_back(w.name, w.unit == WindowUnit::Prompts ? rec.plan_prompts_milli : rec.plan_tokens_milli);
    }
  }
  return store_.settle(s);
}

QuotaStatus quota_status(Store& store, int64_t tenant_id, TimeMs now) {
  const std::optional<Tenant> tenant = store.tenant_by_id(tenant_id);
  if (!tenant) throw Error("no tenant with id " + std::to_string(tenant_id));
  QuotaStatus q;
  q.tenant = tenant->name;
  q.balance_micros = tenant->balance_micros;
  q.reserved_micros = tenant->reserved_micros;
  const std::optional<Subscription> sub = store.subscription_of(tenant_id);
  if (!sub) return q;
  const std::optional<Plan> plan = store.plan_by_id(sub->plan_id);
  if (!plan) return q;
  q.billing = Billing::Plan;
  q.plan = plan->name;
  q.period_start = sub->period_start;
  q.period_end = sub->period_end;
  const std::vector<WindowState> states = store.windows(sub->id);
  for (const PlanWindow& w : plan->windows) {
    WindowStatus ws;
    ws.name = w.name;
    ws.unit = w.unit;
    ws.duration_ms = w.duration_ms;
    ws.limit_milli = w.limit_milli;
    const auto st = std::find_if(states.begin(), states.end(), [&](const WindowState& s) { return s.name == w.name; });
    if (st != states.end()) {
      ws.reserved_milli = st->reserved_milli;
      if (!window_expired(st->window_start, w, now)) {
        ws.used_milli = st->used_milli;
        ws.window_start = st->window_start;
        ws.next_reset = st->window_start + w.duration_ms;
      }
    }
    if (ws.window_start == 0 && w.anchor == WindowAnchor::Period) {
      ws.window_start = fresh_window_start(w, *sub, now);
      ws.next_reset = ws.window_start + w.duration_ms;
    }
    ws.remaining_milli = std::max<int64_t>(0, w.limit_milli - ws.used_milli - ws.reserved_milli);
    q.windows.push_back(ws);
  }
  return q;
}

int64_t Gateway::recover() { return store_.recover(clock_()); }

void Gateway::start_recovery_sweeper(std::chrono::milliseconds every) {
  if (sweeper_.joinable()) return;
  sweeper_ = std::thread([this, every] {
    std::unique_lock<std::mutex> lock(sweeper_mutex_);
    while (!sweeper_wake_.wait_for(lock, every, [this] { return stopping_; })) {
      lock.unlock();
      try {
        recover();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "tokenmill: reservation recovery failed: %s\n", e.what());
      }
      lock.lock();
    }
  });
}

}  // namespace tokenmill::maas
