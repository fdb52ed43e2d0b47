// libFuzzer entry point for the GGUF reader: every input either opens or is rejected with a
// FormatError. Anything else (crash, sanitizer report, other exception, out-of-memory) is a bug.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "gguf/file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The reader maps files, so each input goes through a real file in /dev/shm (fast, no disk).
  static const std::string path = "/dev/shm/tokenmill-fuzz-" + std::to_string(::getpid()) + ".gguf";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    auto file = tokenmill::gguf::File::open(path);
    uint64_t sum = 0;
    for (const auto& t : file.tensors())  // touch every byte the reader vouched for
      for (uint64_t i = 0; i < t.n_bytes; i += 4096) sum += t.data[i];
    (void)sum;
  } catch (const tokenmill::gguf::FormatError&) {
  }
  return 0;
}
