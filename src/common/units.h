// Parsing of human units in configuration: sizes ("200MiB") and durations ("1h30m").
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace reservoir {

// "1024", "64KiB", "1.5GB", "20GiB" (KB/MB/GB/TB are powers of 1000; KiB.. of 1024).
Result<uint64_t> parse_size(std::string_view s);
// "0", "250ms", "30s", "5m", "1h", "1h30m", "2d". A bare number means seconds.
Result<std::chrono::milliseconds> parse_duration(std::string_view s);
std::string format_size(uint64_t bytes);

}  // namespace reservoir
