// Feature extraction over the evaluation loader (data/loader.h in evaluation mode).
#include "train/features.h"

#include <cmath>
#include <cstring>

#include "data/loader.h"
#include "engine/autograd.h"

namespace intl::train {

CenterCropConfig center_crop_for(int side) {
  CenterCropConfig c;
  c.crop = side;
  c.resize = int(std::lround(side * 256.0 / 224.0));
  return c;
}

FeatureSet extract_features(ResNet& backbone, const ImageSource& data, const FeatureOptions& options) {
  LoaderConfig config = options.center_crop ? imagenet_eval_loader_config(options.batch_size, options.workers)
                                            : cifar_eval_loader_config(options.batch_size, options.workers);
  if (options.center_crop) {
    config.center_crop = options.center_crop;
    config.views.view1.out_size = options.center_crop->crop;
  } else {
    config.views.view1.out_size = options.image_size;
  }
  Loader loader(data, config);
  const bool was_training = backbone.training();
  backbone.eval();
  NoGradGuard no_grad;
  const int64_t d = backbone.feature_dim();
  FeatureSet out;
  out.features = Tensor::empty({int64_t(data.size()), d});  // (n, d)
  out.labels.resize(data.size());
  out.num_classes = data.num_classes();
  float* dst = out.features.data<float>();
  loader.start_epoch(0);
  int64_t row = 0;
  while (const Batch* batch = loader.next()) {
    // (n, H, W, 3): NHWC
    Tensor x = Tensor::from_floats(batch->view1, {batch->n, batch->height, batch->width, batch->channels});
    if (options.device != Device::cpu) x = x.to(options.device);
    const std::vector<float> f = backbone.forward(x).to_floats();  // (n, d)
    std::memcpy(dst + row * d, f.data(), f.size() * sizeof(float));
    for (int i = 0; i < batch->n; ++i) out.labels[row + i] = batch->labels[i];  // after any replacement
    row += batch->n;
  }
  backbone.train(was_training);
  return out;
}

}  // namespace intl::train
