// AWS Signature Version 4 verification for S3 requests.
//
// Supports the Authorization header form and presigned URLs (X-Amz-* query
// parameters). On success returns what the body decoder needs to verify
// aws-chunked chunk signatures. Errors carry S3 codes in Status::s3_code():
// InvalidAccessKeyId, SignatureDoesNotMatch, RequestTimeTooSkewed,
// AccessDenied (expired presigned URL), AuthorizationHeaderMalformed,
// AuthorizationQueryParametersError, InvalidArgument.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "http/request.h"

namespace reservoir::s3 {

// Returns the secret key of an access key, or nullopt if unknown.
using SecretLookup = std::function<std::optional<std::string>(std::string_view access_key)>;

struct AuthResult {
  bool anonymous = false;     // no credentials were presented at all
  bool presigned = false;
  std::string access_key;
  std::string amz_date;       // "20130524T000000Z"
  std::string scope;          // "20130524/us-east-1/s3/aws4_request"
  std::string signing_key;    // raw HMAC key derived for the scope
  std::string seed_signature; // hex signature of the request itself
  // Value of x-amz-content-sha256 ("UNSIGNED-PAYLOAD", a hex SHA-256,
  // "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
  // "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"). "UNSIGNED-PAYLOAD" for presigned.
  std::string payload_hash;
};

// Maximum allowed clock skew for header-signed requests.
inline constexpr std::chrono::minutes kMaxClockSkew{15};

// Verifies the request's signature. A request with neither an Authorization
// header nor X-Amz-Signature returns AuthResult{anonymous = true}.
Result<AuthResult> verify_sigv4(const http::Request& req, const SecretLookup& secrets,
                                std::chrono::system_clock::time_point now);

// --- building blocks, exposed for tests ---

// S3's URI encoding: unreserved characters (A-Z a-z 0-9 - _ . ~) kept, every
// other byte as %XX upper-case; '/' kept when encode_slash is false.
std::string uri_encode(std::string_view s, bool encode_slash);
// Percent-decoding; '+' is NOT treated as space. nullopt on a bad escape.
std::optional<std::string> uri_decode(std::string_view s);

// The canonical request for the given signed header names (lower-case,
// sorted as they appear in SignedHeaders) and payload hash. For presigned
// requests the X-Amz-Signature parameter is excluded from the query.
std::string canonical_request(const http::Request& req,
                              const std::vector<std::string>& signed_headers,
                              std::string_view payload_hash);
std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request);
std::string derive_signing_key(std::string_view secret, std::string_view date,
                               std::string_view region, std::string_view service);

// Signature of one aws-chunked chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
std::string chunk_signature(std::string_view signing_key, std::string_view amz_date,
                            std::string_view scope, std::string_view prev_signature,
                            std::string_view chunk_data);
// Same, from the hex SHA-256 of the chunk data (for streaming decoders that
// hash incrementally instead of buffering the chunk).
std::string chunk_signature_for_hash(std::string_view signing_key, std::string_view amz_date,
                                     std::string_view scope, std::string_view prev_signature,
                                     std::string_view chunk_sha256_hex);
// Signature of the trailing headers (…-PAYLOAD-TRAILER): `trailer_block` is the
// trailer lines each ending in "\n" as canonicalised by the SDKs.
std::string trailer_signature(std::string_view signing_key, std::string_view amz_date,
                              std::string_view scope, std::string_view prev_signature,
                              std::string_view trailer_block);

// Signs a request as a client would (used by tests and by `reservoir bench`):
// adds x-amz-date, x-amz-content-sha256 and Authorization headers.
void sign_request(http::Request& req, std::string_view access_key, std::string_view secret,
                  std::string_view region, std::string_view payload_hash,
                  std::chrono::system_clock::time_point now);

}  // namespace reservoir::s3
