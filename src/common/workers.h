// Starting helper threads for work that workers take in turn.
#pragma once

#include <exception>
#include <thread>
#include <vector>

#include "common/log.h"

namespace reservoir {

// Starts up to `n` threads running `fn`, appended to `threads`. The workers
// take the work in turn, so fewer still finish it: if a thread cannot be
// started (no resources), no more are tried, instead of the exception ending
// the process while the threads already started are still joinable.
template <class F>
void start_workers(std::vector<std::thread>& threads, int n, const F& fn, const char* what) {
  for (int i = 0; i < n; ++i) {
    try {
      threads.emplace_back(fn);
    } catch (const std::exception& e) {  // system_error, or bad_alloc for its state
      LOG_WARN("{}: {} of {} helper threads started ({}); going on with those", what, i, n, e.what());
      return;
    }
  }
}

}  // namespace reservoir
