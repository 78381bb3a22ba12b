// See engine/durable.h.
#include "engine/durable.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

namespace intl {

void sync_folder_of(const std::string& path) {
  const std::filesystem::path target(path);
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace intl
