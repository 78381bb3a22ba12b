#include "engine/conv_algorithms.h"

#include <atomic>
#include <cstdio>

namespace intl {
namespace {
std::atomic<ConvAlgoSearch> g_search{ConvAlgoSearch::heuristic};
}  // namespace

void set_conv_algo_search(ConvAlgoSearch search) { g_search = search; }
ConvAlgoSearch conv_algo_search() { return g_search.load(); }

std::string conv_search_summary(const ConvSearchStats& s) {
  char line[256];
  std::snprintf(line, sizeof line,
                "convolution algorithms timed for %lld passes: chosen %.2f ms, fastest %.2f ms (+%.1f%%), a "
                "non-deterministic algorithm fastest in %lld",
                (long long)s.passes, s.chosen_ms, s.fastest_ms,
                s.fastest_ms > 0 ? 100.0 * (s.chosen_ms - s.fastest_ms) / s.fastest_ms : 0.0,
                (long long)s.nondeterministic_won);
  return line;
}

}  // namespace intl
