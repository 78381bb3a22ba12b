// Walking N-d strided tensors on the CPU: dimensions are collapsed where memory allows, then an outer index
// walks all but the innermost dimension and the caller's inner loop runs over the innermost with fixed
// strides. Used by copy, broadcasting binary ops and reductions.
#pragma once
#include <cstdint>
#include <vector>

namespace intl::cpu {

// Up to three operands sharing one shape; strides in elements.
struct StridedLayout {
  std::vector<int64_t> shape;
  std::vector<int64_t> strides[3];
  int operands = 1;

  // Merges adjacent dimensions that are contiguous with each other in every operand and drops extent-1 ones.
  void collapse() {
    std::vector<int64_t> s;
    std::vector<int64_t> st[3];
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 1) continue;
      bool merge = !s.empty();
      for (int k = 0; k < operands && merge; ++k) merge = st[k].back() == strides[k][i] * shape[i];
      if (merge) {
        s.back() *= shape[i];
        for (int k = 0; k < operands; ++k) st[k].back() = strides[k][i];
      } else {
        s.push_back(shape[i]);
        for (int k = 0; k < operands; ++k) st[k].push_back(strides[k][i]);
      }
    }
    if (s.empty()) {
      s.push_back(1);
      for (int k = 0; k < operands; ++k) st[k].push_back(1);
    }
    shape = s;
    for (int k = 0; k < operands; ++k) strides[k] = st[k];
  }

  int64_t inner() const { return shape.back(); }
  int64_t outer() const {
    int64_t n = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) n *= shape[i];
    return n;
  }
  // Offsets of operand k for outer index `o` (row-major over all but the last dimension).
  int64_t offset(int k, int64_t o) const {
    int64_t off = 0;
    for (size_t i = shape.size() - 1; i-- > 0;) {
      const int64_t idx = o % shape[i];
      o /= shape[i];
      off += idx * strides[k][i];
    }
    return off;
  }
};

}  // namespace intl::cpu
