#include "maas/plans.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "common/error.h"
#include "maas/money.h"
#include "maas/names.h"

namespace tokenmill::maas {
namespace {

using nlohmann::json;

constexpr TimeMs kMinute = 60'000;
constexpr TimeMs kDay = 24 * 60 * kMinute;
constexpr int64_t kMaxMultiplierMilli = 1'000'000;  // x1000
constexpr int64_t kMaxWindowLimitMilli = int64_t{1'000'000'000'000'000};

// Multipliers and limits are decimals; JSON numbers are read through their shortest text form
// so that 0.1 means exactly one tenth, never a binary fraction.
int64_t milli_from_json(const json& v, int64_t max_milli, const std::string& what) {
  std::string text;
  if (v.is_string()) text = v.get<std::string>();
  else if (v.is_number()) text = v.dump();
  else throw Error(what + " must be a number");
  const int64_t value = parse_fixed(text, 3, max_milli, what);
  if (value < 0) throw Error(what + " must not be negative");
  return value;
}

std::string milli_text(int64_t milli) { return format_fixed(milli, 3); }

const json& member(const json& obj, const char* key, const std::string& where) {
  if (!obj.contains(key)) throw Error(where + " needs \"" + key + "\"");
  return obj.at(key);
}

std::string string_member(const json& obj, const char* key, const std::string& where) {
  const json& v = member(obj, key, where);
  if (!v.is_string()) throw Error(where + ": \"" + key + "\" must be a string");
  return v.get<std::string>();
}

// "14:30" -> minute of the day.
int parse_clock(const std::string& text, const std::string& what) {
  if (text.size() != 5 || text[2] != ':' || !std::isdigit(static_cast<unsigned char>(text[0])) ||
      !std::isdigit(static_cast<unsigned char>(text[1])) || !std::isdigit(static_cast<unsigned char>(text[3])) ||
      !std::isdigit(static_cast<unsigned char>(text[4]))) {
    throw Error(what + " must be HH:MM, got '" + text.substr(0, 20) + "'");
  }
  const int h = (text[0] - '0') * 10 + (text[1] - '0');
  const int m = (text[3] - '0') * 10 + (text[4] - '0');
  if (h > 24 || m > 59 || (h == 24 && m != 0)) throw Error(what + " is not a time of day: '" + text + "'");
  return h * 60 + m;
}

// "+08:00" / "-05:30" / "Z" -> minutes east of UTC.
int parse_utc_offset(const std::string& text) {
  if (text == "Z" || text == "UTC") return 0;
  if (text.size() != 6 || (text[0] != '+' && text[0] != '-')) {
    throw Error("utc_offset must look like +08:00, got '" + text.substr(0, 20) + "'");
  }
  const int minutes = parse_clock(text.substr(1), "utc_offset");
  if (minutes > 14 * 60) throw Error("utc_offset is beyond +-14:00: '" + text + "'");
  return text[0] == '-' ? -minutes : minutes;
}

std::string clock_text(int minute) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d:%02d", minute / 60, minute % 60);
  return buf;
}

std::string offset_text(int minutes) {
  const int m = std::abs(minutes);
  return (minutes < 0 ? "-" : "+") + clock_text(m);
}

}  // namespace

TimeMs parse_duration(std::string_view text) {
  if (text.size() < 2 || text.size() > 12) throw Error("a duration looks like 90s, 30m, 5h, 7d or 2w");
  const char unit = text.back();
  TimeMs scale = 0;
  switch (unit) {
    case 's': scale = 1000; break;
    case 'm': scale = kMinute; break;
    case 'h': scale = 60 * kMinute; break;
    case 'd': scale = kDay; break;
    case 'w': scale = 7 * kDay; break;
    default: throw Error("a duration ends in s, m, h, d or w: '" + std::string(text) + "'");
  }
  const int64_t count = parse_fixed(text.substr(0, text.size() - 1), 0, 1'000'000'000, "a duration");
  if (count <= 0) throw Error("a duration must be positive: '" + std::string(text) + "'");
  return count * scale;
}

std::string format_duration(TimeMs ms) {
  static constexpr std::pair<TimeMs, char> kUnits[] = {
      {7 * kDay, 'w'}, {kDay, 'd'}, {60 * kMinute, 'h'}, {kMinute, 'm'}, {1000, 's'}};
  for (const auto& [scale, unit] : kUnits) {
    if (ms % scale == 0) return std::to_string(ms / scale) + unit;
  }
  return std::to_string(ms / 1000) + "s";
}

Plan parse_plan(const json& d) {
  if (!d.is_object()) throw Error("a plan definition must be a JSON object");
  static const std::set<std::string> kKnown = {"name",        "period",     "models", "model_multipliers",
                                               "peak_hours",  "token_weights", "windows"};
  for (const auto& [k, v] : d.items()) {
    if (!kKnown.count(k)) throw Error("a plan definition has an unknown field \"" + k.substr(0, 40) + "\"");
  }
  Plan p;
  p.name = string_member(d, "name", "a plan");
  check_name(p.name, "plan name");
  const std::string where = "plan '" + p.name + "'";
  p.period_ms = parse_duration(string_member(d, "period", where));

  if (d.contains("models")) {
    if (!d["models"].is_array()) throw Error(where + ": \"models\" must be an array of model names");
    for (const json& m : d["models"]) {
      if (!m.is_string()) throw Error(where + ": \"models\" must be an array of model names");
      check_model_name(m.get<std::string>());
      p.models.push_back(m.get<std::string>());
    }
  }
  if (d.contains("model_multipliers")) {
    if (!d["model_multipliers"].is_object()) throw Error(where + ": \"model_multipliers\" must be an object");
    for (const auto& [model, v] : d["model_multipliers"].items()) {
      check_model_name(model);
      p.model_multipliers_milli[model] = milli_from_json(v, kMaxMultiplierMilli, where + " multiplier of " + model);
    }
  }
  if (d.contains("peak_hours")) {
    if (!d["peak_hours"].is_array()) throw Error(where + ": \"peak_hours\" must be an array");
    for (const json& ph : d["peak_hours"]) {
      if (!ph.is_object()) throw Error(where + ": each peak_hours entry must be an object");
      PeakHours h;
      h.from_minute = parse_clock(string_member(ph, "from", where + " peak_hours"), "peak_hours.from");
      h.to_minute = parse_clock(string_member(ph, "to", where + " peak_hours"), "peak_hours.to");
      if (h.from_minute == h.to_minute) throw Error(where + ": a peak_hours entry covers no time");
      if (ph.contains("utc_offset")) h.utc_offset_minutes = parse_utc_offset(string_member(ph, "utc_offset", where));
      h.multiplier_milli = milli_from_json(member(ph, "multiplier", where + " peak_hours"), kMaxMultiplierMilli,
                                           where + " peak multiplier");
      p.peak_hours.push_back(h);
    }
  }
  if (d.contains("token_weights")) {
    const json& w = d["token_weights"];
    if (!w.is_object()) throw Error(where + ": \"token_weights\" must be an object");
    for (const auto& [k, v] : w.items()) {
      int64_t* slot = k == "input" ? &p.token_weights.input_milli
                      : k == "cached_input" ? &p.token_weights.cached_input_milli
                      : k == "output" ? &p.token_weights.output_milli
                                      : nullptr;
      if (!slot) throw Error(where + ": token_weights has an unknown field \"" + k.substr(0, 40) + "\"");
      *slot = milli_from_json(v, kMaxMultiplierMilli, where + " token weight " + k);
    }
  }
  const json& windows = member(d, "windows", where);
  if (!windows.is_array() || windows.empty()) throw Error(where + " needs at least one window");
  std::set<std::string> names;
  for (const json& wj : windows) {
    if (!wj.is_object()) throw Error(where + ": each window must be an object");
    PlanWindow w;
    w.name = string_member(wj, "name", where + " window");
    check_name(w.name, "window name");
    if (!names.insert(w.name).second) throw Error(where + " has two windows named '" + w.name + "'");
    w.duration_ms = parse_duration(string_member(wj, "duration", where + " window " + w.name));
    const std::string anchor = wj.contains("anchor") ? string_member(wj, "anchor", where) : "period";
    if (anchor == "first_use") w.anchor = WindowAnchor::FirstUse;
    else if (anchor == "period") w.anchor = WindowAnchor::Period;
    else throw Error(where + " window " + w.name + ": anchor is first_use or period, got '" + anchor.substr(0, 40) + "'");
    const std::string unit = string_member(wj, "unit", where + " window " + w.name);
    if (unit == "prompts") w.unit = WindowUnit::Prompts;
    else if (unit == "weighted_tokens") w.unit = WindowUnit::WeightedTokens;
    else throw Error(where + " window " + w.name + ": unit is prompts or weighted_tokens, got '" + unit.substr(0, 40) + "'");
    w.limit_milli = milli_from_json(member(wj, "limit", where + " window " + w.name), kMaxWindowLimitMilli,
                                    where + " window " + w.name + " limit");
    if (w.limit_milli == 0) throw Error(where + " window " + w.name + ": the limit must be positive");
    w.code = w.duration_ms < kDay ? 1308 : 1310;
    p.windows.push_back(w);
  }
  return p;
}

json plan_to_json(const Plan& p) {
  json d;
  d["name"] = p.name;
  d["period"] = format_duration(p.period_ms);
  d["models"] = p.models;
  json mm = json::object();
  for (const auto& [model, m] : p.model_multipliers_milli) mm[model] = milli_text(m);
  d["model_multipliers"] = mm;
  json peaks = json::array();
  for (const PeakHours& h : p.peak_hours) {
    peaks.push_back({{"from", clock_text(h.from_minute)},
                     {"to", clock_text(h.to_minute)},
                     {"utc_offset", offset_text(h.utc_offset_minutes)},
                     {"multiplier", milli_text(h.multiplier_milli)}});
  }
  d["peak_hours"] = peaks;
  d["token_weights"] = {{"input", milli_text(p.token_weights.input_milli)},
                        {"cached_input", milli_text(p.token_weights.cached_input_milli)},
                        {"output", milli_text(p.token_weights.output_milli)}};
  json windows = json::array();
  for (const PlanWindow& w : p.windows) {
    windows.push_back({{"name", w.name},
                       {"duration", format_duration(w.duration_ms)},
                       {"anchor", w.anchor == WindowAnchor::FirstUse ? "first_use" : "period"},
                       {"unit", w.unit == WindowUnit::Prompts ? "prompts" : "weighted_tokens"},
                       {"limit", milli_text(w.limit_milli)}});
  }
  d["windows"] = windows;
  return d;
}

bool plan_covers(const Plan& plan, std::string_view model) {
  return plan.models.empty() || std::find(plan.models.begin(), plan.models.end(), model) != plan.models.end();
}

int64_t model_multiplier(const Plan& plan, std::string_view model) {
  const auto it = plan.model_multipliers_milli.find(std::string(model));
  return it == plan.model_multipliers_milli.end() ? 1000 : it->second;
}

int64_t peak_multiplier(const Plan& plan, TimeMs now) {
  int64_t best = 1000;
  bool matched = false;
  for (const PeakHours& h : plan.peak_hours) {
    const int64_t local_minutes = now / kMinute + h.utc_offset_minutes;
    const int minute = static_cast<int>(((local_minutes % 1440) + 1440) % 1440);
    const bool inside = h.from_minute < h.to_minute ? (minute >= h.from_minute && minute < h.to_minute)
                                                    : (minute >= h.from_minute || minute < h.to_minute);
    if (inside && (!matched || h.multiplier_milli > best)) {
      best = h.multiplier_milli;
      matched = true;
    }
  }
  return best;
}

int64_t window_amount(const Plan& plan, WindowUnit unit, const TokenUsage& tokens, int64_t model_mult_milli,
                      int64_t peak_mult_milli) {
  // base is in milli-units; the two multipliers are milli too, hence the division by 10^6.
  unsigned __int128 base = 1000;
  if (unit == WindowUnit::WeightedTokens) {
    const int64_t uncached = std::max<int64_t>(0, tokens.prompt - tokens.cached);
    base = static_cast<unsigned __int128>(uncached) * plan.token_weights.input_milli +
           static_cast<unsigned __int128>(tokens.cached) * plan.token_weights.cached_input_milli +
           static_cast<unsigned __int128>(tokens.output) * plan.token_weights.output_milli;
  }
  const unsigned __int128 scaled = base * static_cast<unsigned __int128>(model_mult_milli) *
                                   static_cast<unsigned __int128>(peak_mult_milli);
  const unsigned __int128 amount = (scaled + 999'999) / 1'000'000;
  if (amount > static_cast<unsigned __int128>(kMaxWindowLimitMilli) * 1000) throw Error("plan usage out of range");
  return static_cast<int64_t>(amount);
}

TimeMs fresh_window_start(const PlanWindow& window, const Subscription& sub, TimeMs now) {
  if (window.anchor == WindowAnchor::FirstUse || now < sub.period_start) return now;
  return sub.period_start + (now - sub.period_start) / window.duration_ms * window.duration_ms;
}

}  // namespace tokenmill::maas
