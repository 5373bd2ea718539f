#include <gtest/gtest.h>

#include "bench/command.h"
#include "bench/options.h"
#include "bench/runner.h"

namespace reservoir::bench {
namespace {

TEST(bench_options, fixed_sizes_parse_with_binary_and_decimal_units) {
  auto s = parse_size_dist("10KiB");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->min, 10240u);
  EXPECT_TRUE(s->fixed());
  EXPECT_EQ(s->pick(12345), 10240u);
  EXPECT_EQ(parse_size_dist("16MiB")->max, 16u << 20);
  EXPECT_EQ(parse_size_dist("1GB")->max, 1000000000u);
  EXPECT_EQ(parse_size_dist("1024")->max, 1024u);
}

TEST(bench_options, size_ranges_are_uniform_between_their_bounds) {
  auto s = parse_size_dist("4KiB-1MiB");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->min, 4096u);
  EXPECT_EQ(s->max, 1u << 20);
  EXPECT_FALSE(s->fixed());
  for (uint64_t r = 0; r < 100000; r += 997) {
    uint64_t v = s->pick(mix64(r));
    EXPECT_GE(v, 4096u);
    EXPECT_LE(v, 1u << 20);
  }
  EXPECT_EQ(s->pick(0), 4096u);
  EXPECT_EQ(s->pick((1u << 20) - 4096), 1u << 20);
}

TEST(bench_options, bad_sizes_are_rejected) {
  EXPECT_FALSE(parse_size_dist("").ok());
  EXPECT_FALSE(parse_size_dist("ten").ok());
  EXPECT_FALSE(parse_size_dist("1MiB-4KiB").ok());
  EXPECT_FALSE(parse_size_dist("4KiB-").ok());
}

TEST(bench_options, concurrency_lists_sweep_in_order) {
  auto c = parse_int_list("1,4,16,64,256");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, (std::vector<int>{1, 4, 16, 64, 256}));
  EXPECT_EQ(*parse_int_list(" 8 "), std::vector<int>{8});
  EXPECT_FALSE(parse_int_list("1,,4").ok());
  EXPECT_FALSE(parse_int_list("0").ok());
  EXPECT_FALSE(parse_int_list("-1").ok());
  EXPECT_FALSE(parse_int_list("4x").ok());
}

TEST(bench_options, operations_parse_by_name) {
  auto ops = parse_ops("put,get,raw,stat,list,delete,multipart,mixed");
  ASSERT_TRUE(ops.ok());
  ASSERT_EQ(ops->size(), 8u);
  EXPECT_EQ((*ops)[5], Op::del);
  EXPECT_EQ(op_name(Op::del), "delete");
  EXPECT_EQ(*op_from_name("head"), Op::stat);
  EXPECT_FALSE(parse_ops("put,copy").ok());
}

TEST(bench_options, mix_weights_are_normalised) {
  auto m = parse_mix("put=30,get=60,stat=10");
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->weight[static_cast<int>(Op::put)], 0.3);
  EXPECT_DOUBLE_EQ(m->weight[static_cast<int>(Op::get)], 0.6);
  EXPECT_DOUBLE_EQ(m->weight[static_cast<int>(Op::stat)], 0.1);
  EXPECT_EQ(m->pick(0.0), Op::put);
  EXPECT_EQ(m->pick(0.29), Op::put);
  EXPECT_EQ(m->pick(0.31), Op::get);
  EXPECT_EQ(m->pick(0.95), Op::stat);
  EXPECT_EQ(m->pick(0.999999), Op::stat);
}

TEST(bench_options, bad_mixes_are_rejected) {
  EXPECT_FALSE(parse_mix("put").ok());
  EXPECT_FALSE(parse_mix("put=x").ok());
  EXPECT_FALSE(parse_mix("put=-1,get=2").ok());
  EXPECT_FALSE(parse_mix("put=0,get=0").ok());
  EXPECT_FALSE(parse_mix("list=1").ok());
}

TEST(bench_options, endpoints_need_host_and_port) {
  Endpoint e;
  e.url = "http://127.0.0.1:9000";
  ASSERT_TRUE(parse_endpoint_url(e).ok());
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, 9000);
  e.url = "http://localhost/";
  ASSERT_TRUE(parse_endpoint_url(e).ok());
  EXPECT_EQ(e.port, 80);
  e.url = "https://127.0.0.1:9000";
  EXPECT_FALSE(parse_endpoint_url(e).ok());
  e.url = "http://127.0.0.1:99999";
  EXPECT_FALSE(parse_endpoint_url(e).ok());
  e.url = "http://127.0.0.1:9000/path";
  EXPECT_FALSE(parse_endpoint_url(e).ok());
}

TEST(bench_options, command_line_converts_to_options) {
  BenchCli cli;
  cli.ops = "put,raw";
  cli.concurrency = "1,4";
  cli.duration = "3s";
  cli.compare = "http://127.0.0.1:8080";
  cli.compare_anonymous = true;
  auto o = to_options(cli);
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->ops.size(), 2u);
  EXPECT_DOUBLE_EQ(o->duration_s, 3.0);
  ASSERT_TRUE(o->compare.has_value());
  EXPECT_TRUE(o->compare->anonymous);
  EXPECT_EQ(o->compare->access_key, cli.access_key);
  cli.obj_size = "big";
  EXPECT_FALSE(to_options(cli).ok());
}

TEST(bench_dataset, bodies_are_slices_that_wrap_around) {
  Dataset ds;
  ds.generate(SizeDist{100, 100}, 42);
  ASSERT_EQ(ds.data.size(), (1u << 20) + (1u << 20));
  uint64_t off = ds.data.size() - 10;
  std::string body(ds.data.end() - 10, ds.data.end());
  body.append(ds.data.begin(), ds.data.begin() + 20);
  EXPECT_TRUE(ds.matches(off, 0, body.data(), body.size()));
  EXPECT_TRUE(ds.matches(off, 5, body.data() + 5, 20));
  body[12] ^= 1;
  EXPECT_FALSE(ds.matches(off, 0, body.data(), body.size()));
  // Objects of the prepared set have stable sizes and offsets.
  EXPECT_EQ(ds.object_size(7), 100u);
  EXPECT_EQ(ds.object_offset(7), ds.object_offset(7));
  EXPECT_EQ(ds.object_key(7), "obj/7");
}

}  // namespace
}  // namespace reservoir::bench
