// Errors that reach the user. Every message names the thing at fault (option, file, field, tensor) and
// what was expected; the CLI maps UsageError to exit code 2 and any other Error to exit code 1.
#pragma once
#include <stdexcept>
#include <string>

namespace intl {

// A failure of the program's input or environment: a bad file, a shape mismatch, a solver failure.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A solver that failed on its input: an eigensolver that did not converge, a matrix that is not positive
// definite. Studies of numerical instability catch it as a result; everything else lets it reach the user.
struct NumericalError : Error {
  using Error::Error;
};

// The user asked for something impossible: unknown option value, malformed config, unwritable --out.
struct UsageError : Error {
  using Error::Error;
};

// Throws Error(message) unless cond holds. Used for contracts whose failure is the caller's fault.
inline void check(bool cond, const std::string& message) {
  if (!cond) throw Error(message);
}

// check() for the paths every operation takes (tensor creation, op arguments, autograd): the message, which
// formats shapes and numbers, is built only when the condition fails. Built eagerly, those messages cost
// more host time than many of the operations they guard (a loop of small ops spent 40% of its time in them).
#define INTL_CHECK(cond, message)                     \
  do {                                                \
    if (!(cond)) throw ::intl::Error(message);        \
  } while (false)

}  // namespace intl
