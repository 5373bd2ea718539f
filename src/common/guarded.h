// One round of a background loop, guarded: an exception it throws is logged
// and the loop goes on with its next round, instead of escaping the thread
// and ending the process (std::terminate). Errors are values in this code
// base; what can still throw is the standard library (bad_alloc,
// length_error) and third-party code.
#pragma once

#include <exception>

#include "common/log.h"

namespace reservoir {

// Runs fn(); false if it threw (logged with `what`).
template <class F>
bool guarded(const char* what, F&& fn) {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    LOG_ERROR("{}: {}; going on", what, e.what());
  } catch (...) {
    LOG_ERROR("{}: unknown exception; going on", what);
  }
  return false;
}

}  // namespace reservoir
