#include "common/hash.h"

#include <gtest/gtest.h>

namespace reservoir {

TEST(hash_test, crc32c_matches_the_standard_check_value) {
  // CRC-32C check value of "123456789" (RFC 3720).
  EXPECT_EQ(crc32c("123456789"), 0xe3069283u);
  // Incremental equals one-shot, on the hardware and table paths alike.
  std::string big(100003, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  uint32_t inc = crc32c_extend(0, big.data(), 1000);
  inc = crc32c_extend(inc, big.data() + 1000, big.size() - 1000);
  EXPECT_EQ(inc, crc32c(big));
}

TEST(hash_test, crc32_and_crc64nvme_check_values) {
  EXPECT_EQ(crc32_extend(0, "123456789", 9), 0xcbf43926u);
  auto h = make_hasher(HashAlgo::crc64nvme);
  h->update("123456789");
  EXPECT_EQ(hex_encode(h->digest()), "ae8b14860a799888");
}

TEST(hash_test, base64_round_trip_and_rejects_garbage) {
  EXPECT_EQ(base64_encode("hello"), "aGVsbG8=");
  EXPECT_EQ(*base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(*base64_decode(""), "");
  EXPECT_FALSE(base64_decode("abc").has_value());
  EXPECT_FALSE(base64_decode("!!!!").has_value());
}

TEST(hash_test, md5_and_sha256_known_values) {
  EXPECT_EQ(hex_encode(md5_raw("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace reservoir
