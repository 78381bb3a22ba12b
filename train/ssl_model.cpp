// The pre-training network and its description.
#include "train/ssl_model.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "models/projector.h"

namespace intl::train {

nlohmann::json ssl_model_config_to_json(const SslModelConfig& c) {
  nlohmann::json j = {{"arch", c.arch},
                      {"stem", c.stem},
                      {"base_width", c.base_width},
                      {"projector", c.projector},
                      {"zero_init_residual", c.zero_init_residual},
                      {"seed", c.seed}};
  if (c.ema) j["ema"] = true;  // absent: no target network (descriptions written before it existed)
  return j;
}

SslModelConfig ssl_model_config_from_json(const nlohmann::json& j, const std::string& where) {
  SslModelConfig c;
  try {
    c.arch = j.at("arch").get<std::string>();
    c.stem = j.at("stem").get<std::string>();
    c.base_width = j.at("base_width").get<int64_t>();
    c.projector = j.at("projector").get<std::vector<int64_t>>();
    c.zero_init_residual = j.value("zero_init_residual", false);
    c.ema = j.value("ema", false);
    c.seed = j.value("seed", uint64_t(0));
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": the network description lacks a field or has a wrong type (" + e.what() + ")");
  }
  return c;
}

ResNetConfig backbone_config(const SslModelConfig& c) {
  ResNetConfig r;
  r.depth = resnet_depth(c.arch);
  r.stem = resnet_stem(c.stem);
  r.base_width = c.base_width;
  r.zero_init_residual = c.zero_init_residual;
  r.seed = c.seed;
  return r;
}

SslModel::SslModel(const SslModelConfig& config) : config_(config) {
  INTL_CHECK(config.base_width >= 1, "--base-width must be >= 1, found " + std::to_string(config.base_width));
  backbone_ = register_module("backbone", make_resnet(backbone_config(config)));
  projector_ = register_module("projector", make_projector(backbone_->feature_dim(), config.projector, config.seed));
  if (config.ema) {
    SslModelConfig plain = config;
    plain.ema = false;
    target_ = register_module("target", std::make_shared<SslModel>(plain));  // same seed: starts equal
    for (auto& [name, t] : target_->named_parameters()) t.requires_grad_(false);
  }
}

std::vector<std::pair<std::string, Tensor>> SslModel::online_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, t] : named_parameters())
    if (name.rfind("target.", 0) != 0) out.emplace_back(name, t);
  return out;
}

Tensor SslModel::embed(const Tensor& x) const { return projector_->forward(backbone_->forward(x)); }

Tensor intl_two_view_loss(const SslModel& model, const Tensor& view1, const Tensor& view2, int T, double beta,
                          IntlLossForm form) {
  // View 1 through the network first, in statements of their own: a call's arguments are evaluated in an
  // unspecified order (right to left by GCC), and the order decides the batch norms' running statistics.
  Tensor z1 = model.embed(view1);
  Tensor z2 = model.embed(view2);
  return intl_loss(z1, z2, T, beta, form);
}

Tensor pretrain_loss(const SslModel& model, const std::vector<Tensor>& crops, int T, double beta, IntlLossForm form) {
  INTL_CHECK(crops.size() >= 2, "pretrain_loss needs at least two crops, got " + std::to_string(crops.size()));
  if (!model.target() && crops.size() == 2) return intl_two_view_loss(model, crops[0], crops[1], T, beta, form);
  std::vector<Tensor> online;
  for (size_t v = model.target() ? 1 : 0; v < crops.size(); ++v) online.push_back(model.embed(crops[v]));
  if (!model.target()) return intl_anchored_crops_loss(online, T, beta);
  Tensor target;
  {
    NoGradGuard no_grad;
    target = model.target()->embed(crops[0]);
  }
  return intl_multicrop_loss(online, target, T, beta);
}

namespace {

SslModel& target_of(SslModel& model) {
  check(model.target() != nullptr, "TargetUpdater: the model has no target network (config.ema)");
  return *model.target();
}

}  // namespace

TargetUpdater::TargetUpdater(SslModel& model)
    : backbone_(model.backbone(), target_of(model).backbone()),
      projector_(model.projector(), target_of(model).projector()) {}

void TargetUpdater::copy_online() const {
  backbone_.copy_online();
  projector_.copy_online();
}

void TargetUpdater::after_step(int64_t steps_done, int64_t total_steps, double m0) const {
  const double m = ema_momentum(steps_done, total_steps, m0);
  backbone_.update(m, /*copy_buffers=*/false);
  projector_.update(m, false);
}

}  // namespace intl::train
