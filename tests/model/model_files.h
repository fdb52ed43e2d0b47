// Model files for the model tests: synthetic models of every architecture (written once per
// test run into a temporary directory), and copies of a file with metadata or tensors changed.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gguf/file.h"
#include "gguf/writer.h"
#include "model/synthetic.h"

namespace tokenmill::testing {

// Shared by the test processes (ctest runs each test in its own): files are written under a
// temporary name and renamed, and the same arguments always give the same bytes, so concurrent
// writers cannot clash.
inline std::filesystem::path test_dir() {
  const auto dir = std::filesystem::temp_directory_path() / "tokenmill-model-tests";
  std::filesystem::create_directories(dir);
  return dir;
}

// A synthetic model with the byte vocabulary, written on first use.
inline std::string synthetic_model(model::Arch arch, model::Preset preset, const std::string& file_type,
                                   uint64_t seed = 1) {
  const std::string name = std::string(model::arch_info(arch).name) + "-" + std::string(model::preset_name(preset)) +
                           "-" + file_type + "-" + std::to_string(seed) + ".gguf";
  const std::string path = (test_dir() / name).string();
  // A file older than this test binary may come from an older generator: write it again.
  std::error_code ec;
  if (!std::filesystem::exists(path) ||
      std::filesystem::last_write_time(path) < std::filesystem::last_write_time("/proc/self/exe", ec)) {
    const model::SyntheticModel m{arch, preset, model::find_file_type(file_type), model::byte_vocabulary(), seed};
    model::write_synthetic_model(m, path);
  }
  return path;
}

// A copy of `src` with metadata keys set (a value) or removed (nullopt), tensors renamed,
// retyped or reshaped by `edit_tensor` (which may also return false to drop a tensor), and
// `extra` tensors added, filled with zeros. Tensor bytes are copied as they are, so a reshape
// must keep the byte count.
struct TensorEdit {
  std::string name;
  gguf::TensorType type;
  std::vector<uint64_t> shape;
};
inline std::string copy_model(const std::string& src, const std::string& dst_name,
                              const std::vector<std::pair<std::string, std::optional<gguf::Value>>>& keys,
                              const std::function<bool(TensorEdit&)>& edit_tensor = {},
                              const std::vector<TensorEdit>& extra = {}) {
  const gguf::File f = gguf::File::open(src);
  gguf::Writer w;
  for (const auto& e : f.metadata()) {
    bool removed = false;
    for (const auto& [key, value] : keys) removed |= key == e.key && !value;
    if (!removed && e.key != "general.alignment") w.set(e.key, e.value);
  }
  for (const auto& [key, value] : keys)
    if (value) w.set(key, *value);
  std::vector<const gguf::TensorInfo*> kept;
  for (const auto& t : f.tensors()) {
    TensorEdit edit{t.name, t.type, t.shape};
    if (edit_tensor && !edit_tensor(edit)) continue;
    w.add_tensor(edit.name, edit.type, edit.shape);
    kept.push_back(&t);
  }
  for (const TensorEdit& t : extra) w.add_tensor(t.name, t.type, t.shape);
  const std::string path = (test_dir() / dst_name).string();
  w.write(path, [&](size_t i, uint8_t* out) {
    if (i < kept.size()) {
      std::copy_n(kept[i]->data, kept[i]->n_bytes, out);
    } else {
      std::fill_n(out, w.tensors()[i].n_bytes, uint8_t{0});
    }
  });
  return path;
}

// A copy of a model keeping only its first n_blocks blocks (NextN blocks dropped too).
inline std::string truncated_model(const std::string& src, const std::string& dst_name, uint32_t n_blocks) {
  const gguf::File f = gguf::File::open(src);
  const std::string arch = f.architecture();
  std::vector<std::pair<std::string, std::optional<gguf::Value>>> keys = {{arch + ".block_count", gguf::Value(n_blocks)}};
  if (f.has(arch + ".nextn_predict_layers")) keys.push_back({arch + ".nextn_predict_layers", gguf::Value(uint32_t{0})});
  return copy_model(src, dst_name, keys, [n_blocks](TensorEdit& t) {
    return t.name.rfind("blk.", 0) != 0 || std::stoul(t.name.substr(4)) < n_blocks;
  });
}

}  // namespace tokenmill::testing
