#include "cache/record_lru.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace reservoir::cache {
namespace {

std::vector<std::string> ids(const RecordLru& r, size_t n = 100) {
  std::vector<std::string> out;
  for (auto& [id, version] : r.coldest(n)) out.push_back(id);
  return out;
}

TEST(record_lru_test, the_least_recently_used_come_first) {
  RecordLru r;
  r.touch("a", 1);
  r.touch("b", 2);
  r.touch("c", 3);
  EXPECT_TRUE(r.refresh("a"));
  EXPECT_FALSE(r.refresh("z"));
  EXPECT_EQ(ids(r), (std::vector<std::string>{"b", "c", "a"}));
  EXPECT_EQ(ids(r, 2), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(r.size(), 3u);
}

TEST(record_lru_test, touching_a_known_record_moves_it_and_takes_the_new_version) {
  RecordLru r;
  r.touch("a", 1);
  r.touch("b", 2);
  r.touch("a", 7);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.coldest(5), (std::vector<std::pair<std::string, uint64_t>>{{"b", 2}, {"a", 7}}));
  EXPECT_TRUE(r.contains("a", 7));
  EXPECT_FALSE(r.contains("a", 1));
}

TEST(record_lru_test, remove_of_one_version_keeps_a_newer_one) {
  RecordLru r;
  r.touch("a", 5);
  r.remove("a", 4);  // an older version: stays
  EXPECT_TRUE(r.contains("a", 5));
  r.remove("a", 5);
  EXPECT_EQ(r.size(), 0u);
  r.touch("b", 1);
  r.remove("b");  // any version
  r.remove("nothing");
  EXPECT_EQ(r.size(), 0u);
  EXPECT_TRUE(r.coldest(3).empty());
}

TEST(record_lru_test, ids_with_nul_bytes_and_long_ids_are_kept_apart) {
  RecordLru r;
  std::string a("bucket\0key", 10), b("bucket\0kez", 10);
  std::string long_id(300, 'x');
  r.touch(a, 1);
  r.touch(b, 2);
  r.touch(long_id, 3);
  // Many more entries: the map rehashes, the ids it views must stay valid.
  for (int i = 0; i < 10000; ++i) r.touch("k" + std::to_string(i), 10 + i);
  EXPECT_TRUE(r.contains(a, 1));
  EXPECT_TRUE(r.contains(b, 2));
  EXPECT_TRUE(r.contains(long_id, 3));
  EXPECT_EQ(ids(r, 3), (std::vector<std::string>{a, b, long_id}));
  for (int i = 0; i < 10000; ++i) r.remove("k" + std::to_string(i));
  EXPECT_EQ(r.size(), 3u);
}

TEST(record_lru_test, take_coldest_hands_each_caller_other_records) {
  RecordLru r;
  for (int i = 0; i < 5; ++i) r.touch("k" + std::to_string(i), i + 1);
  EXPECT_EQ(r.take_coldest(2), (std::vector<std::pair<std::string, uint64_t>>{{"k0", 1}, {"k1", 2}}));
  EXPECT_EQ(r.take_coldest(2), (std::vector<std::pair<std::string, uint64_t>>{{"k2", 3}, {"k3", 4}}));
  EXPECT_EQ(ids(r), (std::vector<std::string>{"k4", "k0", "k1", "k2", "k3"}));
  EXPECT_EQ(r.size(), 5u);
  EXPECT_EQ(r.take_coldest(10).size(), 5u);
}

}  // namespace
}  // namespace reservoir::cache
