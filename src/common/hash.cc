#include "common/hash.h"

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <zlib.h>

#include <array>
#include <cstring>

namespace reservoir {

std::string hex_encode(std::string_view raw) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.resize(raw.size() * 2);
  for (size_t i = 0; i < raw.size(); ++i) {
    auto c = static_cast<unsigned char>(raw[i]);
    out[2 * i] = kHex[c >> 4];
    out[2 * i + 1] = kHex[c & 15];
  }
  return out;
}

std::string base64_encode(std::string_view raw) {
  std::string out;
  out.resize(4 * ((raw.size() + 2) / 3));
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view b64) {
  if (b64.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.resize(b64.size() / 4 * 3);
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (!b64.empty() && b64.back() == '=') pad++;
  if (b64.size() > 1 && b64[b64.size() - 2] == '=') pad++;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

namespace {

std::string evp_digest(const EVP_MD* md, std::string_view data) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), buf, &len, md, nullptr);
  return std::string(reinterpret_cast<char*>(buf), len);
}

class EvpHasher : public Hasher {
 public:
  explicit EvpHasher(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, md, nullptr); }
  ~EvpHasher() override { EVP_MD_CTX_free(ctx_); }
  void update(const void* data, size_t n) override { EVP_DigestUpdate(ctx_, data, n); }
  std::string digest() override {
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, buf, &len);
    return std::string(reinterpret_cast<char*>(buf), len);
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string be32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
  return s;
}

std::string be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (56 - 8 * i)) & 0xff);
  return s;
}

class Crc32Hasher : public Hasher {
 public:
  explicit Crc32Hasher(bool castagnoli) : castagnoli_(castagnoli) {}
  void update(const void* data, size_t n) override {
    crc_ = castagnoli_ ? crc32c_extend(crc_, data, n) : crc32_extend(crc_, data, n);
  }
  std::string digest() override { return be32(crc_); }

 private:
  bool castagnoli_;
  uint32_t crc_ = 0;
};

// CRC-64/NVME (reflected, poly 0x9a6c9329ac4bc9b5), used by newer AWS SDKs.
class Crc64NvmeHasher : public Hasher {
 public:
  Crc64NvmeHasher() {
    static const std::array<uint64_t, 256> table = [] {
      std::array<uint64_t, 256> t{};
      for (uint64_t i = 0; i < 256; ++i) {
        uint64_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x9a6c9329ac4bc9b5ULL : c >> 1;
        t[i] = c;
      }
      return t;
    }();
    table_ = &table;
  }
  void update(const void* data, size_t n) override {
    auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) crc_ = (*table_)[(crc_ ^ p[i]) & 0xff] ^ (crc_ >> 8);
  }
  std::string digest() override { return be64(~crc_); }

 private:
  const std::array<uint64_t, 256>* table_;
  uint64_t crc_ = ~0ULL;
};

const std::array<uint32_t, 256>& crc32c_table() {
  static const std::array<uint32_t, 256> t = [] {
    std::array<uint32_t, 256> tab{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      tab[i] = c;
    }
    return tab;
  }();
  return t;
}

}  // namespace

namespace {
// Algorithms fetched once: OpenSSL 3 otherwise looks each one up (by name,
// under a lock) on every call, which costs more than hashing a request.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}
const EVP_MD* md5_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "MD5", nullptr);
  return md;
}

// One HMAC context per thread, keyed again for each use.
struct MacCtx {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = mac ? EVP_MAC_CTX_new(mac) : nullptr;
  bool digest_set = false;
  ~MacCtx() {
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
  }
};
}  // namespace

std::string sha256_raw(std::string_view data) { return evp_digest(sha256_md(), data); }
std::string sha256_hex(std::string_view data) { return hex_encode(sha256_raw(data)); }
std::string md5_raw(std::string_view data) { return evp_digest(md5_md(), data); }

std::string hmac_sha256_raw(std::string_view key, std::string_view data) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  thread_local MacCtx m;
  size_t len = 0;
  if (m.ctx) {
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>("SHA256"), 0),
                            OSSL_PARAM_construct_end()};
    // Never a null key: OpenSSL would keep the previous caller's key.
    static const unsigned char kEmpty = 0;
    const auto* k = key.data() ? reinterpret_cast<const unsigned char*>(key.data()) : &kEmpty;
    bool ok = EVP_MAC_init(m.ctx, k, key.size(),
                           m.digest_set ? nullptr : params) == 1 &&
              EVP_MAC_update(m.ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1 &&
              EVP_MAC_final(m.ctx, buf, &len, sizeof(buf)) == 1;
    if (ok) {
      m.digest_set = true;
      return std::string(reinterpret_cast<char*>(buf), len);
    }
  }
  unsigned int ulen = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), buf, &ulen);
  return std::string(reinterpret_cast<char*>(buf), ulen);
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t c, const unsigned char* p, size_t n) {
    while (n >= 8) {
      uint64_t v;
      std::memcpy(&v, p, 8);
      c = static_cast<uint32_t>(__builtin_ia32_crc32di(c, v));
      p += 8;
      n -= 8;
    }
    while (n > 0) {
      c = __builtin_ia32_crc32qi(c, *p++);
      --n;
    }
    return c;
}
#endif

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n) {
  auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  if (hw) return ~crc32c_hw(c, p, n);
#endif
  const auto& t = crc32c_table();
  for (size_t i = 0; i < n; ++i) c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

uint32_t crc32_extend(uint32_t crc, const void* data, size_t n) {
  auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    uInt chunk = n > (1u << 30) ? (1u << 30) : static_cast<uInt>(n);
    crc = static_cast<uint32_t>(::crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

const char* hash_algo_name(HashAlgo a) {
  switch (a) {
    case HashAlgo::md5: return "md5";
    case HashAlgo::sha1: return "sha1";
    case HashAlgo::sha256: return "sha256";
    case HashAlgo::crc32: return "crc32";
    case HashAlgo::crc32c: return "crc32c";
    case HashAlgo::crc64nvme: return "crc64nvme";
  }
  return "?";
}

std::optional<HashAlgo> hash_algo_from_name(std::string_view n) {
  if (n == "crc32") return HashAlgo::crc32;
  if (n == "crc32c") return HashAlgo::crc32c;
  if (n == "sha1") return HashAlgo::sha1;
  if (n == "sha256") return HashAlgo::sha256;
  if (n == "crc64nvme") return HashAlgo::crc64nvme;
  if (n == "md5") return HashAlgo::md5;
  return std::nullopt;
}

std::unique_ptr<Hasher> make_hasher(HashAlgo a) {
  switch (a) {
    case HashAlgo::md5: return std::make_unique<EvpHasher>(md5_md());
    case HashAlgo::sha1: return std::make_unique<EvpHasher>(EVP_sha1());
    case HashAlgo::sha256: return std::make_unique<EvpHasher>(sha256_md());
    case HashAlgo::crc32: return std::make_unique<Crc32Hasher>(false);
    case HashAlgo::crc32c: return std::make_unique<Crc32Hasher>(true);
    case HashAlgo::crc64nvme: return std::make_unique<Crc64NvmeHasher>();
  }
  return nullptr;
}

}  // namespace reservoir
