// Durable file replacement: after a file is written to a temporary name, flushed and renamed over its target,
// the rename itself lives in the folder's own data, which must be flushed too for the new file to survive a
// power loss (checkpoints, result files).
#pragma once
#include <string>

namespace intl {

// fsyncs the folder holding `path` (the current folder for a bare name). A failure loses nothing already on
// disk, so it is ignored.
void sync_folder_of(const std::string& path);

}  // namespace intl
