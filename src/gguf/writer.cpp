#include "gguf/writer.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <type_traits>

#include "common/error.h"

namespace tokenmill::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;
constexpr uint32_t kVersion = 3;

// Buffered little-endian output to a stdio stream; the host is x86-64, so native order is
// the file's order.
class Out {
 public:
  Out(std::FILE* f, const std::string& path) : f_(f), path_(path) {}

  void bytes(const void* p, size_t n) {
    if (n != 0 && std::fwrite(p, 1, n, f_) != n)
      throw Error(path_ + ": write failed: " + std::strerror(errno));
    pos_ += n;
  }
  template <typename T>
  void scalar(T x) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes(&x, sizeof x);
  }
  void string(const std::string& s) {
    scalar<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const uint8_t zeros[256] = {};
    while (pos_ % alignment != 0) bytes(zeros, std::min<uint64_t>(alignment - pos_ % alignment, sizeof zeros));
  }
  void value(const Value& v) {
    std::visit(
        [this](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            string(x);
          } else if constexpr (std::is_same_v<T, Array>) {
            scalar<uint32_t>(static_cast<uint32_t>(x.element_type));
            scalar<uint64_t>(x.items.size());
            for (const auto& item : x.items) {
              if (item.type() != x.element_type)
                throw Error("GGUF writer: array of " + std::string(value_type_name(x.element_type)) +
                            " holds a " + std::string(value_type_name(item.type())));
              value(item);
            }
          } else if constexpr (std::is_same_v<T, bool>) {
            scalar<uint8_t>(x ? 1 : 0);
          } else {
            scalar<T>(x);
          }
        },
        v.v);
  }
  uint64_t pos() const { return pos_; }

 private:
  std::FILE* f_;
  const std::string& path_;
  uint64_t pos_ = 0;
};

}  // namespace

Writer::Writer(uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw Error("GGUF alignment must be a power of two");
  if (alignment != 32) set("general.alignment", Value(alignment));
}

void Writer::set(const std::string& key, Value value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(value));
}

void Writer::add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> shape) {
  const auto& info = tensor_type_info(type);
  if (shape.empty() || shape.size() > 4) throw Error("tensor '" + name + "': 1 to 4 dimensions required");
  if (name.empty() || name.size() > 63) throw Error("tensor name '" + name + "' must be 1 to 63 bytes");
  if (shape[0] % info.block_elements != 0)
    throw Error("tensor '" + name + "': row length " + std::to_string(shape[0]) +
                " is not a multiple of the " + std::string(info.name) + " block size");
  for (const auto& t : tensors_)
    if (t.name == name) throw Error("duplicate tensor name '" + name + "'");
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  tensors_.push_back({name, type, std::move(shape), n / info.block_elements * info.block_bytes});
}

void Writer::write(const std::string& path, const FillFn& fill) const {
  // A name of its own per writer: two processes writing the same model (tests do) must not
  // interleave their bytes in one temporary file before the rename.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = path + ".partial-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  if (!f) throw Error(tmp + ": cannot create: " + std::strerror(errno));
  Out out(f.get(), tmp);

  out.scalar<uint32_t>(kMagic);
  out.scalar<uint32_t>(kVersion);
  out.scalar<uint64_t>(tensors_.size());
  out.scalar<uint64_t>(metadata_.size());
  for (const auto& [key, value] : metadata_) {
    out.string(key);
    out.scalar<uint32_t>(static_cast<uint32_t>(value.type()));
    out.value(value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    out.string(t.name);
    out.scalar<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (uint64_t d : t.shape) out.scalar<uint64_t>(d);
    out.scalar<uint32_t>(static_cast<uint32_t>(t.type));
    out.scalar<uint64_t>(offset);
    offset += (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  out.pad_to(alignment_);

  std::vector<uint8_t> buffer;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    buffer.assign(tensors_[i].n_bytes, 0);
    fill(i, buffer.data());
    out.bytes(buffer.data(), buffer.size());
    out.pad_to(alignment_);
  }
  if (std::fflush(f.get()) != 0) throw Error(tmp + ": write failed: " + std::strerror(errno));
  f.reset();
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error(path + ": cannot rename from " + tmp + ": " + std::strerror(err));
  }
}

}  // namespace tokenmill::gguf
