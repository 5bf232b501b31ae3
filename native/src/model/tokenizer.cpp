#include "model/tokenizer.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace ff {

Tokenizer::Tokenizer(const std::string& path, int vocab_size, int max_tokens) : max_tokens_(max_tokens) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::ModelFormat, path + ": cannot open the vocabulary");
  std::string line;
  int32_t id = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (id >= vocab_size) fail(ErrorCode::ModelFormat, path + ": more than text.vocab_size = " + std::to_string(vocab_size) + " lines");
    if (id == 0 && line != "<pad>") fail(ErrorCode::ModelFormat, path + ": line 0 must be <pad>");
    if (id == 1 && line != "<bos>") fail(ErrorCode::ModelFormat, path + ": line 1 must be <bos>");
    if (!ids_.emplace(line, id).second) fail(ErrorCode::ModelFormat, path + ": word '" + line + "' appears twice");
    ++id;
  }
  if (id != vocab_size)
    fail(ErrorCode::ModelFormat, path + ": " + std::to_string(id) + " lines but config.json text.vocab_size is " + std::to_string(vocab_size));
}

std::vector<int32_t> Tokenizer::encode(const std::string& prompt) const {
  std::string clean(prompt);
  for (char& c : clean) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) c = ' ';
  }
  std::vector<int32_t> ids{1};
  std::istringstream words(clean);
  std::string word;
  while (words >> word) {
    auto it = ids_.find(word);
    if (it == ids_.end() || it->second < 2) fail(ErrorCode::BadRequest, "prompt: the word '" + word + "' is not in the model's vocabulary");
    if (int(ids.size()) >= max_tokens_)
      fail(ErrorCode::BadRequest, "prompt: more than " + std::to_string(max_tokens_ - 1) + " words");
    ids.push_back(it->second);
  }
  ids.resize(max_tokens_, 0);
  return ids;
}

}  // namespace ff
