// Progress lines (see train/progress.h).
#include "train/progress.h"

#include <unistd.h>

#include <cmath>

namespace intl::train {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long s = (long long)std::llround(seconds);
  char text[32];
  if (s >= 3600) std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
  else if (s >= 60) std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
  else std::snprintf(text, sizeof text, "%llds", s);
  return text;
}

Progress::Progress(std::string label, int epochs, int steps_per_epoch, int64_t total_steps, int images_per_step,
                   double log_every_s, std::FILE* out)
    : label_(std::move(label)),
      epochs_(epochs),
      steps_per_epoch_(steps_per_epoch),
      total_steps_(total_steps),
      images_per_step_(images_per_step),
      log_every_s_(log_every_s),
      out_(out),
      terminal_(isatty(fileno(out)) == 1),
      last_step_end_(clock::now()),
      last_print_(clock::now()) {}

void Progress::restart_clock() { last_step_end_ = clock::now(); }

void Progress::step(int epoch, int step_in_epoch, int64_t global_step, double loss, double lr) {
  const auto now = clock::now();
  const double dt = std::chrono::duration<double>(now - last_step_end_).count();
  last_step_end_ = now;
  step_seconds_ += dt;
  window_seconds_ += dt;
  images_ += images_per_step_;
  window_images_ += images_per_step_;
  ++steps_done_;
  const double since_print = std::chrono::duration<double>(now - last_print_).count();
  const bool last = global_step >= total_steps_;
  // A terminal is redrawn 4 times a second; a log gets a first line after the first step, then one every
  // log_every_s seconds and one at the end.
  const bool due = terminal_ ? since_print >= 0.25 || last
                             : !printed_once_ || since_print >= log_every_s_ || last;
  if (!due) return;
  const double rate = window_seconds_ > 0 ? double(window_images_) / window_seconds_ : 0.0;
  const double per_step = step_seconds_ / double(steps_done_);
  const double eta = per_step * double(total_steps_ - global_step);
  char text[256];
  std::snprintf(text, sizeof text, "%s epoch %d/%d step %d/%d loss %.4f lr %.4g %.1f img/s ETA %s",
                label_.c_str(), epoch + 1, epochs_, step_in_epoch, steps_per_epoch_, loss, lr, rate,
                format_duration(eta).c_str());
  if (terminal_) {
    std::fprintf(out_, "\r\033[K%s", text);
    line_open_ = true;
  } else {
    std::fprintf(out_, "%s\n", text);
  }
  std::fflush(out_);
  last_print_ = now;
  printed_once_ = true;
  window_seconds_ = 0;
  window_images_ = 0;
}

void Progress::line(const std::string& text) {
  if (line_open_) std::fprintf(out_, "\r\033[K");
  std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
  line_open_ = false;
}

}  // namespace intl::train
