// Word-level tokenizer of docs/MODEL.md: lower-case, characters outside [a-z0-9 ] become spaces,
// split on spaces; <bos> then word ids, padded with <pad> (id 0) to max_tokens.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace ff {

class Tokenizer {
 public:
  // Reads vocab.txt (line i = token i; line 0 <pad>, line 1 <bos>); it must hold vocab_size
  // lines. Throws Error(ModelFormat).
  Tokenizer(const std::string& vocab_path, int vocab_size, int max_tokens);
  // max_tokens ids. Throws Error(BadRequest) naming an unknown word or the word limit.
  std::vector<int32_t> encode(const std::string& prompt) const;
  int max_tokens() const { return max_tokens_; }

 private:
  std::unordered_map<std::string, int32_t> ids_;
  int max_tokens_;
};

}  // namespace ff
