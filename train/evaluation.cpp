// Loading a backbone from a checkpoint or a weights file, and the kNN / linear evaluation of it.
#include "train/evaluation.h"

#include "engine/error.h"
#include "models/safetensors.h"
#include "train/checkpoint.h"

namespace intl::train {
namespace {

constexpr const char* kBackbonePrefix = "model.backbone.";

}  // namespace

LoadedBackbone load_backbone(const std::string& path, const SslModelConfig& fallback) {
  const SafetensorsContents file = read_safetensors(path);
  LoadedBackbone out;
  out.config = fallback;
  const bool checkpoint = file.metadata.count("intl") > 0;
  if (checkpoint) {
    const CheckpointState state = read_checkpoint_state(path);
    out.config = ssl_model_config_from_json(state.model, "checkpoint '" + path + "'");
    out.dataset = state.recipe.value("dataset", "");
    out.recipe = state.recipe;
  } else if (auto it = file.metadata.find(backbone_metadata_key); it != file.metadata.end()) {
    try {  // backbone.safetensors of `intl pretrain` describes its network
      const nlohmann::json description = nlohmann::json::parse(it->second);
      out.config = ssl_model_config_from_json(description, "'" + path + "'");
      out.recipe = {{"ema", description.value("ema", false)}, {"multi-crop", description.value("multi_crop", false)}};
    } catch (const nlohmann::json::exception& e) {
      throw Error("'" + path + "': the \"" + backbone_metadata_key + "\" metadata is not valid JSON (" + e.what() +
                  ")");
    }
  }
  out.backbone = make_resnet(backbone_config(out.config));
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : file.tensors) {
    if (!checkpoint) by_name[name] = &t;
    else if (name.rfind(kBackbonePrefix, 0) == 0) by_name[name.substr(std::string(kBackbonePrefix).size())] = &t;
  }
  std::vector<std::pair<Tensor, const Tensor*>> copies;
  auto targets = out.backbone->named_parameters();
  for (auto& nt : out.backbone->named_buffers()) targets.push_back(nt);
  for (const auto& [name, dst] : targets) {
    const std::string what = "'" + path + "', backbone tensor '" + name + "'";
    auto it = by_name.find(name);
    if (it == by_name.end())
      throw Error(what + " is missing" +
                  (checkpoint ? std::string(": the checkpoint is damaged or not from `intl pretrain`")
                              : ": is it a " + out.config.arch + " with the " + out.config.stem +
                                    " stem and base width " + std::to_string(out.config.base_width) +
                                    "? (set --arch, --stem, --base-width)"));
    check(it->second->shape() == dst.shape() && it->second->dtype() == dst.dtype(),
          what + ": shape " + shape_str(it->second->shape()) + ", the network expects " + shape_str(dst.shape()) +
              (checkpoint ? "" : " (set --arch, --stem, --base-width to the network it holds)"));
    copies.emplace_back(dst, it->second);
  }
  for (auto& [dst, src] : copies) {
    Tensor d = dst;
    d.copy_(*src);
  }
  return out;
}

CifarDataset load_cifar_subset(const std::string& dir, CifarKind kind, Split split, int limit) {
  CifarDataset data = load_cifar(dir, kind, split);
  if (limit > 0 && limit < data.size()) {
    data.labels.resize(limit);
    data.pixels.resize(size_t(limit) * CifarDataset::kImageBytes);
  }
  return data;
}

std::map<std::string, double> evaluate_backbone(ResNet& backbone, const ImageSource& train,
                                                const ImageSource& test, const EvalOptions& o) {
  std::map<std::string, double> metrics;
  if (!o.knn && !o.linear) return metrics;
  const FeatureSet train_features = extract_features(backbone, train, o.features);
  const FeatureSet test_features = extract_features(backbone, test, o.features);
  if (o.knn) {
    metrics[knn_metric_name(o.knn_options)] =
        knn_accuracy(train_features.features, train_features.labels, test_features.features, test_features.labels,
                     train.num_classes(), o.knn_options);
  }
  if (o.linear) {
    const LinearEvalResult r = linear_eval(train_features, test_features, o.linear_options);
    metrics["linear_top1"] = r.top1;
    metrics["linear_top5"] = r.top5;
    metrics["linear_final_loss"] = r.final_loss;  // the classifier's, mean over its last epoch
  }
  return metrics;
}

}  // namespace intl::train
