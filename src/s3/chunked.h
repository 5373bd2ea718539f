// Decoder for `Content-Encoding: aws-chunked` request bodies.
//
// Push-style so that it needs no I/O: the caller feeds raw body bytes as they
// arrive and gets decoded payload bytes back. Handles
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD          chunk-signature on every chunk
//   STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER  … plus signed trailers
//   STREAMING-UNSIGNED-PAYLOAD-TRAILER          no signatures, trailing checksums
// Wire format per chunk: hex-size[;chunk-signature=<64 hex>]\r\n<data>\r\n,
// ended by a zero-size chunk, then optional trailer lines "name:value\r\n",
// an optional "x-amz-trailer-signature:<hex>\r\n", and a final "\r\n".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/hash.h"
#include "common/status.h"
#include "s3/sigv4.h"

namespace reservoir::s3 {

class AwsChunkedDecoder {
 public:
  enum class Mode { signed_chunks, signed_chunks_trailer, unsigned_trailer };

  // `auth` is used for signature checks in the signed modes (its signing_key,
  // amz_date, scope and seed_signature); ignored for unsigned_trailer.
  AwsChunkedDecoder(Mode mode, AuthResult auth);

  // Consumes `in` (any split of the raw body is accepted) and appends decoded
  // payload to `out`. Errors: IncompleteBody / SignatureDoesNotMatch /
  // InvalidChunkSizeError / InvalidRequest in Status::s3_code().
  Status feed(std::string_view in, std::string* out);
  // Call at end of the raw body: ok only if the final chunk and the trailer
  // section were complete (and the trailer signature matched).
  Status finish() const;
  bool done() const;

  // Trailer headers received (names lower-case), e.g. {"x-amz-checksum-crc32", "AAAAAA=="}.
  const std::vector<std::pair<std::string, std::string>>& trailers() const { return trailers_; }
  uint64_t decoded_bytes() const { return decoded_; }

 private:
  enum class State { size_line, data, data_crlf, trailer, done };
  Status on_size_line(std::string_view line);
  Status on_trailer_line(std::string_view line);
  Status feed_impl(std::string_view in, std::string* out);
  Status end_chunk();       // verifies the finished chunk's signature
  Status end_trailer();     // verifies the trailer signature

  Mode mode_;
  AuthResult auth_;
  State state_ = State::size_line;
  std::string line_;            // partial line being assembled
  uint64_t chunk_left_ = 0;     // bytes of data left in the current chunk
  std::string chunk_sig_;       // signature announced for the current chunk
  std::string prev_sig_;        // previous signature in the chain
  std::unique_ptr<Hasher> chunk_hash_;  // SHA-256 of the current chunk (signed modes only)
  bool last_chunk_ = false;
  std::string trailer_block_;   // canonical trailer text for trailer signatures
  std::string trailer_sig_;
  uint64_t decoded_ = 0;
  std::vector<std::pair<std::string, std::string>> trailers_;
  Status error_;                // sticky: once feed() failed, it keeps failing
};

}  // namespace reservoir::s3
