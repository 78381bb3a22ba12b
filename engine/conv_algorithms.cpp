#include "engine/conv_algorithms.h"

#include <algorithm>
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

std::string conv_search_slowest(const std::vector<ConvPassTime>& passes, size_t most) {
  std::vector<ConvPassTime> sorted = passes;
  std::sort(sorted.begin(), sorted.end(),
            [](const ConvPassTime& a, const ConvPassTime& b) { return a.chosen_ms > b.chosen_ms; });
  if (sorted.size() > most) sorted.resize(most);
  double all = 0, shown = 0;
  for (const ConvPassTime& p : passes) all += p.chosen_ms;
  for (const ConvPassTime& p : sorted) shown += p.chosen_ms;
  char line[512];
  std::snprintf(line, sizeof line, "the %zu slowest of %zu timed convolution passes (%.1f%% of their %.2f ms):\n",
                sorted.size(), passes.size(), all > 0 ? 100.0 * shown / all : 0.0, all);
  std::string s = line;
  for (const ConvPassTime& p : sorted) {
    char faster[48] = "";
    if (p.fastest_ms < p.chosen_ms) std::snprintf(faster, sizeof faster, " (fastest %.3f ms)", p.fastest_ms);
    std::snprintf(line, sizeof line, "  %8.3f ms  %-15s algo %d %s%s%s  %s%s\n", p.chosen_ms, p.pass.c_str(), p.algo,
                  p.bf16 ? "bf16" : "fp32", p.tensor_ops ? " tensor-op" : "",
                  p.deterministic ? "" : " non-deterministic", p.shape.c_str(), faster);
    s += line;
  }
  return s;
}

}  // namespace intl
