// The path of this build's intl executable, for tests that run it. Defined in tests/main.cpp, the one file
// compiled with the build folder's path, so that every test file compiles alike in every build folder.
#pragma once

const char* intl_binary();
