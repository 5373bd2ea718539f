// Logging: spdlog, one process-wide logger. Use LOG_INFO("x {}", y) etc.
#pragma once

#include <spdlog/spdlog.h>

#define LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)

namespace reservoir {
// level: "debug", "info", "warn", "error".
void init_logging(const std::string& level);
}  // namespace reservoir
