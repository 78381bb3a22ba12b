// The batch loader of data/loader.h: epoch permutation, per-sample random streams, and the worker threads
// that fill a ring of batch buffers.
#include "data/loader.h"

#include <algorithm>
#include <string>

#include "engine/error.h"
#include "engine/random.h"

namespace intl {
namespace {

constexpr int kEpochBits = 20;        // epochs below 2^20 (the view stream keeps 20 bits for the epoch)
constexpr uint64_t kDrawsPerView = 256;
constexpr int kMaxViews = 16;         // 4 bits of the view stream's counter
constexpr uint64_t kMaxPositions = uint64_t(1) << 32;

void check_view(const AugmentConfig& v, const char* name) {
  const std::string where = std::string("loader: ") + name + ": ";
  check(v.out_size > 0, where + "out_size must be positive, found " + std::to_string(v.out_size));
  check(v.crop_scale_min > 0 && v.crop_scale_min <= v.crop_scale_max,
        where + "crop scale range must satisfy 0 < min <= max");
  check(v.crop_ratio_min > 0 && v.crop_ratio_min <= v.crop_ratio_max,
        where + "crop ratio range must satisfy 0 < min <= max");
  check(v.blur_p <= 0 || (v.blur_kernel > 0 && v.blur_kernel % 2 == 1 && v.blur_sigma_min > 0 &&
                          v.blur_sigma_min <= v.blur_sigma_max),
        where + "blur needs an odd positive kernel size and 0 < sigma_min <= sigma_max, found kernel " +
            std::to_string(v.blur_kernel));
}

}  // namespace

LoaderConfig cifar_train_loader_config(int batch_size, uint64_t seed, int workers) {
  LoaderConfig config;
  config.batch_size = batch_size;
  config.seed = seed;
  config.workers = workers;
  return config;
}

LoaderConfig cifar_eval_loader_config(int batch_size, int workers) {
  LoaderConfig config;
  config.batch_size = batch_size;
  config.workers = workers;
  config.augment = false;
  config.shuffle = false;
  config.drop_last = false;
  return config;
}

LoaderConfig imagenet_train_loader_config(int batch_size, uint64_t seed, int workers) {
  LoaderConfig config = cifar_train_loader_config(batch_size, seed, workers);
  config.views = imagenet_two_views();
  config.chunk = 4;  // a decoded 224 view costs about 100 CIFAR views
  return config;
}

LoaderConfig imagenet_multi_crop_loader_config(int batch_size, uint64_t seed, int workers) {
  LoaderConfig config = imagenet_train_loader_config(batch_size, seed, workers);
  config.crops = imagenet_multi_crop().crops;
  return config;
}

LoaderConfig imagenet_eval_loader_config(int batch_size, int workers) {
  LoaderConfig config = cifar_eval_loader_config(batch_size, workers);
  config.center_crop = CenterCropConfig{};
  config.views.view1.out_size = config.center_crop->crop;
  config.chunk = 4;
  return config;
}

Loader::Loader(const ImageSource& data, LoaderConfig config) : data_(data), config_(std::move(config)) {
  const LoaderConfig& c = config_;
  check(c.batch_size > 0 && c.workers >= 0 && c.prefetch >= 1 && c.chunk >= 1,
        "loader: batch_size, chunk and prefetch must be positive and workers non-negative (found " +
            std::to_string(c.batch_size) + ", " + std::to_string(c.chunk) + ", " + std::to_string(c.prefetch) +
            ", " + std::to_string(c.workers) + ")");
  check(data.size() > 0, "loader: the dataset is empty");
  check(uint64_t(data.size()) < kMaxPositions, "loader: more than 2^32 images");
  std::vector<int> sides;  // of each view
  if (!c.augment) {
    if (c.center_crop) {
      check(c.center_crop->crop > 0 && c.center_crop->resize >= c.center_crop->crop,
            "loader: center crop: need 0 < crop <= resize, found crop " + std::to_string(c.center_crop->crop) +
                " and resize " + std::to_string(c.center_crop->resize));
      sides.push_back(c.center_crop->crop);
    } else {
      check_view(c.views.view1, "view 1");
      sides.push_back(c.views.view1.out_size);
    }
  } else if (!c.crops.empty()) {
    check(c.crops.size() <= size_t(kMaxViews), "loader: at most " + std::to_string(kMaxViews) +
                                                   " crops, found " + std::to_string(c.crops.size()));
    for (size_t v = 0; v < c.crops.size(); ++v) check_view(c.crops[v], ("crop " + std::to_string(v)).c_str());
    view_configs_ = c.crops;
  } else {
    check_view(c.views.view1, "view 1");
    check_view(c.views.view2, "view 2");
    check(c.views.view1.out_size == c.views.view2.out_size, "loader: both views must have the same out_size");
    view_configs_ = {c.views.view1, c.views.view2};
  }
  for (const AugmentConfig& v : view_configs_) sides.push_back(v.out_size);
  normalization_ = c.normalization ? *c.normalization : data.normalization();
  steps_ = c.drop_last ? data.size() / c.batch_size : (data.size() + c.batch_size - 1) / c.batch_size;
  check(steps_ > 0, "loader: " + std::to_string(data.size()) + " images make no full batch of " +
                        std::to_string(c.batch_size) + " (lower the batch size, or use more images)");
  order_.resize(data.size());
  slots_.resize(c.workers == 0 ? 1 : c.prefetch + 1);
  for (Slot& slot : slots_) {
    slot.views.resize(sides.size());
    slot.batch.views.resize(sides.size());
    for (size_t v = 0; v < sides.size(); ++v) {
      slot.views[v].resize(size_t(c.batch_size) * 3 * sides[v] * sides[v]);
      slot.batch.views[v] = BatchView{slot.views[v].data(), sides[v], sides[v]};
    }
    slot.labels.resize(c.batch_size);
    slot.indices.resize(c.batch_size);
    slot.batch.channels = 3;
    slot.batch.height = slot.batch.width = sides[0];
    slot.batch.view1 = slot.views[0].data();
    slot.batch.view2 = sides.size() > 1 && sides[1] == sides[0] ? slot.views[1].data() : nullptr;
    slot.batch.labels = slot.labels.data();
    slot.batch.indices = slot.indices.data();
  }
  for (int i = 0; i < c.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

int Loader::batch_size_of(int step) const {
  return std::min(config_.batch_size, data_.size() - step * config_.batch_size);
}

int Loader::chunks_of(int step) const { return (batch_size_of(step) + config_.chunk - 1) / config_.chunk; }

bool Loader::work_available() const {
  return work_step_ < work_end_ && work_step_ < next_step_ + config_.prefetch;
}

void Loader::claim_slot(int step) {
  Slot& slot = slots_[step % slots_.size()];
  slot.step = step;
  slot.ready = false;
  slot.chunks_left = chunks_of(step);
  slot.batch.n = batch_size_of(step);
  slot.batch.epoch = epoch_;
  slot.batch.step = step;
}

void Loader::start_epoch(int epoch, int first_step) {
  check(epoch >= 0 && epoch < (1 << kEpochBits), "loader: epoch " + std::to_string(epoch) + " outside 0.." +
                                                     std::to_string((1 << kEpochBits) - 1));
  check(first_step >= 0 && first_step <= steps_, "loader: first step " + std::to_string(first_step) +
                                                     " outside 0.." + std::to_string(steps_));
  std::unique_lock<std::mutex> lock(mutex_);
  work_end_ = 0;  // no new work; wait for the chunks in progress
  ready_cv_.wait(lock, [&] { return in_flight_ == 0; });
  epoch_ = epoch;
  error_ = nullptr;
  for (int i = 0; i < data_.size(); ++i) order_[i] = i;
  if (config_.augment && config_.shuffle) {
    RandomStream rng{config_.seed, kStreamData, (uint64_t(1) << 63) | (uint64_t(epoch) << 40)};
    for (int i = data_.size() - 1; i > 0; --i) std::swap(order_[i], order_[rng.next_below(uint64_t(i) + 1)]);
  }
  for (Slot& slot : slots_) {
    slot.step = -1;
    slot.ready = false;
  }
  next_step_ = work_step_ = first_step;
  work_chunk_ = 0;
  work_end_ = steps_;
  lock.unlock();
  work_cv_.notify_all();
}

const Batch* Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  check(epoch_ >= 0, "loader: next() called before start_epoch()");
  if (error_) std::rethrow_exception(error_);
  const int step = next_step_;
  if (step >= steps_) return nullptr;
  ++next_step_;  // releases the previously held batch
  Slot& slot = slots_[step % slots_.size()];
  if (threads_.empty()) {
    claim_slot(step);
    lock.unlock();
    make_samples(epoch_, step, 0, slot.batch.n, slot, caller_scratch_);
    return &slot.batch;
  }
  work_cv_.notify_all();
  ready_cv_.wait(lock, [&] { return error_ || (slot.step == step && slot.ready); });
  if (error_) std::rethrow_exception(error_);
  return &slot.batch;
}

void Loader::worker_loop() {
  Scratch scratch;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || work_available(); });
    if (stop_) return;
    const int step = work_step_, chunk = work_chunk_, epoch = epoch_;
    if (chunk == 0) claim_slot(step);
    if (++work_chunk_ == chunks_of(step)) {
      ++work_step_;
      work_chunk_ = 0;
    }
    ++in_flight_;
    Slot& slot = slots_[step % slots_.size()];
    const int lo = chunk * config_.chunk, hi = std::min(slot.batch.n, lo + config_.chunk);
    lock.unlock();
    std::exception_ptr failure;
    try {
      make_samples(epoch, step, lo, hi, slot, scratch);
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    if (failure && !error_) error_ = failure;
    --in_flight_;
    if (--slot.chunks_left == 0) slot.ready = true;
    if (slot.ready || in_flight_ == 0 || failure) ready_cv_.notify_all();
  }
}

void Loader::make_samples(int epoch, int step, int lo, int hi, Slot& slot, Scratch& scratch) const {
  for (int k = lo; k < hi; ++k) {
    const uint64_t position = uint64_t(step) * config_.batch_size + k;
    const int index = data_.decode(order_[position], scratch.image);
    slot.labels[k] = data_.label(index);
    slot.indices[k] = index;
    if (!config_.augment) {
      const int side = slot.batch.views[0].height;
      float* out = slot.views[0].data() + size_t(k) * 3 * side * side;
      if (config_.center_crop)
        scratch.augmenter.evaluate_center_crop(scratch.image, *config_.center_crop, normalization_, out);
      else
        scratch.augmenter.evaluate(scratch.image, side, normalization_, out);
      continue;
    }
    for (size_t v = 0; v < view_configs_.size(); ++v) {
      const uint64_t base = (uint64_t(epoch) << 44) | (position << 12) | (uint64_t(v) << 8);
      RandomStream rng{config_.seed, kStreamAugment, base};
      const int side = view_configs_[v].out_size;
      float* out = slot.views[v].data() + size_t(k) * 3 * side * side;
      scratch.augmenter.augment(scratch.image, view_configs_[v], normalization_, rng, out);
      check(rng.offset - base <= kDrawsPerView, "loader: a view used " + std::to_string(rng.offset - base) +
                                                    " random draws, more than its " +
                                                    std::to_string(kDrawsPerView));
    }
  }
}

}  // namespace intl
