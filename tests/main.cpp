// The doctest runner: of the whole suite (intl_tests, which ctest runs once per test file with a --source-file
// filter), and of the CUDA parity tests alone (intl_parity_tests).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "tests/intl_binary.h"

const char* intl_binary() { return INTL_BINARY; }
