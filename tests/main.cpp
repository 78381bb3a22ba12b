// The doctest runner for the whole suite. ctest runs it once per test file (--source-file filter).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
