// The `intl` executable: registers every command and turns exceptions into one-line messages and exit codes
// (0 success, 1 failure, 2 usage error; `intl diff` also returns 1 when results disagree).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "cli/command.h"
#include "engine/allocator.h"
#include "engine/conv_algorithms.h"
#include "engine/cuda/allocator.h"
#include "engine/error.h"
#include "engine/precision.h"
#include "results/out_dir.h"
#include "results/version.h"

// OpenMP threads that spin while waiting steal the cores from the threads doing work whenever the machine
// is shared (a 2-core VM running anything else was measured 90x slower with libgomp's default spin of 300,000
// iterations), while threads that sleep at once (OMP_WAIT_POLICY=PASSIVE) pay a futex wake-up on every
// parallel region (intl bench iternorm: 25% slower than spinning). A short spin, GOMP_SPINCOUNT=10000 (tens
// of microseconds), keeps most of the first and avoids the second. libgomp reads these when it loads, before
// main, so they are set by re-executing once; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone.
// An OMP_NUM_THREADS of more than 16 threads per processor (a typo, 1000000) is lowered to the processor count
// with a warning: libgomp would crash creating them.
static void ensure_openmp_settings(char** argv) {
  bool changed = false;
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    setenv("GOMP_SPINCOUNT", "10000", 1);
    changed = true;
  }
  const long processors = sysconf(_SC_NPROCESSORS_ONLN);
  if (const char* threads = std::getenv("OMP_NUM_THREADS"); threads && processors > 0) {
    char* end = nullptr;
    const long long asked = std::strtoll(threads, &end, 10);
    if (end != threads && (*end == '\0' || *end == ',') && asked > 16 * processors) {
      std::fprintf(stderr, "intl: OMP_NUM_THREADS=%s is more than 16 threads per processor; using %ld\n", threads,
                   processors);
      setenv("OMP_NUM_THREADS", std::to_string(processors).c_str(), 1);
      changed = true;
    }
  }
  if (changed) execv("/proc/self/exe", argv);  // returns only on failure: then run on with the defaults
}

// --verbose: what each allocator holds at the end of the command (system_allocs counts cudaMalloc calls on
// the GPU); a training step that reuses its memory shows the same count after one step as after many. On a GPU
// also how many float32 GEMMs and convolutions ran in each precision (a bf16 run keeps its losses in fp32), and
// under --conv-algo measured | fastest what the timed searches found.
static void print_allocator_counters() {
  auto line = [](const char* name, const intl::AllocatorStats& st) {
    std::fprintf(stderr, "intl: %s allocator: active %.1f MB, peak %.1f MB, cached %.1f MB, %zu system allocations\n",
                 name, st.active_bytes / 1e6, st.peak_bytes / 1e6, st.cached_bytes / 1e6, st.system_allocs);
  };
  line("cpu", intl::cpu_allocator_stats());
  const intl::AllocatorStats gpu = intl::cuda_allocator_stats();
  if (gpu.system_allocs == 0) return;
  line("cuda", gpu);
  const intl::MatmulCounts calls = intl::matmul_counts();
  std::fprintf(stderr, "intl: float32 GEMMs and convolutions: %lld in bf16, %lld in fp32\n", (long long)calls.bf16,
               (long long)calls.fp32);
  const intl::ConvSearchStats search = intl::conv_search_stats();
  if (search.passes > 0)
    std::fprintf(stderr, "intl: %s\n%s", intl::conv_search_summary(search).c_str(),
                 intl::conv_search_slowest(intl::conv_search_passes(), 8).c_str());
}

// "intl pretrain", "intl bench train": the command a parse error belongs to, for the pointer to its --help.
static std::string command_path(const CLI::App& app) {
  std::string path = "intl";
  for (const CLI::App* at = &app; !at->get_subcommands().empty();) {
    at = at->get_subcommands().front();
    path += " " + at->get_name();
  }
  return path;
}

// "'frobnicate' is not an intl command; commands: run, ... (intl --help)" when the error is a missing command and
// the word in its place names none; "" otherwise (CLI11 then says "A subcommand is required").
static std::string unknown_command(CLI::App& app) {
  CLI::App* at = &app;
  while (!at->get_subcommands().empty()) at = at->get_subcommands().front();
  const std::vector<std::string> words = at->remaining();
  if (at->get_require_subcommand_min() == 0 || words.empty() || words.front().rfind("-", 0) == 0) return "";
  const std::string path = command_path(app);
  std::string names;
  for (const CLI::App* sub : at->get_subcommands([](const CLI::App* s) { return !s->get_name().empty(); }))
    names += (names.empty() ? "" : ", ") + sub->get_name();
  return "'" + words.front() + "' is not an " + path + " command; commands: " + names + " (" + path + " --help)";
}

int main(int argc, char** argv) {
  ensure_openmp_settings(argv);
  intl::configure_process_memory();
  CLI::App app{"intl: Spectral Transformation and INTL (ICLR 2024), reproduced and extended"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(INTL_VERSION) + " (" + intl::git_revision() + ")");
  intl::cli::add_run_command(app);
  intl::cli::add_pretrain_command(app);
  intl::cli::add_eval_command(app);
  intl::cli::add_diff_command(app);
  intl::cli::add_plot_command(app);
  intl::cli::add_bench_command(app);
  // A default output folder (runs/NAME-TIME) is made when it is named; one the command never wrote to goes.
  struct RemoveUnusedOutDirs {
    ~RemoveUnusedOutDirs() { intl::results::remove_unused_out_dirs(); }
  } remove_unused_out_dirs;
  try {
    app.parse(argc, argv);
    if (intl::cli::verbose_requested()) print_allocator_counters();
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    if (const std::string unknown = unknown_command(app); !unknown.empty()) {
      std::fprintf(stderr, "intl: %s\n", unknown.c_str());
      return 2;
    }
    const bool extras = dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr;
    if (extras) {
      // An option the command does not have is named as such; other words left over after an option are most
      // often a list written with spaces ("--T 1 3 5").
      const std::string what = e.what();
      std::string unknown_options;
      std::istringstream words(what.substr(what.find(": ") + 2));
      for (std::string w; words >> w;)
        if (w.size() > 1 && w[0] == '-') unknown_options += (unknown_options.empty() ? "" : ", ") + w;
      if (!unknown_options.empty()) {
        std::fprintf(stderr, "intl: %s: not an option of '%s' (see '%s --help')\n", unknown_options.c_str(),
                     command_path(app).c_str(), command_path(app).c_str());
        return 2;
      }
    }
    // CLI11 says "--x: At Most 1 required but received 2" for an option given twice.
    if (const std::string what = e.what(); what.find(": At Most 1 required but received") != std::string::npos) {
      std::fprintf(stderr, "intl: %s: given more than once; give it once (see '%s --help')\n",
                   what.substr(0, what.find(": At Most")).c_str(), command_path(app).c_str());
      return 2;
    }
    const char* hint = extras ? "; a list is one word: --T 1,3,5" : "";
    std::fprintf(stderr, "intl: %s%s (see '%s --help')\n", e.what(), hint, command_path(app).c_str());
    return 2;
  } catch (const intl::cli::ExitCode& e) {
    return e.code;
  } catch (const intl::UsageError& e) {
    std::fprintf(stderr, "intl: %s\n", intl::cli::name_config_source(e.what()).c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "intl: out of memory: lower --batch-size, --image-size or --base-width (or run fewer "
                         "--workers or processes at once)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "intl: %s\n", e.what());
    return 1;
  }
  return 0;
}
