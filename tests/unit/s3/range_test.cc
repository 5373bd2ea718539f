#include "s3/range.h"

#include <gtest/gtest.h>

#include <cstring>

#include "s3/errors.h"

namespace reservoir::s3 {
namespace {

// Parses and expects a satisfiable range.
ByteRange expect_range(std::string_view header, uint64_t size) {
  auto r = parse_range(header, size);
  EXPECT_TRUE(r.ok()) << header << ": " << r.status().to_string();
  if (!r.ok()) return {};
  EXPECT_TRUE(r.value().has_value()) << header << " was ignored";
  return r.value().value_or(ByteRange{});
}

void expect_ignored(std::string_view header, uint64_t size) {
  auto r = parse_range(header, size);
  ASSERT_TRUE(r.ok()) << header << ": " << r.status().to_string();
  EXPECT_FALSE(r.value().has_value()) << header << " should be ignored";
}

void expect_invalid_range(std::string_view header, uint64_t size) {
  auto r = parse_range(header, size);
  ASSERT_FALSE(r.ok()) << header << " on size " << size << " should be unsatisfiable";
  ASSERT_NE(r.status().s3_code(), nullptr);
  EXPECT_STREQ(r.status().s3_code(), "InvalidRange");
  EXPECT_EQ(to_s3_error(r.status()).http_status, 416);
}

}  // namespace

TEST(range_test, bounded_range_is_inclusive) {
  ByteRange r = expect_range("bytes=0-9", 100);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 9u);
  EXPECT_EQ(r.length(), 10u);

  r = expect_range("bytes=10-10", 100);
  EXPECT_EQ(r.first, 10u);
  EXPECT_EQ(r.last, 10u);
  EXPECT_EQ(r.length(), 1u);
}

TEST(range_test, open_range_runs_to_the_end) {
  ByteRange r = expect_range("bytes=90-", 100);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(r.last, 99u);
  EXPECT_EQ(r.length(), 10u);
}

TEST(range_test, suffix_range_takes_the_last_bytes) {
  ByteRange r = expect_range("bytes=-10", 100);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(r.last, 99u);
}

TEST(range_test, suffix_larger_than_object_is_the_whole_object) {
  ByteRange r = expect_range("bytes=-500", 100);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.last, 99u);
  EXPECT_EQ(r.length(), 100u);
}

TEST(range_test, last_beyond_size_is_clamped) {
  ByteRange r = expect_range("bytes=50-1000", 100);
  EXPECT_EQ(r.first, 50u);
  EXPECT_EQ(r.last, 99u);
  EXPECT_EQ(r.length(), 50u);
}

TEST(range_test, numbers_past_64_bits_are_clamped_like_any_end_past_the_object) {
  ByteRange r = expect_range("bytes=50-99999999999999999999999", 100);
  EXPECT_EQ(r.first, 50u);
  EXPECT_EQ(r.last, 99u);
  ByteRange whole = expect_range("bytes=-99999999999999999999999", 100);
  EXPECT_EQ(whole.first, 0u);
  EXPECT_EQ(whole.last, 99u);
  expect_invalid_range("bytes=99999999999999999999999-", 100);
}

TEST(range_test, first_at_or_beyond_size_is_invalid_range) {
  expect_invalid_range("bytes=100-", 100);
  expect_invalid_range("bytes=100-200", 100);
  expect_invalid_range("bytes=5000-6000", 100);
}

TEST(range_test, zero_size_object_has_no_satisfiable_range) {
  expect_invalid_range("bytes=0-", 0);
  expect_invalid_range("bytes=0-0", 0);
  expect_invalid_range("bytes=-1", 0);
}

TEST(range_test, zero_length_suffix_is_invalid_range) { expect_invalid_range("bytes=-0", 100); }

TEST(range_test, missing_or_malformed_header_serves_whole_object) {
  expect_ignored("", 100);
  expect_ignored("bytes", 100);
  expect_ignored("bytes=", 100);
  expect_ignored("bytes=-", 100);
  expect_ignored("bytes=abc-def", 100);
  expect_ignored("bytes=1-x", 100);
  expect_ignored("items=0-9", 100);
  expect_ignored("bytes=10", 100);
  expect_ignored("bytes=9-3", 100);  // last < first: syntactically invalid, ignored
}

TEST(range_test, multiple_ranges_are_ignored) {
  expect_ignored("bytes=0-1,5-6", 100);
  expect_ignored("bytes=0-1, -5", 100);
}

TEST(range_test, surrounding_spaces_are_tolerated) {
  ByteRange r = expect_range("  bytes=1-2 ", 100);
  EXPECT_EQ(r.first, 1u);
  EXPECT_EQ(r.last, 2u);
}

}  // namespace reservoir::s3
