// Checkpoints in the safetensors format (huggingface/safetensors): an 8-byte little-endian header length,
// a JSON header {name: {"dtype": "F32" | "F64" | "I64" | "I32" | "U8", "shape": [...], "data_offsets":
// [begin, end]}, "__metadata__": {string: string}}, then the raw little-endian data. Module state is saved
// under torchvision's names, so a backbone saved here loads into torchvision.models.resnet18() with
// load_state_dict(strict=False) (only fc missing), and one saved from PyTorch loads here.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/module.h"

namespace intl {

using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsContents {
  NamedTensorList tensors;  // CPU tensors, in the order of their data in the file
  std::map<std::string, std::string> metadata;
};

// Writes the tensors (any device, any strides; names unique) to `path` atomically: a temporary file in the
// same folder, then a rename. Errors (unwritable folder, duplicate name, unsupported dtype) name the file.
void write_safetensors(const std::string& path, const NamedTensorList& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Reads and validates a whole file. A folder or other path that is not a regular file, a truncated file, a
// header length beyond the file, malformed JSON, an unknown dtype, or data offsets that disagree with the shape
// or leave the data section are intl::Error naming the file and the tensor.
SafetensorsContents read_safetensors(const std::string& path);

// The name of the first tensor of a floating dtype (F32, F64, BF16; any device) that holds NaN or inf, in list
// order; empty when every one is finite. Integer tensors are skipped.
std::string first_non_finite_tensor(const NamedTensorList& tensors);

// A module's parameters and buffers, by their dotted names.
void save_safetensors(const Module& module, const std::string& path,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsLoadReport {
  std::vector<std::string> missing;     // in the module, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the module
};

// Copies the file's tensors into the module's parameters and buffers in place (optimizers keep their
// references; tensors keep their device). A wrong shape or dtype is always an Error naming the tensor and
// the file; missing or unexpected names are an Error when `strict`, and only reported otherwise. Nothing is
// modified unless the whole load succeeds.
SafetensorsLoadReport load_safetensors(Module& module, const std::string& path, bool strict = true);

}  // namespace intl
