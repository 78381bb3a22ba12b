// Batches of images from any ImageSource (CIFAR in memory, an image folder decoded on the workers) for
// training (two augmented views per image, or the crops of a multi-crop configuration) or feature
// extraction (one normalised view), made on worker threads ahead of the step that consumes them.
//
// Determinism. Every random choice is a pure function of (seed, epoch, position in the epoch), never of a
// generator shared between threads, so the batches are bytewise the same for any number of workers:
// - order: epoch e's permutation is a Fisher-Yates shuffle drawing from
//   RandomStream{seed, kStreamData, 2^63 + e * 2^40} (the upper half of the data stream's counters, clear of
//   data generation, which counts from 0);
// - views: view v (0, 1; multi-crop: the crop, 0..15) of the sample at position p of epoch e draws from
//   RandomStream{seed, kStreamAugment, e * 2^44 + p * 2^12 + v * 2^8}, room for 256 draws per view (a view
//   uses at most 4 per crop attempt and about 20 more; exceeding 256 throws).
// - a bad image that the source replaces (ImageFolder's skip policy) is replaced by the same image whichever
//   worker meets it, and its views keep the stream of the position.
// The data position of a run is (epoch, step): start_epoch(e, s) yields exactly the batches s, s + 1, ... of
// an uninterrupted epoch e, so a killed run resumes where its checkpoint says.
//
// Threads and memory. The loader owns a ring of prefetch + 1 batch buffers, allocated at construction; each
// worker owns its scratch (allocated on its first image), so no batch allocates after warm-up. Work items
// are chunks of `chunk` samples of a batch, handed out in order; a batch is made only while fewer than
// `prefetch` batches wait ahead of the one the caller holds, and the buffer of the held batch is not
// touched until the following next(). With workers = 0 next() makes each batch on the calling thread.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/cifar.h"
#include "data/image.h"
#include "data/image_source.h"
#include "data/transforms.h"

namespace intl {

struct LoaderConfig {
  int batch_size = 256;
  int workers = 2;       // threads making batches; 0: made on the caller's thread inside next()
  int prefetch = 2;      // batches made ahead of the held one (>= 1); the ring holds prefetch + 1
  int chunk = 16;        // samples per work item
  uint64_t seed = 0;
  bool augment = true;   // false: evaluation mode (one view, normalised only, dataset order)
  bool shuffle = true;   // reshuffle every epoch; ignored in evaluation mode
  bool drop_last = true; // drop the last partial batch
  TwoViewConfig views = cifar_two_views();    // in evaluation mode only view1.out_size is used
  // Multi-crop mode when not empty: one view per crop (at most 16), of each crop's own size, instead of
  // `views`; Batch::view1 then points at crop 0, and view2 at crop 1 when it has crop 0's size. Table B's
  // six crops take 188416 floats per image and channel: about 580 MB per batch of 256, per ring slot.
  std::vector<AugmentConfig> crops;
  // Evaluation mode with an image folder: Resize + CenterCrop (ImageNet: 256 / 224). Empty: the image
  // resized to views.view1.out_size (CIFAR: as stored).
  std::optional<CenterCropConfig> center_crop;
  std::optional<Normalization> normalization; // empty: the source's (CIFAR: cifar_normalization)
};

// SPEC 3.4 training views (shuffled, last partial batch dropped) and evaluation (in order, all images).
LoaderConfig cifar_train_loader_config(int batch_size, uint64_t seed, int workers);
LoaderConfig cifar_eval_loader_config(int batch_size, int workers);
// The same for ImageNet-size images: two views at 224 (SPEC 3.4), the six crops of Table B, and
// Resize(256) + CenterCrop(224) for evaluation.
LoaderConfig imagenet_train_loader_config(int batch_size, uint64_t seed, int workers);
LoaderConfig imagenet_multi_crop_loader_config(int batch_size, uint64_t seed, int workers);
LoaderConfig imagenet_eval_loader_config(int batch_size, int workers);

// One view of every sample of a batch.
struct BatchView {
  const float* data = nullptr;  // (n, height, width, channels): NHWC, normalised
  int height = 0, width = 0;
};

// One batch; the pointers stay valid until the next call to next() or start_epoch().
struct Batch {
  int n = 0;                         // samples (batch_size, or fewer in a last partial batch)
  int epoch = 0, step = 0;
  int channels = 3, height = 0, width = 0;  // of view1 and view2
  const float* view1 = nullptr;      // (n, height, width, channels): NHWC, normalised
  const float* view2 = nullptr;      // (n, height, width, channels); nullptr in evaluation mode
  std::vector<BatchView> views;      // every view: {view1, view2}, {view1} or the crops in order
  const int32_t* labels = nullptr;   // (n)
  const int32_t* indices = nullptr;  // (n) index in the source of each sample's image (after replacement)
};

class Loader {
 public:
  // `data` must outlive the loader. Throws intl::Error for an invalid configuration.
  Loader(const ImageSource& data, LoaderConfig config);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int steps_per_epoch() const { return steps_; }
  const LoaderConfig& config() const { return config_; }

  // Begins (or restarts) epoch `epoch` at batch `first_step` in [0, steps_per_epoch()]. Work left over from
  // an unfinished epoch is abandoned.
  void start_epoch(int epoch, int first_step = 0);
  // The next batch of the current epoch, or nullptr after its last batch. Rethrows a worker's error.
  const Batch* next();

 private:
  struct Slot {
    std::vector<std::vector<float>> views;  // per view (batch_size, H, W, C)
    std::vector<int32_t> labels, indices;
    Batch batch;
    int step = -1;
    int chunks_left = 0;
    bool ready = false;
  };
  struct Scratch {
    ImageF image;
    Augmenter augmenter;
  };

  int batch_size_of(int step) const;
  int chunks_of(int step) const;
  bool work_available() const;
  void claim_slot(int step);
  void make_samples(int epoch, int step, int lo, int hi, Slot& slot, Scratch& scratch) const;
  void worker_loop();

  const ImageSource& data_;
  LoaderConfig config_;
  Normalization normalization_;
  std::vector<AugmentConfig> view_configs_;  // the augmented views in order (empty in evaluation mode)
  int steps_ = 0;
  std::vector<int32_t> order_;  // (size) dataset index at each position of the current epoch
  std::vector<Slot> slots_;
  Scratch caller_scratch_;      // used when workers == 0

  std::mutex mutex_;
  std::condition_variable work_cv_, ready_cv_;
  std::vector<std::thread> threads_;
  int epoch_ = -1;
  int next_step_ = 0;                // the step next() returns next
  int work_step_ = 0, work_chunk_ = 0, work_end_ = 0;  // next work item; work_end_ = 0 pauses workers
  int in_flight_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace intl
