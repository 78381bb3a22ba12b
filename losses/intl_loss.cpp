// The INTL losses, composed from engine ops.
#include "losses/intl_loss.h"

#include <cmath>

#include "engine/error.h"
#include "engine/ops.h"
#include "losses/intl_spectral.h"

namespace intl {

Tensor trace_loss(const Tensor& zhat, WhitenAxis axis) {
  const LossPrecision fp32;
  INTL_CHECK(zhat.dim() == 2, "trace loss needs a 2-D input, got " + shape_str(zhat.shape()));
  const int64_t reduce_axis = axis == WhitenAxis::channel ? 1 : 0;
  const double denom = double(zhat.size(reduce_axis) - 1);
  Tensor v = mul(sum(square(zhat), {reduce_axis}), 1.0 / denom);
  return sum(square(add(neg(v), 1.0)));
}

Tensor norm_mse(const Tensor& a, const Tensor& b) {
  const LossPrecision fp32;
  Tensor cos = sum(mul(l2_normalize_rows(a), l2_normalize_rows(b)), {1});
  return add(mul(mean(cos), -2.0), 2.0);
}

double intl_beta(int64_t K) { return 0.01 * (std::log2(double(K)) - 3.0); }

Tensor intl_loss(const Tensor& z1, const Tensor& z2, int T, double beta) {
  const LossPrecision fp32;
  Tensor w1 = iternorm(z1, T, WhitenAxis::channel);
  Tensor w2 = iternorm(z2, T, WhitenAxis::channel);
  Tensor align = norm_mse(w1, w2);
  if (beta == 0.0) return align;
  return add(align, mul(add(trace_loss(w1, WhitenAxis::channel), trace_loss(w2, WhitenAxis::channel)), beta));
}

IntlLossForm parse_intl_loss_form(const std::string& name) {
  if (name == "auto") return IntlLossForm::automatic;
  if (name == "spectral") return IntlLossForm::spectral;
  if (name == "newton") return IntlLossForm::newton;
  throw UsageError("--loss-form: '" + name + "' is not one of auto, spectral, newton");
}

const char* intl_loss_form_name(IntlLossForm form) {
  switch (form) {
    case IntlLossForm::spectral: return "spectral";
    case IntlLossForm::newton: return "newton";
    case IntlLossForm::automatic: break;
  }
  return "auto";
}

IntlLossForm resolve_intl_loss_form(IntlLossForm form, Device device) {
  if (form != IntlLossForm::automatic) return form;
  return device == Device::cpu ? IntlLossForm::spectral : IntlLossForm::newton;
}

Tensor intl_loss(const Tensor& z1, const Tensor& z2, int T, double beta, IntlLossForm form) {
  const LossPrecision fp32;
  return resolve_intl_loss_form(form, z1.device()) == IntlLossForm::newton ? intl_loss(z1, z2, T, beta)
                                                                            : intl_loss_spectral(z1, z2, T, beta);
}

Tensor intl_multicrop_loss(const std::vector<Tensor>& online, const Tensor& target, int T, double beta) {
  const LossPrecision fp32;
  INTL_CHECK(!online.empty(), "multi-crop loss needs at least one online crop");
  Tensor k = iternorm(target.detach(), T, WhitenAxis::channel);
  Tensor total;
  for (const Tensor& z : online) {
    Tensor q = iternorm(z, T, WhitenAxis::channel);
    Tensor term = add(norm_mse(q, k), mul(trace_loss(q, WhitenAxis::channel), beta));
    total = total.defined() ? add(total, term) : term;
  }
  return mul(total, 1.0 / double(online.size()));
}

Tensor intl_anchored_crops_loss(const std::vector<Tensor>& crops, int T, double beta) {
  const LossPrecision fp32;
  INTL_CHECK(crops.size() >= 2, "multi-crop loss needs an anchor crop and at least one other");
  const Tensor t0 = iternorm(crops[0], T, WhitenAxis::channel);
  const Tensor tl0 = trace_loss(t0, WhitenAxis::channel);
  Tensor total;
  for (size_t i = 1; i < crops.size(); ++i) {
    const Tensor t = iternorm(crops[i], T, WhitenAxis::channel);
    Tensor term = add(norm_mse(t, t0), mul(add(trace_loss(t, WhitenAxis::channel), tl0), beta));
    total = total.defined() ? add(total, term) : term;
  }
  return mul(total, 1.0 / double(crops.size() - 1));
}

}  // namespace intl
