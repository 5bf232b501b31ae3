#include "core/arena.h"

#include <algorithm>

namespace ff {

float* Arena::alloc(size_t count) {
  size_t rounded = (count + 15) & ~size_t(15);  // keep every allocation 64-byte aligned
  while (current_ < blocks_.size()) {
    Block& b = blocks_[current_];
    if (b.capacity - b.used >= rounded) {
      float* p = b.buf.get() + b.used;
      b.used += rounded;
      return p;
    }
    ++current_;
  }
  size_t cap = std::max(block_floats_, rounded);
  blocks_.push_back(Block{aligned_floats(cap), cap, rounded});
  current_ = blocks_.size() - 1;
  return blocks_.back().buf.get();
}

void Arena::reset() {
  for (Block& b : blocks_) b.used = 0;
  current_ = 0;
}

Arena::Mark Arena::mark() const {
  if (current_ >= blocks_.size()) return Mark{current_, 0};
  return Mark{current_, blocks_[current_].used};
}

void Arena::rewind(Mark m) {
  for (size_t i = m.block; i < blocks_.size(); ++i) blocks_[i].used = i == m.block ? m.used : 0;
  current_ = m.block;
}

size_t Arena::reserved_bytes() const {
  size_t n = 0;
  for (const Block& b : blocks_) n += b.capacity * sizeof(float);
  return n;
}

}  // namespace ff
