// How the GPU chooses each convolution pass's cuDNN algorithm, once per shape (engine/cuda/conv.cpp):
//   heuristic (the default): cuDNN's heuristics rank the algorithms without running any; deterministic ones
//     first, so the same GPU and cuDNN give the same algorithms, and a fixed seed the same bits, on every run.
//   measured: cuDNN times every algorithm on the shape (cudnnFind*AlgorithmEx, as PyTorch's
//     torch.backends.cudnn.benchmark = True) and the fastest deterministic one runs. The first step of each
//     shape takes longer; which algorithm wins can differ between runs when two are close.
//   fastest: as measured, but a non-deterministic algorithm (atomic accumulation) may win, as in PyTorch with
//     benchmark on and deterministic algorithms not asked for.
// The setting is the run's (`--conv-algo`); the CPU ignores it. Plans are keyed by it, so a change applies to
// the convolutions issued after it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/error.h"

namespace intl {

enum class ConvAlgoSearch { heuristic, measured, fastest };

void set_conv_algo_search(ConvAlgoSearch search);
ConvAlgoSearch conv_algo_search();

inline ConvAlgoSearch parse_conv_algo_search(const std::string& name) {
  if (name == "heuristic") return ConvAlgoSearch::heuristic;
  if (name == "measured") return ConvAlgoSearch::measured;
  if (name == "fastest") return ConvAlgoSearch::fastest;
  throw UsageError("--conv-algo: '" + name + "' is not one of heuristic, measured, fastest");
}
inline const char* conv_algo_search_name(ConvAlgoSearch search) {
  return search == ConvAlgoSearch::measured ? "measured" : search == ConvAlgoSearch::fastest ? "fastest" : "heuristic";
}

// What the timed searches found, summed over every pass they chose for (all zero under heuristic, and
// without CUDA): cuDNN's time for the algorithm chosen and for the fastest one it could run, so that
// `fastest_ms` below `chosen_ms` is the price of asking for determinism.
struct ConvSearchStats {
  int64_t passes = 0;              // passes chosen by timing
  int64_t nondeterministic_won = 0;  // of them, where a non-deterministic algorithm was the fastest
  double chosen_ms = 0, fastest_ms = 0;
};
ConvSearchStats conv_search_stats();

// Each pass a timed search chose for, in the order chosen: where the convolutions' time goes by cuDNN's own
// timing, without a profiler's synchronisations. Each shape is timed once, so one that several layers share
// counts once here (and in ConvSearchStats), not once per layer.
struct ConvPassTime {
  std::string pass;   // "forward" | "backward-data" | "backward-filter"
  std::string shape;  // "x (n, c, h, w), weight (o, i, kh, kw), stride s, pad p"
  int algo = 0;       // cuDNN's algorithm number for that pass
  bool bf16 = false;  // ran on bfloat16 operands
  bool tensor_ops = false, deterministic = true;
  double chosen_ms = 0, fastest_ms = 0;
};
std::vector<ConvPassTime> conv_search_passes();
// The `most` passes of the largest chosen time, a line each, headed by what they share of the whole.
std::string conv_search_slowest(const std::vector<ConvPassTime>& passes, size_t most);
// One line: "convolution algorithms timed for 159 passes: chosen 31.20 ms, fastest 30.90 ms (+1.0%), a
// non-deterministic algorithm fastest in 12".
std::string conv_search_summary(const ConvSearchStats& stats);

}  // namespace intl
