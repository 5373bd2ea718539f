#include "ufs/memory_ufs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/hash.h"

namespace reservoir::ufs {
namespace {

Status put(MemoryUfs& u, const std::string& path, const std::string& data, ObjectInfo meta = {}) {
  StringSource src(data);
  return u.put(path, src, data.size(), meta);
}

std::vector<std::string> paths(const ListPage& p) {
  std::vector<std::string> out;
  for (auto& e : p.entries) out.push_back(e.path);
  return out;
}

}  // namespace

TEST(memory_ufs_test, put_get_head_round_trip) {
  MemoryUfs u;
  ObjectInfo meta;
  meta.content_type = "text/plain";
  meta.user_meta = {{"a", "b"}};
  ASSERT_TRUE(put(u, "bkt/k", "hello world", meta).ok());
  auto h = u.head("bkt/k");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->path, "bkt/k");
  EXPECT_EQ(h->size, 11u);
  EXPECT_EQ(h->etag, hex_encode(md5_raw("hello world")));  // computed when not given
  EXPECT_EQ(h->content_type, "text/plain");
  EXPECT_EQ(h->user_meta, meta.user_meta);
  auto g = u.get("bkt/k", 6, 3);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(read_all(**g).value(), "wor");
  EXPECT_EQ(u.data("bkt/k"), std::optional<std::string>("hello world"));
  EXPECT_EQ(u.object_count(), 1u);
  EXPECT_EQ(u.puts(), 1u);
  EXPECT_EQ(u.bytes_served(), 3u);
}

TEST(memory_ufs_test, given_etag_is_kept) {
  MemoryUfs u;
  ObjectInfo meta;
  meta.etag = "abc-2";
  ASSERT_TRUE(put(u, "bkt/k", "x", meta).ok());
  EXPECT_EQ(u.head("bkt/k")->etag, "abc-2");
}

TEST(memory_ufs_test, absent_is_not_found_and_remove_is_idempotent) {
  MemoryUfs u;
  EXPECT_EQ(u.head("bkt/none").status().code(), Code::not_found);
  EXPECT_EQ(u.get("bkt/none", 0, UINT64_MAX).status().code(), Code::not_found);
  EXPECT_FALSE(u.data("bkt/none").has_value());
  ASSERT_TRUE(put(u, "bkt/k", "v").ok());
  EXPECT_TRUE(u.remove("bkt/k").ok());
  EXPECT_TRUE(u.remove("bkt/k").ok());
  EXPECT_FALSE(u.data("bkt/k").has_value());
}

TEST(memory_ufs_test, list_is_ordered_with_prefix_start_after_and_max) {
  MemoryUfs u;
  for (std::string k : {"bkt/b", "bkt/a/c/d", "bkt/a", "bkt/a/b", "bkt/a-b", "bk/x", "bkt2/a"})
    ASSERT_TRUE(put(u, k, k).ok());
  auto all = u.list("bkt/", "", 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(paths(*all), (std::vector<std::string>{"bkt/a", "bkt/a-b", "bkt/a/b", "bkt/a/c/d", "bkt/b"}));
  EXPECT_FALSE(all->truncated);

  auto after = u.list("bkt/", "bkt/a-b", 100);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(paths(*after), (std::vector<std::string>{"bkt/a/b", "bkt/a/c/d", "bkt/b"}));

  auto pre = u.list("bkt/a/", "", 100);
  ASSERT_TRUE(pre.ok());
  EXPECT_EQ(paths(*pre), (std::vector<std::string>{"bkt/a/b", "bkt/a/c/d"}));

  auto page = u.list("bkt/", "", 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(paths(*page), (std::vector<std::string>{"bkt/a", "bkt/a-b"}));
  EXPECT_TRUE(page->truncated);

  auto exact = u.list("bkt/a/", "", 2);
  ASSERT_TRUE(exact.ok());
  EXPECT_FALSE(exact->truncated);  // nothing more under the prefix
}

TEST(memory_ufs_test, fail_next_fails_the_next_calls_then_recovers) {
  MemoryUfs u;
  ASSERT_TRUE(put(u, "bkt/k", "v").ok());
  u.fail_next(2, unavailable("injected"));
  auto h = u.head("bkt/k");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Code::unavailable);
  EXPECT_EQ(h.status().message(), "injected");
  EXPECT_TRUE(h.status().retryable());
  Status p = put(u, "bkt/k", "new");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.code(), Code::unavailable);
  EXPECT_EQ(u.data("bkt/k"), std::optional<std::string>("v"));  // the failed put changed nothing
  EXPECT_EQ(u.puts(), 1u);

  EXPECT_TRUE(u.head("bkt/k").ok());
  EXPECT_TRUE(put(u, "bkt/k", "new").ok());
  EXPECT_EQ(u.data("bkt/k"), std::optional<std::string>("new"));
}

TEST(memory_ufs_test, fail_next_applies_to_every_operation) {
  MemoryUfs u;
  u.fail_next(1, permission_denied("nope"));
  EXPECT_EQ(u.list("", "", 10).status().code(), Code::permission_denied);
  u.fail_next(1, permission_denied("nope"));
  EXPECT_EQ(u.remove("bkt/x").code(), Code::permission_denied);
  u.fail_next(1, permission_denied("nope"));
  EXPECT_EQ(u.make_dir("bkt").code(), Code::permission_denied);
  u.fail_next(1, permission_denied("nope"));
  EXPECT_EQ(u.get("bkt/x", 0, 1).status().code(), Code::permission_denied);
  EXPECT_TRUE(u.make_dir("bkt").ok());
}

TEST(memory_ufs_test, hold_writes_blocks_put_until_release) {
  MemoryUfs u;
  u.hold_writes(true);
  std::atomic<bool> finished{false};
  std::thread t([&] {
    Status st = put(u, "bkt/held", "data");
    EXPECT_TRUE(st.ok());
    finished = true;
  });
  // Reads are not held.
  EXPECT_EQ(u.head("bkt/held").status().code(), Code::not_found);
  EXPECT_FALSE(finished.load());
  EXPECT_FALSE(u.data("bkt/held").has_value());
  u.hold_writes(false);
  t.join();
  EXPECT_TRUE(finished.load());
  EXPECT_EQ(u.data("bkt/held"), std::optional<std::string>("data"));
}

TEST(memory_ufs_test, dirs_are_tracked) {
  MemoryUfs u;
  ASSERT_TRUE(u.make_dir("b1").ok());
  ASSERT_TRUE(u.make_dir("b2").ok());
  EXPECT_TRUE(u.dir_exists("b1").value());
  EXPECT_EQ(u.list_dirs().value(), (std::vector<std::string>{"b1", "b2"}));
  ASSERT_TRUE(put(u, "b1/k", "v").ok());
  EXPECT_EQ(u.remove_dir("b1").code(), Code::failed_precondition);
  ASSERT_TRUE(u.remove("b1/k").ok());
  EXPECT_TRUE(u.remove_dir("b1").ok());
  EXPECT_FALSE(u.dir_exists("b1").value());
}

}  // namespace reservoir::ufs
