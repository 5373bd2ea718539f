// The S3 under store (s3://bucket/prefix): SigV4-signed requests over pooled
// keep-alive connections (HTTPS with certificate checks, or HTTP for local
// endpoints), streaming uploads and ranged downloads, paged ListObjectsV2,
// and multipart uploads above a threshold with parts sent concurrently.
//
// Errors are classified for the persister: 5xx, SlowDown, RequestTimeout,
// resets and timeouts are `unavailable` (retry); 403 and credential errors
// are `permission_denied`, a missing bucket `failed_precondition` (park);
// 404 on a key is `not_found`.
#pragma once

#include <memory>
#include <string>

#include "ufs/ufs.h"

namespace reservoir::ufs {

struct S3Options {
  std::string bucket;
  std::string prefix;          // "" or "some/prefix/" (always ends with '/')
  std::string endpoint;        // "http://127.0.0.1:5000"; "" = https://s3.<region>.amazonaws.com
  std::string region = "us-east-1";
  bool path_style = true;      // false: virtual-hosted (bucket.host)
  std::string access_key, secret_key, session_token;
  std::string ca_file;         // extra CA bundle (AWS_CA_BUNDLE)
  uint64_t multipart_threshold = 64ull << 20;
  uint64_t part_size = 16ull << 20;
  int part_concurrency = 4;
};

// Splits "s3://bucket/prefix" into options.bucket and options.prefix.
Status parse_s3_uri(const std::string& uri, S3Options& out);
// Fills missing credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN, else ~/.aws/credentials (profile AWS_PROFILE or default),
// and ca_file from AWS_CA_BUNDLE.
Status resolve_credentials(S3Options& o);
Result<std::unique_ptr<UnderStore>> make_s3_ufs(S3Options options);

}  // namespace reservoir::ufs
