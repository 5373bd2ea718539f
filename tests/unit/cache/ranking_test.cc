#include "cache/ranking.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace reservoir::cache {
namespace {

std::vector<std::string> order(const Ranking& r) {
  std::vector<std::string> out;
  r.for_each_coldest([&](const std::string& u) {
    out.push_back(u);
    return true;
  });
  return out;
}

TEST(ranking_test, lru_evicts_the_least_recently_used_first) {
  Ranking r(Policy::lru);
  uint64_t t = 0;
  for (auto u : {"a", "b", "c", "d"}) r.touch(u, ++t);
  r.touch("a", ++t);  // a becomes the most recent
  r.touch("c", ++t);
  EXPECT_EQ(order(r), (std::vector<std::string>{"b", "d", "a", "c"}));
}

TEST(ranking_test, lfu_evicts_the_least_frequently_used_first_ties_by_recency) {
  Ranking r(Policy::lfu);
  uint64_t t = 0;
  for (auto u : {"a", "b", "c", "d"}) r.touch(u, ++t);
  for (int i = 0; i < 5; ++i) r.touch("a", ++t);  // a: 6 uses
  for (int i = 0; i < 2; ++i) r.touch("b", ++t);  // b: 3 uses
  r.touch("d", ++t);                              // d: 2 uses, c: 1 use
  EXPECT_EQ(order(r), (std::vector<std::string>{"c", "d", "b", "a"}));
  EXPECT_EQ(r.count("a"), 6u);
}

TEST(ranking_test, a_recent_scan_does_not_displace_frequent_units_under_lfu) {
  // The pattern that separates the two policies: a hot unit used often long
  // ago, then a one-off scan of cold units.
  Ranking lru(Policy::lru), lfu(Policy::lfu);
  uint64_t t = 0;
  for (int i = 0; i < 10; ++i) {
    lru.touch("hot", ++t);
    lfu.touch("hot", t);
  }
  for (auto u : {"s1", "s2", "s3"}) {
    lru.touch(u, ++t);
    lfu.touch(u, t);
  }
  EXPECT_EQ(order(lru).front(), "hot");
  EXPECT_EQ(order(lfu).back(), "hot");
}

TEST(ranking_test, removed_units_leave_the_order) {
  Ranking r(Policy::lru);
  r.touch("a", 1);
  r.touch("b", 2);
  r.remove("a");
  r.remove("zz");  // unknown: nothing happens
  EXPECT_EQ(order(r), (std::vector<std::string>{"b"}));
  EXPECT_FALSE(r.contains("a"));
  EXPECT_EQ(r.size(), 1u);
}

TEST(ranking_test, parse_policy_refuses_unknown_names) {
  EXPECT_TRUE(parse_policy("lru").ok());
  EXPECT_TRUE(parse_policy("lfu").ok());
  EXPECT_FALSE(parse_policy("arc").ok());
}

}  // namespace
}  // namespace reservoir::cache
