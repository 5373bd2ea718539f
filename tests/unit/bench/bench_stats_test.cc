#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bench/stats.h"

namespace reservoir::bench {
namespace {

TEST(bench_stats, percentiles_use_the_nearest_rank) {
  std::vector<uint64_t> v;
  for (uint64_t i = 1; i <= 1000; ++i) v.push_back(i);
  EXPECT_EQ(percentile(v, 50), 500u);
  EXPECT_EQ(percentile(v, 90), 900u);
  EXPECT_EQ(percentile(v, 99), 990u);
  EXPECT_EQ(percentile(v, 99.9), 999u);
  EXPECT_EQ(percentile(v, 100), 1000u);
  EXPECT_EQ(percentile(v, 0.01), 1u);
}

TEST(bench_stats, percentiles_of_few_samples_are_samples) {
  EXPECT_EQ(percentile({}, 50), 0u);
  EXPECT_EQ(percentile({7}, 50), 7u);
  EXPECT_EQ(percentile({7}, 99.9), 7u);
  EXPECT_EQ(percentile({1, 2}, 50), 1u);
  EXPECT_EQ(percentile({1, 2}, 51), 2u);
  EXPECT_EQ(percentile({1, 2, 3, 4}, 99), 4u);
}

TEST(bench_stats, summary_sorts_and_converts_to_milliseconds) {
  std::vector<uint64_t> ns{5'000'000, 1'000'000, 3'000'000, 2'000'000, 4'000'000};
  LatencySummary s = summarize(ns);
  EXPECT_DOUBLE_EQ(s.p50_ms, 3.0);
  EXPECT_DOUBLE_EQ(s.max_ms, 5.0);
  EXPECT_DOUBLE_EQ(s.min_ms, 1.0);
  EXPECT_DOUBLE_EQ(s.mean_ms, 3.0);
  EXPECT_DOUBLE_EQ(s.p99_ms, 5.0);
}

TEST(bench_stats, errors_are_counted_by_code_and_merged) {
  OpStats a, b;
  a.record_ok(1000, 10);
  a.record_error("503 SlowDown");
  b.record_error("503 SlowDown");
  b.record_error("net: Connection reset by peer");
  b.record_ok(3000, 10);
  a.merge(b);
  EXPECT_EQ(a.ops, 5u);
  EXPECT_EQ(a.errors, 3u);
  EXPECT_EQ(a.errors_by_code["503 SlowDown"], 2u);
  EXPECT_EQ(a.latency_ns.size(), 2u);
  OpResult r = finish("put", a, 2.0);
  EXPECT_DOUBLE_EQ(r.ops_per_s, 2.5);
  EXPECT_DOUBLE_EQ(r.mb_per_s, 10e-6);
  auto j = to_json(r);
  EXPECT_EQ(j["errors_by_code"]["503 SlowDown"], 2);
  EXPECT_DOUBLE_EQ(j["latency_ms"]["max"].get<double>(), 0.003);
}

}  // namespace
}  // namespace reservoir::bench
