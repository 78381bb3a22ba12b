// Running the intl executable from a test: start it with its output to a log, wait for it or for a file it
// writes, interrupt it, and read what it printed.
#pragma once
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/intl_binary.h"

// Starts the intl binary with `args`, stdout and stderr to `log`.
inline pid_t spawn_intl(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> all{intl_binary()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(intl_binary(), argv.data());
    _exit(127);
  }
  return pid;
}

// The process's wait status.
inline int wait_for(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

// Runs intl to the end: its exit code (-1 when a signal ended it).
inline int run_intl(const std::vector<std::string>& args, const std::string& log) {
  const int status = wait_for(spawn_intl(args, log));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Waits until `path` exists (true) or the process ended without it (false); an ended process stays to be
// reaped by wait_for, which reads its status. After `timeout_s` seconds with neither, kills the process and
// fails the test, so that a stalled process cannot hang the suite.
inline bool wait_for_file(const std::string& path, pid_t pid, double timeout_s = 120) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    if (std::filesystem::exists(path)) return true;
    siginfo_t info{};
    if (waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
      return std::filesystem::exists(path);  // written just before the end
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      wait_for(pid);
      FAIL(path << " did not appear within " << timeout_s << " s: the process stalled and was killed");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts intl with `args` (which write into `out`), waits for `file`, sends the process `sig`, and returns its
// wait status. On a loaded machine the rest of a short run can pass between the file's appearance and the
// signal: a run that ended before the signal could interrupt it (exit code 0, or ended by `sig` itself after
// the training loop had given the signal its default action back) starts again, from an empty `out`, up to
// `attempts` times in all. `delay_s` waits that long after the file appears before the signal (a checkpoint
// file appears at an epoch's end, so a signal sent at once stops the run there; a delay sends it into the
// next epoch's steps).
inline int interrupt_intl(const std::vector<std::string>& args, const std::string& out, const std::string& file,
                          int sig, const std::string& log, int attempts = 5, double delay_s = 0) {
  int status = 0;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    std::filesystem::remove_all(out);
    const pid_t pid = spawn_intl(args, log);
    REQUIRE_MESSAGE(wait_for_file(file, pid), "the run ended without writing " << file << ": " << read_text(log));
    if (delay_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(delay_s));
    kill(pid, sig);
    status = wait_for(pid);
    const bool ran_out = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
                         (sig != SIGKILL && WIFSIGNALED(status) && WTERMSIG(status) == sig);
    if (!ran_out) return status;
    MESSAGE("attempt " << attempt << " of " << attempts << ": the run ended before the signal could interrupt it");
  }
  return status;
}
