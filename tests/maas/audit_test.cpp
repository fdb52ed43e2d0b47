// The audit hash chain detects a changed, removed or reordered entry; masking removes secrets.
#include <gtest/gtest.h>

#include "maas/audit.h"

namespace tokenmill::maas {
namespace {

std::vector<AuditEntry> chain(int n) {
  std::vector<AuditEntry> out;
  std::string prev;
  for (int i = 1; i <= n; ++i) {
    AuditEntry e{i, 1000 + i, "cli", "tenants.create", "t" + std::to_string(i), "{}", prev, ""};
    e.hash = audit_hash(e);
    prev = e.hash;
    out.push_back(e);
  }
  return out;
}

TEST(Audit, IntactChainVerifies) {
  EXPECT_EQ(first_broken_audit_entry(chain(5)), 0);
  EXPECT_EQ(first_broken_audit_entry({}), 0);
}

TEST(Audit, AnyChangeIsDetected) {
  auto changed = chain(5);
  changed[2].target = "evil";
  EXPECT_EQ(first_broken_audit_entry(changed), 3);

  auto removed = chain(5);
  removed.erase(removed.begin() + 1);
  EXPECT_EQ(first_broken_audit_entry(removed), 3);

  auto first_removed = chain(3);
  first_removed.erase(first_removed.begin());
  EXPECT_EQ(first_broken_audit_entry(first_removed), 2);

  auto swapped = chain(4);
  std::swap(swapped[1], swapped[2]);
  EXPECT_EQ(first_broken_audit_entry(swapped), 3);

  // Rewriting an entry and its own hash still breaks the next link.
  auto rehashed = chain(4);
  rehashed[1].details = R"({"amount":"1000000"})";
  rehashed[1].hash = audit_hash(rehashed[1]);
  EXPECT_EQ(first_broken_audit_entry(rehashed), 3);
}

TEST(Audit, FieldBoundariesMatter) {
  AuditEntry a{1, 1, "ab", "c", "", "{}", "", ""};
  AuditEntry b{1, 1, "a", "bc", "", "{}", "", ""};
  EXPECT_NE(audit_hash(a), audit_hash(b));
}

TEST(Audit, MaskSecrets) {
  const nlohmann::json d = {{"key", "abc123.topsecret"},
                            {"key_id", "abc123"},
                            {"nested", {{"api_key", "x.y"}, {"token", "eyJ.eyJ.sig"}}},
                            {"list", {{{"secret", "s"}}}},
                            {"amount", "5"}};
  const std::string masked = mask_secrets(d).dump();
  EXPECT_EQ(masked.find("topsecret"), std::string::npos);
  EXPECT_EQ(masked.find("x.y"), std::string::npos);
  EXPECT_EQ(masked.find("sig"), std::string::npos);
  EXPECT_NE(masked.find("abc123.****"), std::string::npos);
  EXPECT_NE(masked.find("\"key_id\":\"abc123\""), std::string::npos);
  EXPECT_NE(masked.find("\"amount\":\"5\""), std::string::npos);
}

}  // namespace
}  // namespace tokenmill::maas
