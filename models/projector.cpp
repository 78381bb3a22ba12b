// The projector factory: the MLP of models/layers.h with bias-free hidden layers.
#include "models/projector.h"

#include "engine/error.h"

namespace intl {

std::shared_ptr<MLP> make_projector(int64_t in, const std::vector<int64_t>& widths, uint64_t seed, DType dtype) {
  INTL_CHECK(!widths.empty(), "projector needs at least one layer width");
  INTL_CHECK(in >= 1, "projector input width must be >= 1, got " + std::to_string(in));
  std::vector<int64_t> all{in};
  for (int64_t w : widths) {
    INTL_CHECK(w >= 1, "projector layer widths must be >= 1, got " + std::to_string(w));
    all.push_back(w);
  }
  return std::make_shared<MLP>(all, /*hidden_bias=*/false, seed, dtype);
}

}  // namespace intl
