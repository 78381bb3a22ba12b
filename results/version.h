// What a result file records about the program that wrote it.
#pragma once

namespace intl {

// The short commit this binary was built from, "-dirty" appended when tracked files differed from it at build
// time, "unknown" outside a git checkout. Taken at every build (cmake/git_revision.cmake), not at configure
// time, so a rebuild after a pull records the new commit.
const char* git_revision();

}  // namespace intl
