#include "model/quant_policy.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <numeric>
#include <string>

#include "common/error.h"

namespace tokenmill::model {
namespace {

using gguf::TensorType;
using T = TensorType;

const FileType kFileTypes[] = {
    {"F32", 0, T::F32},      {"F16", 1, T::F16},       {"BF16", 32, T::BF16},    {"Q4_0", 2, T::Q4_0},
    {"Q4_1", 3, T::Q4_1},    {"Q5_0", 8, T::Q5_0},     {"Q5_1", 9, T::Q5_1},     {"Q8_0", 7, T::Q8_0},
    {"Q2_K", 10, T::Q2_K},   {"Q3_K_S", 11, T::Q3_K},  {"Q3_K_M", 12, T::Q3_K},  {"Q3_K_L", 13, T::Q3_K},
    {"Q4_K_S", 14, T::Q4_K}, {"Q4_K_M", 15, T::Q4_K},  {"Q5_K_S", 16, T::Q5_K},  {"Q5_K_M", 17, T::Q5_K},
    {"Q6_K", 18, T::Q6_K},
};

bool is_float(TensorType t) { return t == T::F32 || t == T::F16 || t == T::BF16; }

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }
bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

uint32_t block_size(TensorType t) { return gguf::tensor_type_info(t).block_elements; }

// The converter keeps vectors, norms and the MoE router in F32 whatever the file type.
TensorType converter_type(const TensorDesc& t, TensorType float_type) {
  if (t.shape.size() <= 1 || ends_with(t.name, "_norm.weight")) return T::F32;
  if (contains(t.name, "ffn_gate_inp") || !ends_with(t.name, ".weight")) return T::F32;
  return float_type;
}

// llama-quantize leaves vectors, norms and the router as they are in its input.
bool quantizer_may_change(const TensorDesc& t) {
  return t.shape.size() >= 2 && ends_with(t.name, "weight") && !contains(t.name, "_norm.weight") &&
         !contains(t.name, "ffn_gate_inp.weight");
}

// The quantizer's coarse roles, found from the name as it finds them (substrings, so that
// expert and shared-expert tensors share their dense counterpart's role).
enum class Role { TokenEmbd, Output, AttnQ, AttnK, AttnVLike, AttnOutput, FfnDown, Other };

Role role_of(std::string_view name) {
  if (name == "output.weight") return Role::Output;
  if (name == "token_embd.weight") return Role::TokenEmbd;
  if (contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight") || contains(name, "attn_v.weight"))
    return Role::AttnVLike;
  if (contains(name, "attn_k.weight")) return Role::AttnK;
  if (contains(name, "attn_q.weight")) return Role::AttnQ;
  if (contains(name, "attn_output.weight")) return Role::AttnOutput;
  if (contains(name, "ffn_down")) return Role::FfnDown;
  return Role::Other;
}

// "More bits" layers of the _M mixtures: the first and last eighth, and every third between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

class Chooser {
 public:
  Chooser(const FileType& ft, const ArchInfo& arch, const HParams& hp, const std::vector<TensorDesc>& tensors)
      : ft_(ft.name), base_(ft.base_type), hp_(hp) {
    n_gqa_ = static_cast<int>(hp.n_head / hp.n_head_kv);
    n_expert_ = static_cast<int>(hp.n_expert);
    // llama.cpp classifies an 80-block grouped-query Llama as 70B and gives its attn_v more bits.
    is_70b_ = arch.arch == Arch::Llama && hp.n_layer() == 80 && hp.n_head != hp.n_head_kv;
    for (const auto& t : tensors) {
      if (role_of(t.name) == Role::AttnVLike) ++n_attn_v_;
      if (t.name == "output.weight") tied_ = false;
    }
  }

  TensorType choose(const TensorDesc& t) {
    const TensorType source = converter_type(t, T::F16);
    if (!quantizer_may_change(t)) return source;
    return fallback(t, mixture_rule(t));
  }

 private:
  bool is(std::string_view name) const { return ft_ == name; }

  TensorType mixture_rule(const TensorDesc& t) {
    const Role role = role_of(t.name);
    const int64_t ne0 = static_cast<int64_t>(t.shape[0]);
    if (role == Role::Output || (tied_ && role == Role::TokenEmbd)) {
      if (ne0 % block_size(base_) != 0) return T::Q8_0;
      return base_ == T::Q8_0 ? T::Q8_0 : T::Q6_K;
    }
    TensorType type = base_;
    switch (role) {
      case Role::AttnVLike: {
        const int i = i_attn_v_++;
        if (is("Q2_K")) type = n_gqa_ >= 4 ? T::Q4_K : T::Q3_K;
        else if (is("Q3_K_M")) type = i < 2 ? T::Q5_K : T::Q4_K;
        else if (is("Q3_K_L")) type = T::Q5_K;
        else if ((is("Q4_K_M") || is("Q5_K_M")) && use_more_bits(i, n_attn_v_)) type = T::Q6_K;
        else if (is("Q4_K_S") && i < 4) type = T::Q5_K;
        if (is_70b_ && (type == T::Q3_K || type == T::Q4_K)) type = T::Q5_K;
        if (n_expert_ == 8) type = T::Q8_0;
        break;
      }
      case Role::AttnK:
        if (n_expert_ == 8) type = T::Q8_0;
        break;
      case Role::FfnDown: {
        // MoE models name the layer (experts need not be stored in layer order); dense models
        // count ffn_down tensors. Either way against the block count, NextN blocks included.
        int i = i_ffn_down_++;
        const int n = static_cast<int>(hp_.n_block);
        if (n_expert_ > 1) i = block_of(t);
        if (is("Q2_K")) type = T::Q3_K;
        else if (is("Q3_K_M")) type = i < n / 16 ? T::Q5_K : T::Q4_K;
        else if (is("Q3_K_L")) type = T::Q5_K;
        else if (is("Q4_K_M")) type = use_more_bits(i, n) ? T::Q6_K : type;
        else if (is("Q5_K_M") && use_more_bits(i, n)) type = T::Q6_K;
        else if (is("Q4_K_S") && i < n / 8) type = T::Q5_K;
        break;
      }
      case Role::AttnOutput:
        if (n_expert_ == 8) {
          if (is("Q2_K") || is("Q3_K_S") || is("Q3_K_M") || is("Q4_K_S") || is("Q4_K_M")) type = T::Q5_K;
        } else if (is("Q2_K")) {
          type = T::Q3_K;
        } else if (is("Q3_K_M")) {
          type = T::Q4_K;
        } else if (is("Q3_K_L")) {
          type = T::Q5_K;
        }
        break;
      default:
        break;
    }
    return type;
  }

  // A row must hold whole blocks: 256-element K-quants fall back to a 32-element type of
  // similar size, and anything that still does not fit is stored as F16.
  static TensorType fallback(const TensorDesc& t, TensorType type) {
    const uint64_t ne0 = t.shape[0];
    if (ne0 % block_size(type) == 0) return type;
    switch (type) {
      case T::Q2_K:
      case T::Q3_K: type = T::Q4_0; break;
      case T::Q4_K: type = T::Q5_0; break;
      case T::Q5_K: type = T::Q5_1; break;
      case T::Q6_K: type = T::Q8_0; break;
      default: break;  // already a 32-element type
    }
    return ne0 % block_size(type) == 0 ? type : T::F16;
  }

  static int block_of(const TensorDesc& t) {
    int block = -1;
    if (std::sscanf(t.name.c_str(), "blk.%d.", &block) != 1)
      throw Error("cannot tell the layer of expert tensor " + t.name);
    return block;
  }

  std::string_view ft_;
  TensorType base_;
  const HParams& hp_;
  int n_gqa_ = 1;
  int n_expert_ = 0;
  bool is_70b_ = false;
  bool tied_ = true;  // until output.weight is seen
  int n_attn_v_ = 0;
  int i_attn_v_ = 0;
  int i_ffn_down_ = 0;
};

}  // namespace

std::span<const FileType> file_types() { return kFileTypes; }

const FileType* find_file_type(std::string_view name) {
  for (const auto& ft : kFileTypes) {
    if (ft.name.size() != name.size()) continue;
    if (std::equal(name.begin(), name.end(), ft.name.begin(),
                   [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; }))
      return &ft;
  }
  return nullptr;
}

std::vector<TensorType> choose_tensor_types(const FileType& file_type, const ArchInfo& arch, const HParams& hp,
                                            const std::vector<TensorDesc>& tensors) {
  std::vector<TensorType> types(tensors.size());
  if (is_float(file_type.base_type)) {
    for (size_t i = 0; i < tensors.size(); ++i) types[i] = converter_type(tensors[i], file_type.base_type);
    return types;
  }
  // The quantizer visits tensors by block number, then by name.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const TensorDesc& x = tensors[a];
    const TensorDesc& y = tensors[b];
    return x.block != y.block ? x.block < y.block : x.name < y.name;
  });
  Chooser chooser(file_type, arch, hp, tensors);
  for (size_t i : order) types[i] = chooser.choose(tensors[i]);
  return types;
}

}  // namespace tokenmill::model
