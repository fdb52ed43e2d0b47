// What the CPU can do, and which instruction-set path the kernels take. The binary is built for
// baseline x86-64; the *_avx2.cpp / *_avx512.cpp files are compiled with those ISAs' flags and
// may only run after this file has said the machine (and the OS, which must save the wider
// registers) supports them.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace tokenmill::kernels {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool bmi2 = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
};

// Reads CPUID and XGETBV. A feature whose registers the OS does not save counts as absent.
CpuFeatures detect_cpu_features();

// The kernel paths, each a superset of the one before. avx2 needs AVX2+FMA+F16C+BMI2 (what the
// _avx2 files are compiled with); avx512 needs that plus AVX-512 F/BW/VL/DQ and VNNI, so a
// Skylake-X without VNNI runs the avx2 path.
enum class Isa { scalar, avx2, avx512 };

std::string_view isa_name(Isa isa);
std::optional<Isa> isa_from_name(std::string_view name);
bool isa_supported(Isa isa, const CpuFeatures& cpu);
Isa best_isa(const CpuFeatures& cpu);

// The path to use: the best the CPU has, unless `forced` (the value of TOKENMILL_ISA, may be
// null or empty) names one. Throws tokenmill::Error for an unknown name or an ISA the CPU lacks.
Isa choose_isa(const CpuFeatures& cpu, const char* forced);

// This machine's features and the path all kernels use, both decided once on first use.
const CpuFeatures& cpu_features();
Isa active_isa();

// Every path this CPU can run, scalar first (tests compare each against scalar).
std::vector<Isa> supported_isas();

}  // namespace tokenmill::kernels
