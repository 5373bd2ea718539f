// S3 error codes: one table mapping S3 codes to HTTP statuses, and the
// mapping of generic Status codes to S3 errors.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace reservoir::s3 {

struct S3Error {
  int http_status = 500;
  std::string code;      // "NoSuchKey"
  std::string message;
};

// A Status carrying the S3 error `code` (must be a string literal or another
// static string); its generic Code is derived from the table.
Status s3_error(const char* code, std::string message = "");
// The S3 error a Status stands for.
S3Error to_s3_error(const Status& st);
// <Error><Code>..</Code><Message>..</Message><Resource>..</Resource><RequestId>..</RequestId></Error>
std::string error_xml(const S3Error& e, std::string_view resource, std::string_view request_id);

}  // namespace reservoir::s3
