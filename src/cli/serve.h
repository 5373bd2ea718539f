// `reservoir serve`: starts a worker with the given configuration and runs
// until SIGTERM/SIGINT, then drains gracefully.
#pragma once

#include "common/config.h"

namespace reservoir::cli {

int serve(Config config);

}  // namespace reservoir::cli
