// Validation of bucket names and object keys (S3's rules).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace reservoir::s3 {

// S3 naming rules: 3-63 chars of [a-z0-9.-], starting and ending with a letter
// or digit, no "..", not an IP address. Error: InvalidBucketName.
Status validate_bucket_name(const std::string& name);
// UTF-8, 1..1024 bytes, no NUL. Errors: KeyTooLongError, InvalidArgument.
Status validate_key(const std::string& key);
bool valid_utf8(std::string_view s);
// Length of the well-formed UTF-8 sequence at s[i], 0 when there is none.
size_t utf8_sequence(std::string_view s, size_t i);

}  // namespace reservoir::s3
