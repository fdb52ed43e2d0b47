#include "kernels/cpu_features.h"

#include <cpuid.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/error.h"

namespace tokenmill::kernels {
namespace {

struct CpuidRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf) {
  CpuidRegs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

bool bit(uint32_t reg, int n) { return (reg >> n) & 1u; }

// XCR0: which register states the OS saves on a context switch. Read with the raw opcode so
// this file needs no -mxsave.
uint64_t read_xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

constexpr std::array<std::string_view, 3> kIsaNames = {"scalar", "avx2", "avx512"};

}  // namespace

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
  const uint32_t max_leaf = cpuid(0, 0).eax;
  if (max_leaf < 7) return f;
  const CpuidRegs l1 = cpuid(1, 0);
  const bool osxsave = bit(l1.ecx, 27);
  if (!osxsave) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;        // XMM and YMM state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;   // plus opmask, ZMM0-15 high, ZMM16-31
  const CpuidRegs l7 = cpuid(7, 0);
  if (os_avx) {
    f.fma = bit(l1.ecx, 12);
    f.f16c = bit(l1.ecx, 29);
    f.avx2 = bit(l7.ebx, 5);
  }
  f.bmi2 = bit(l7.ebx, 8);
  if (os_avx512) {
    f.avx512f = bit(l7.ebx, 16);
    f.avx512dq = bit(l7.ebx, 17);
    f.avx512bw = bit(l7.ebx, 30);
    f.avx512vl = bit(l7.ebx, 31);
    f.avx512vnni = bit(l7.ecx, 11);
  }
  return f;
}

std::string_view isa_name(Isa isa) { return kIsaNames[static_cast<size_t>(isa)]; }

std::optional<Isa> isa_from_name(std::string_view name) {
  for (size_t i = 0; i < kIsaNames.size(); ++i) {
    if (kIsaNames[i] == name) return static_cast<Isa>(i);
  }
  return std::nullopt;
}

bool isa_supported(Isa isa, const CpuFeatures& cpu) {
  const bool avx2 = cpu.avx2 && cpu.fma && cpu.f16c && cpu.bmi2;
  switch (isa) {
    case Isa::scalar:
      return true;
    case Isa::avx2:
      return avx2;
    case Isa::avx512:
      return avx2 && cpu.avx512f && cpu.avx512bw && cpu.avx512vl && cpu.avx512dq &&
             cpu.avx512vnni;
  }
  return false;
}

Isa best_isa(const CpuFeatures& cpu) {
  if (isa_supported(Isa::avx512, cpu)) return Isa::avx512;
  if (isa_supported(Isa::avx2, cpu)) return Isa::avx2;
  return Isa::scalar;
}

Isa choose_isa(const CpuFeatures& cpu, const char* forced) {
  if (forced == nullptr || *forced == '\0') return best_isa(cpu);
  const std::optional<Isa> isa = isa_from_name(forced);
  if (!isa) {
    throw Error("TOKENMILL_ISA=" + std::string(forced) +
                " is not a kernel path; use scalar, avx2 or avx512");
  }
  if (!isa_supported(*isa, cpu)) {
    throw Error("TOKENMILL_ISA=" + std::string(forced) + " asks for a path this CPU lacks (best: " +
                std::string(isa_name(best_isa(cpu))) + ")");
  }
  return *isa;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect_cpu_features();
  return features;
}

Isa active_isa() {
  static const Isa isa = choose_isa(cpu_features(), std::getenv("TOKENMILL_ISA"));
  return isa;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (isa_supported(isa, cpu_features())) isas.push_back(isa);
  }
  return isas;
}

}  // namespace tokenmill::kernels
