// The INTL pre-training network (SPEC 3.4): a ResNet backbone, the projector, and the INTL loss of two
// views (channel-whitening IterNorm with T iterations, trace loss weighted by beta, norm_mse), each view
// passed through the network on its own as in the authors' code. Parameter names are "backbone.<torchvision
// name>" and "projector.<Sequential index>".
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "losses/intl_loss.h"
#include "models/ema.h"
#include "models/layers.h"
#include "models/resnet.h"

namespace intl::train {

struct SslModelConfig {
  std::string arch = "resnet18";
  std::string stem = "cifar";
  int64_t base_width = 64;
  std::vector<int64_t> projector = {2048, 2048, 2048};
  bool zero_init_residual = false;
  // A momentum (EMA) target network, a copy of backbone + projector registered as "target.backbone.*" and
  // "target.projector.*" (so it is checkpointed with the model); it gets no gradients (models/ema.h).
  bool ema = false;
  uint64_t seed = 0;
};

// The network description stored in checkpoints, and back (intl::Error naming the field when malformed).
nlohmann::json ssl_model_config_to_json(const SslModelConfig& config);
SslModelConfig ssl_model_config_from_json(const nlohmann::json& j, const std::string& where);
// The backbone part of a model description (arch, stem, width, seed).
ResNetConfig backbone_config(const SslModelConfig& config);

class SslModel : public Module {
 public:
  explicit SslModel(const SslModelConfig& config);
  ResNet& backbone() { return *backbone_; }
  MLP& projector() { return *projector_; }
  const SslModelConfig& config() const { return config_; }
  // The momentum target (config().ema), or nullptr.
  SslModel* target() { return target_.get(); }
  const SslModel* target() const { return target_.get(); }
  // The online parameters: everything but the target's (what the optimizer updates).
  std::vector<std::pair<std::string, Tensor>> online_parameters() const;
  // x (N, 3, H, W) -> embedding (N, projector.back()).
  Tensor embed(const Tensor& x) const;

 private:
  SslModelConfig config_;
  std::shared_ptr<ResNet> backbone_;
  std::shared_ptr<MLP> projector_;
  std::shared_ptr<SslModel> target_;
};

// The INTL objective of two views' embeddings, in either of its computations (losses/intl_loss.h).
Tensor intl_two_view_loss(const SslModel& model, const Tensor& view1, const Tensor& view2, int T, double beta,
                          IntlLossForm form = IntlLossForm::automatic);

// The pre-training loss of one batch, crops[0] being crop 0 (of two views, view 1):
// - a model with a target (--ema): crop 0 through the target network, without gradient, is the target k of
//   every other crop through the online one (intl_multicrop_loss; the authors' methods/intl_m.py);
// - otherwise, more than two crops (--multi-crop): every crop online, crop 0 the anchor with its gradient
//   (intl_anchored_crops_loss; methods/intl.py);
// - otherwise: intl_two_view_loss in `form`.
Tensor pretrain_loss(const SslModel& model, const std::vector<Tensor>& crops, int T, double beta,
                     IntlLossForm form = IntlLossForm::automatic);

// The target network's momentum updates (a model with config().ema): its backbone and projector follow the
// online ones. The model must outlive the updater.
class TargetUpdater {
 public:
  explicit TargetUpdater(SslModel& model);
  // The target becomes the online network, parameters and statistics: the start of training.
  void copy_online() const;
  // After `steps_done` optimizer steps of `total_steps`: target = m target + (1 - m) online with
  // m = ema_momentum(steps_done, total_steps, m0), the m the authors' methods/intl_m.py uses before the next
  // step's forward pass; parameters only, the target keeping its own batch-norm statistics [code].
  void after_step(int64_t steps_done, int64_t total_steps, double m0) const;

 private:
  EmaUpdater backbone_, projector_;
};

}  // namespace intl::train
