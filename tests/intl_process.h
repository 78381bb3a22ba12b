// Running the intl executable from a test: start it with its output to a log, wait for it or for a file it
// writes, and read what it printed.
#pragma once
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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

// Waits until `path` exists (true) or the process ended (false).
inline bool wait_for_file(const std::string& path, pid_t pid) {
  for (;;) {
    if (std::filesystem::exists(path)) return true;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
