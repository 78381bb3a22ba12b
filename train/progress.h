// The progress display of a training loop: on a terminal one line redrawn in place (at most a few times a
// second); otherwise a plain line every `log_every_s` seconds, so logs stay readable. Each line says the
// epoch, the step, the loss, the learning rate, the images per second since the last line and the time
// left. Epoch summaries are always printed as lines of their own.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace intl::train {

class Progress {
 public:
  // total_steps: of the whole run (the time left is estimated from the steps this process has timed).
  Progress(std::string label, int epochs, int steps_per_epoch, int64_t total_steps, int images_per_step,
           double log_every_s, std::FILE* out = stdout);
  // After each training step: the step's position (1-based step within the epoch), loss and lr.
  void step(int epoch, int step_in_epoch, int64_t global_step, double loss, double lr);
  // A line of its own (an epoch summary, a note), after clearing a redrawn line.
  void line(const std::string& text);
  // Seconds the training steps took in this process, and the images they processed.
  double step_seconds() const { return step_seconds_; }
  int64_t images() const { return images_; }
  // Time spent outside steps (evaluation, checkpoints) is not step time: call this after such work, and the
  // next step() is timed from here.
  void restart_clock();

 private:
  using clock = std::chrono::steady_clock;
  std::string label_;
  int epochs_, steps_per_epoch_;
  int64_t total_steps_;
  int images_per_step_;
  double log_every_s_;
  std::FILE* out_;
  bool terminal_;
  bool line_open_ = false;
  clock::time_point last_step_end_, last_print_;
  double step_seconds_ = 0, window_seconds_ = 0;
  int64_t images_ = 0, window_images_ = 0, steps_done_ = 0;
  bool printed_once_ = false;
};

// "1h02m", "4m05s", "12s".
std::string format_duration(double seconds);

}  // namespace intl::train
