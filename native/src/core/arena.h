// Bump allocator for per-forward scratch: allocations are 64-byte aligned, freed all at once by
// reset(). Blocks are kept across resets, so a steady-state forward allocates nothing.
#pragma once
#include <cstddef>
#include <vector>

#include "core/tensor.h"

namespace ff {

class Arena {
 public:
  explicit Arena(size_t block_floats = size_t(1) << 20) : block_floats_(block_floats) {}
  float* alloc(size_t count);  // uninitialised
  void reset();
  // Rewinding to a mark frees everything allocated after it (the memory stays reserved).
  struct Mark {
    size_t block, used;
  };
  Mark mark() const;
  void rewind(Mark m);
  size_t reserved_bytes() const;

 private:
  struct Block {
    AlignedBuffer buf;
    size_t capacity;
    size_t used;
  };
  size_t block_floats_;
  std::vector<Block> blocks_;
  size_t current_ = 0;
};

}  // namespace ff
