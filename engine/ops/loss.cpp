// Losses: mean squared error and softmax cross-entropy.
#include "engine/ops/common.h"

namespace intl {
using namespace ops;

Tensor mse_loss(const Tensor& a, const Tensor& b) {
  INTL_CHECK(a.shape() == b.shape(), "mse_loss: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()));
  return mean(square(sub(a, b)));
}

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels) {
  INTL_CHECK(logits.dim() == 2,
             "softmax_cross_entropy: logits must be (rows, classes), got " + shape_str(logits.shape()));
  INTL_CHECK(labels.dtype() == DType::i64 && labels.dim() == 1 && labels.size(0) == logits.size(0),
             "softmax_cross_entropy: labels must be int64 (rows,)");
  if (labels.device() == Device::cpu) {  // on a GPU an out-of-range label makes its row's loss NaN instead
    const int64_t classes = logits.size(1);
    const int64_t* y = labels.data<int64_t>();
    for (int64_t r = 0; r < labels.size(0); ++r)
      INTL_CHECK(y[r] >= 0 && y[r] < classes, "softmax_cross_entropy: label " + std::to_string(y[r]) + " of row " +
                                                  std::to_string(r) + " is outside the " + std::to_string(classes) +
                                                  " classes of the logits");
  }
  Tensor lc = logits.is_contiguous() ? logits.detach() : logits.detach().contiguous();
  Tensor per_row = Tensor::empty({logits.size(0)}, logits.dtype(), logits.device());
  Tensor dlogits = needs_grad({logits}) ? empty_like(lc) : Tensor();
  backend(logits.device()).softmax_xent(lc, labels, per_row, dlogits);
  Tensor loss = mean(per_row);
  if (dlogits.defined()) {
    const double inv_rows = 1.0 / double(logits.size(0));
    record("softmax_cross_entropy", {logits}, loss, [dlogits, inv_rows](const Tensor& g) {
      return std::vector<Tensor>{mul(dlogits, mul(g, inv_rows))};
    });
  }
  return loss;
}

}  // namespace intl
