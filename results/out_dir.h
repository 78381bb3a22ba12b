// The --out folder of a command: made and proved writable before any work (a bad path fails at once, not
// after an epoch), and never holding another run's RESULT.json that the command would overwrite.
#pragma once
#include <string>

namespace intl::results {

// runs/NAME-YYYYmmdd-HHMMSS (UTC), the folder of a command run without --out; "-2", "-3", ... appended when
// a run started in the same second already took it. The folder is made here, atomically, so that runs started
// together never share one; remove_unused_out_dirs takes it away again if the command wrote nothing there.
std::string default_out_dir(const std::string& name);

// Removes each folder default_out_dir or prepare_out_dir made in this process that is still empty (a command
// that failed before writing), and runs/ if it made that too and it is empty. Called once as the process ends.
void remove_unused_out_dirs();

// Checks, creating nothing, that `dir` is a folder or can be made one: not a file, and the nearest existing
// folder on its path writable. UsageError naming the path otherwise. For commands that make the folder only
// once their work has succeeded.
void check_out_dir(const std::string& dir);

// Creates `dir` (and its parents) if needed and proves it writable with a probe file; UsageError naming the
// folder otherwise. Returns whether it was created (then remove_unused_out_dirs takes it away if it stays empty).
bool prepare_out_dir(const std::string& dir);

// UsageError when `dir` already holds a RESULT.json, naming the command that wrote it; `to_go_on` ends the
// message (e.g. "pass --resume to continue it, or choose another --out").
void refuse_existing_result(const std::string& dir, const std::string& to_go_on);

}  // namespace intl::results
