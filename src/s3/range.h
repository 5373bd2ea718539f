// HTTP Range header for GetObject: "bytes=first-last", "bytes=first-", "bytes=-suffix".
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/status.h"

namespace reservoir::s3 {

struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
  uint64_t length() const { return last - first + 1; }
};

// nullopt: serve the whole object (no header, or one S3 ignores: malformed
// syntax, several ranges). Error InvalidRange when no byte is satisfiable.
Result<std::optional<ByteRange>> parse_range(std::string_view header, uint64_t object_size);

}  // namespace reservoir::s3
