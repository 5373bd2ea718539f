// Hashes, checksums and encodings (OpenSSL, zlib, and a CRC32C).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace reservoir {

std::string hex_encode(std::string_view raw);
std::string base64_encode(std::string_view raw);
// Returns nullopt on malformed input.
std::optional<std::string> base64_decode(std::string_view b64);

std::string sha256_raw(std::string_view data);
std::string sha256_hex(std::string_view data);
std::string hmac_sha256_raw(std::string_view key, std::string_view data);
std::string md5_raw(std::string_view data);

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32c(std::string_view s) { return crc32c_extend(0, s.data(), s.size()); }
uint32_t crc32_extend(uint32_t crc, const void* data, size_t n);

// The checksum algorithms S3 clients send (x-amz-checksum-*), plus MD5.
enum class HashAlgo { md5, sha1, sha256, crc32, crc32c, crc64nvme };

// Name as in the header suffix: "crc32", "crc32c", "sha1", "sha256", "crc64nvme".
const char* hash_algo_name(HashAlgo a);
std::optional<HashAlgo> hash_algo_from_name(std::string_view lower_name);

// Incremental hasher. digest() returns raw bytes (big-endian for CRCs, as S3
// encodes them before base64).
class Hasher {
 public:
  virtual ~Hasher() = default;
  virtual void update(const void* data, size_t n) = 0;
  void update(std::string_view s) { update(s.data(), s.size()); }
  virtual std::string digest() = 0;
};
std::unique_ptr<Hasher> make_hasher(HashAlgo a);

}  // namespace reservoir
