#include "common/config.h"

#include <gtest/gtest.h>

#include "common/units.h"

namespace reservoir {

TEST(config_test, defaults_mount_root_on_local_directory) {
  Config c = default_config();
  ASSERT_EQ(c.mounts.size(), 1u);
  EXPECT_EQ(c.mounts[0].path, "/");
  EXPECT_EQ(c.mounts[0].ufs, "file://./reservoir-data/ufs");
  EXPECT_EQ(c.mounts[0].write_mode, WriteMode::write_back);
  EXPECT_TRUE(c.default_credentials());
}

TEST(config_test, parses_the_design_example) {
  auto c = parse_config(R"(
[server]
s3_listen = "127.0.0.1:9100"
data_dir = "/tmp/x"
durability = "none"
[auth]
access_key = "ak"
secret_key = "sk"
[[mount]]
path = "/datasets"
ufs = "mem://d"
write_mode = "cache-through"
persist = { max_ops_per_sec = 100, max_bytes_per_sec = "200MiB", concurrency = 16, delay = "1s" }
on_full = "reject"
[[policy]]
path = "/datasets/tmp/"
write_mode = "transient"
ttl = "1h"
)");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->server.s3_listen, "127.0.0.1:9100");
  EXPECT_EQ(c->server.durability, Durability::none);
  ASSERT_EQ(c->mounts.size(), 1u);
  EXPECT_EQ(c->mounts[0].persist.max_bytes_per_sec, 200ull << 20);
  EXPECT_EQ(c->mounts[0].persist.delay.count(), 1000);
  EXPECT_EQ(c->mounts[0].on_full, OnFull::reject);
  ASSERT_EQ(c->policies.size(), 1u);
  EXPECT_EQ(*c->policies[0].write_mode, WriteMode::transient);
  EXPECT_EQ(c->policies[0].ttl->count(), 3600 * 1000);
}

TEST(config_test, rejects_bad_values_with_the_key_name) {
  auto c = parse_config("[[mount]]\npath = \"/\"\nufs = \"file:///x\"\nwrite_mode = \"sometimes\"\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("write_mode"), std::string::npos);
  auto d = parse_config("[server]\nthreads = \"many\"\n");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("server.threads"), std::string::npos);
  EXPECT_FALSE(parse_config("this is = = not toml").ok());
}

// A configuration it cannot honour as written is refused, naming the
// setting, rather than run with a surprise default.
TEST(config_test, refuses_what_it_would_otherwise_ignore_or_misread) {
  struct Case {
    const char* toml;
    const char* names;
  };
  for (const Case& k : std::initializer_list<Case>{
           {"[server]\ns3_listn = \"127.0.0.1:1\"\n", "server.s3_listn"},
           {"[mount]\npath = \"/\"\nufs = \"s3://b/p\"\n", "[[mount]]"},
           {"[tier]\npath = \"/tmp/t\"\n", "[[tier]]"},
           {"[servr]\n", "servr"},
           {"[[mount]]\npath = \"/\"\nufs = \"mem://a\"\npersist = { concurency = 4 }\n", "mount[0].persist.concurency"},
           {"[[mount]]\npath = \"/d\"\nufs = \"mem://a\"\n[[mount]]\npath = \"/d\"\nufs = \"mem://b\"\n", "same path"},
           {"[[tier]]\npath = \"/tmp/t\"\n[[tier]]\npath = \"/tmp/t/\"\n", "same directory"},
           {"[server]\nlog_level = \"verbose\"\n", "log_level"},
           {"[[tier]]\npath = \"/tmp/t\"\nquota = -1\n", "tier[0].quota"},
           {"[[policy]]\npath = \"/b/\"\nttl = \"0s\"\n", "policy[0].ttl"},
           {"[server]\ndrain_timeout = -1\n", "server.drain_timeout"},
           {"[server]\nio_threads = 0\n", "server.io_threads"},
           {"[server]\nmax_header_bytes = 0\n", "server.max_header_bytes"},
           {"[server]\nheader_timeout = 0\n", "server.header_timeout"},
           {"[cache]\nttl_check_interval = \"0s\"\n", "cache.ttl_check_interval"},
       }) {
    auto c = parse_config(k.toml);
    ASSERT_FALSE(c.ok()) << "accepted: " << k.toml;
    EXPECT_NE(c.status().message().find(k.names), std::string::npos) << c.status().to_string();
  }
}

TEST(config_test, cache_max_metadata_records) {
  EXPECT_EQ(default_config().cache.max_metadata_records, 1'000'000u);
  auto c = parse_config("[cache]\nmax_metadata_records = 5000\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->cache.max_metadata_records, 5000u);
  auto off = parse_config("[cache]\nmax_metadata_records = 0\n");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->cache.max_metadata_records, 0u);
  for (const char* bad : {"max_metadata_records = -1", "max_metadata_records = \"many\"", "max_metadata_records = 1.5"}) {
    auto r = parse_config(std::string("[cache]\n") + bad + "\n");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("max_metadata_records"), std::string::npos) << r.status().message();
  }
}

TEST(config_test, cache_memory_for_small_objects) {
  EXPECT_EQ(default_config().cache.memory, 64ull << 20);
  auto c = parse_config("[cache]\nmemory = \"256MiB\"\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->cache.memory, 256ull << 20);
  auto off = parse_config("[cache]\nmemory = 0\n");
  ASSERT_TRUE(off.ok()) << off.status().to_string();
  EXPECT_EQ(off->cache.memory, 0u);
  auto bad = parse_config("[cache]\nmemory = \"lots\"\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("memory"), std::string::npos);
}

TEST(config_test, sizes_and_durations) {
  EXPECT_EQ(*parse_size("1GiB"), 1ull << 30);
  EXPECT_EQ(*parse_size("20GB"), 20'000'000'000ull);
  EXPECT_EQ(*parse_size("512"), 512u);
  EXPECT_FALSE(parse_size("12 parsecs").ok());
  EXPECT_EQ(parse_duration("1h30m")->count(), 5'400'000);
  EXPECT_EQ(parse_duration("250ms")->count(), 250);
  EXPECT_FALSE(parse_duration("soon").ok());
  EXPECT_EQ(*parse_size("1.5GiB"), 3ull << 29);
  for (const char* bad : {"1.2.3GiB", ".", "20000000TiB"}) EXPECT_FALSE(parse_size(bad).ok()) << bad;
  for (const char* bad : {"1.2.3s", "300000000000d"}) EXPECT_FALSE(parse_duration(bad).ok()) << bad;
}

}  // namespace reservoir
