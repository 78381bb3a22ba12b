// What the batch loader draws images from: a fixed, indexed list of labelled RGB images that worker threads
// decode concurrently. CifarDataset (images in memory) and ImageFolder (files decoded on demand) are the two.
#pragma once
#include <cstdint>

#include "data/image.h"
#include "data/transforms.h"

namespace intl {

class ImageSource {
 public:
  virtual ~ImageSource() = default;

  virtual int size() const = 0;
  virtual int num_classes() const = 0;
  virtual int32_t label(int index) const = 0;  // in [0, num_classes())
  // The per-channel statistics its images are normalised with by default.
  virtual Normalization normalization() const = 0;
  // Writes image `index` to `image` as float CHW RGB in [0, 1] and returns the index of the image written:
  // `index` itself, unless the source replaced a bad image by another (ImageFolder's skip policy), whose label
  // then goes with it. Called from several threads at once; throws intl::Error naming what failed.
  virtual int decode(int index, ImageF& image) const = 0;
};

}  // namespace intl
