// GLM-4's tokenizer ships as tiktoken ranks (tokenizer.model: "base64(bytes) rank" per line) plus
// added tokens in tokenizer_config.json. Real GLM-4 / GLM-4.5 GGUFs store it as a byte-level BPE
// vocabulary (tokenizer.ggml.model "gpt2", pre "glm4") whose merges are derived from the ranks;
// this builds exactly that metadata, so GLM-4 tokenization is exercised end to end.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tokenmill::tokenizer {

// The tiktoken ranks file: element r holds the bytes of the token of rank r. tokenmill::Error
// for malformed lines, duplicate or missing ranks.
std::vector<std::string> read_tiktoken_ranks(const std::string& path);

// The byte-level BPE merges ("left right") equivalent to tiktoken's rule "merge the adjacent
// pair whose concatenation has the lowest rank": every split of every token into two tokens,
// ordered by the rank of the token, then of its left and right parts. This is the list Hugging
// Face's tiktoken converter writes into tokenizer.json, hence into real GLM-4.5 GGUFs (318088
// merges for GLM-4).
std::vector<std::string> merges_from_ranks(const std::vector<std::string>& ranks);

// The complete tokenizer.* metadata of a GLM-4.5 GGUF: tokens (ranks, then the added tokens of
// `tokenizer_config_path`, then "[PADn]" up to `vocab_size`), token types, merges, pre "glm4",
// BOS [gMASK], EOS / padding / unknown <|endoftext|>, EOT <|user|>, EOM <|observation|>, and no
// automatic BOS.
Metadata glm4_tokenizer_metadata(const std::string& ranks_path, const std::string& tokenizer_config_path,
                                 uint32_t vocab_size = 151552);

}  // namespace tokenmill::tokenizer
