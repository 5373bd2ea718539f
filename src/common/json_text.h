// JSON text for answers and records that never throws: bytes that are not
// UTF-8 (a raw prefix of an admin query, a name listed from an under store
// written by others) come out as U+FFFD instead of ending the request.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace reservoir {

inline std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace reservoir
