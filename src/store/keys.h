// Keyspaces of the index (internal to the store).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace reservoir::store::keys {

// Keyspaces of the index. Buckets cannot contain '\0' and keys are refused
// with it, so '\0' separates them and keeps byte order = key order.
inline std::string obj_key(const std::string& b, const std::string& k) { return "o" + b + std::string(1, '\0') + k; }
inline std::string dirty_key(const std::string& b, const std::string& k) { return "d" + b + std::string(1, '\0') + k; }
inline std::string parked_key(const std::string& b, const std::string& k) { return "k" + b + std::string(1, '\0') + k; }
inline std::string bucket_key(const std::string& b) { return "b" + b; }
inline std::string upload_key(const std::string& id) { return "u" + id; }
inline std::string part_key(const std::string& id, int n) { return fmt::format("p{}{}{:05d}", id, '\0', n); }
inline constexpr const char* kSeqKey = "m/seq";
inline constexpr const char* kTiersKey = "m/tiers";  // JSON: each tier's directory, in order
inline constexpr uint64_t kSeqBlock = 1 << 16;

inline std::string prefix_end(std::string p) {
  // Smallest string greater than every string with prefix p.
  while (!p.empty() && static_cast<unsigned char>(p.back()) == 0xff) p.pop_back();
  if (p.empty()) return std::string(1, '\xff') + std::string(1, '\xff');
  p.back() = static_cast<char>(static_cast<unsigned char>(p.back()) + 1);
  return p;
}

inline std::pair<std::string, std::string> split_bk(std::string_view rest) {
  auto z = rest.find('\0');
  return {std::string(rest.substr(0, z)), std::string(rest.substr(z + 1))};
}


// Pages of objects cached by page: g<bucket>\0<key>\0<version:16 hex><page:10 hex>.
inline std::string page_prefix(const std::string& b, const std::string& k, uint64_t version) {
  return "g" + b + std::string(1, '\0') + k + std::string(1, '\0') + fmt::format("{:016x}", version);
}
inline std::string page_key(const std::string& b, const std::string& k, uint64_t version, uint64_t page) {
  return page_prefix(b, k, version) + fmt::format("{:010x}", page);
}
// Runtime path rules (pin, ttl): r<path>.
inline std::string rule_key(const std::string& path) { return "r" + path; }

}  // namespace reservoir::store::keys
