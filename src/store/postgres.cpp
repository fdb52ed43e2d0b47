#include "store/postgres.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace tokenmill::store {
namespace {

constexpr Oid kInt8 = 20, kText = 25, kBytea = 17;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// Throws for a failed command: RetryableError when running the transaction again is correct.
void check(PGresult* result, PGconn* conn, const char* sql) {
  const ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string message = "store: " + std::string(primary ? primary : PQerrorMessage(conn));
  while (!message.empty() && message.back() == '\n') message.pop_back();
  message += " (running \"" + std::string(sql).substr(0, 60) + "\")";
  PQclear(result);
  if (state && (std::strcmp(state, "40001") == 0 || std::strcmp(state, "40P01") == 0)) throw RetryableError(message);
  throw Error(message);
}

class PgStatement final : public Statement {
 public:
  PgStatement(PgConnection& db, const char* sql) : db_(db), sql_(sql) {}

  void bind(int index, int64_t value) override { slot(index, kInt8, 0) = std::to_string(value); }
  void bind(int index, std::string_view text) override { slot(index, kText, 0) = std::string(text); }
  void bind_blob(int index, std::string_view bytes) override { slot(index, kBytea, 1) = std::string(bytes); }
  void bind_null(int index) override {
    slot(index, 0, 0);
    null_[index - 1] = true;
  }

  bool step() override {
    if (!result_) {
      const int n = static_cast<int>(values_.size());
      std::vector<const char*> values(n);
      std::vector<int> lengths(n);
      for (int i = 0; i < n; ++i) {
        values[i] = null_[i] ? nullptr : values_[i].data();
        lengths[i] = static_cast<int>(values_[i].size());
      }
      result_.reset(db_.execute(sql_, n, types_.data(), values.data(), lengths.data(), formats_.data()));
      row_ = -1;
    }
    return ++row_ < PQntuples(result_.get());
  }

  int64_t int64(int column) const override {
    if (PQgetisnull(result_.get(), row_, column)) return 0;
    return std::strtoll(PQgetvalue(result_.get(), row_, column), nullptr, 10);
  }
  std::string text(int column) const override {
    return std::string(PQgetvalue(result_.get(), row_, column),
                       static_cast<size_t>(PQgetlength(result_.get(), row_, column)));
  }
  std::string blob(int column) const override {
    if (PQgetisnull(result_.get(), row_, column)) return {};
    size_t size = 0;
    unsigned char* bytes =
        PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(result_.get(), row_, column)), &size);
    if (!bytes) throw Error("store: cannot decode a bytea column");
    std::string out(reinterpret_cast<const char*>(bytes), size);
    PQfreemem(bytes);
    return out;
  }
  int64_t changes() const override { return result_ ? std::atoll(PQcmdTuples(result_.get())) : 0; }

 private:
  std::string& slot(int index, Oid type, int format) {
    const size_t i = static_cast<size_t>(index - 1);
    if (values_.size() <= i) {
      values_.resize(i + 1);
      types_.resize(i + 1, 0);
      formats_.resize(i + 1, 0);
      null_.resize(i + 1, false);
    }
    types_[i] = type;
    formats_[i] = format;
    null_[i] = false;
    return values_[i];
  }

  PgConnection& db_;
  const char* sql_;
  std::vector<std::string> values_;
  std::vector<Oid> types_;
  std::vector<int> formats_;
  std::vector<bool> null_;
  Result result_;
  int row_ = -1;
};

}  // namespace

std::string redact_url(const std::string& url) {
  std::string out = url;
  const size_t scheme = out.find("://");
  const size_t at = out.find('@');
  if (scheme != std::string::npos && at != std::string::npos && at > scheme) {
    const size_t colon = out.find(':', scheme + 3);
    if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
  }
  for (size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    const size_t end = out.find_first_of("& ", p);
    out.replace(p + 9, (end == std::string::npos ? out.size() : end) - p - 9, "***");
  }
  return out;
}

std::string postgres_placeholders(const char* sql) {
  std::string out;
  int highest = 0;
  bool quoted = false;
  for (const char* p = sql; *p; ++p) {
    if (*p == '\'') quoted = !quoted;
    if (*p != '?' || quoted) {
      out += *p;
      continue;
    }
    int n = 0;
    while (p[1] >= '0' && p[1] <= '9') n = n * 10 + (*++p - '0');
    if (n == 0) n = highest + 1;  // a bare "?" is numbered after the highest so far, as in SQLite
    highest = std::max(highest, n);
    out += '$' + std::to_string(n);
  }
  return out;
}

PgConnection::PgConnection(const std::string& conninfo) : conninfo_(conninfo) {
  // Later keys override the URI's; client_min_messages keeps notices ("already exists,
  // skipping") off stderr.
  const char* keys[] = {"dbname", "application_name", "client_encoding", "options", nullptr};
  const char* values[] = {conninfo.c_str(), "tokenmill", "UTF8", "-c client_min_messages=warning", nullptr};
  conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string why = conn_ ? PQerrorMessage(conn_) : "out of memory";
    while (!why.empty() && why.back() == '\n') why.pop_back();
    PQfinish(conn_);
    conn_ = nullptr;
    throw Error("cannot connect to PostgreSQL at " + redact_url(conninfo) + ": " + why);
  }
}

PgConnection::~PgConnection() { PQfinish(conn_); }

void PgConnection::reconnect_if_lost() {
  if (PQstatus(conn_) == CONNECTION_OK) return;
  PQreset(conn_);
  prepared_.clear();  // the new session has none of them
  if (PQstatus(conn_) != CONNECTION_OK) {
    throw Error("lost the connection to PostgreSQL at " + redact_url(conninfo_) + " and cannot reopen it");
  }
}

std::unique_ptr<Statement> PgConnection::statement(const char* sql) { return std::make_unique<PgStatement>(*this, sql); }

void PgConnection::exec(const char* script) {
  reconnect_if_lost();
  check(PQexec(conn_, script), conn_, script);
}

void PgConnection::rollback() noexcept { PQclear(PQexec(conn_, "ROLLBACK")); }

void PgConnection::lock_until_commit(int64_t key) {
  Query q(*this, "SELECT pg_advisory_xact_lock(?)");
  q.bind(1, key).run();
}

PGresult* PgConnection::execute(const char* sql, int count, const Oid* types, const char* const* values,
                                const int* lengths, const int* formats) {
  reconnect_if_lost();
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    const std::string name = "s" + std::to_string(prepared_.size());
    PGresult* prepared = PQprepare(conn_, name.c_str(), postgres_placeholders(sql).c_str(), count, types);
    check(prepared, conn_, sql);
    PQclear(prepared);
    it = prepared_.emplace(sql, name).first;
  }
  PGresult* result = PQexecPrepared(conn_, it->second.c_str(), count, values, lengths, formats, 0);
  check(result, conn_, sql);
  return result;
}

}  // namespace tokenmill::store
