#include "s3/key_locks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace reservoir::s3 {
namespace {

TEST(key_locks_test, one_key_is_held_by_one_writer_at_a_time) {
  KeyLocks locks;
  std::atomic<int> inside{0}, most{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto g = locks.lock("b", "k");
        int now = ++inside;
        most = std::max(most.load(), now);
        std::this_thread::yield();
        --inside;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(most.load(), 1);
  EXPECT_EQ(locks.size(), 0u) << "entries are dropped when their last user leaves";
}

TEST(key_locks_test, other_keys_do_not_wait) {
  KeyLocks locks;
  auto held = locks.lock("b", "k");
  std::atomic<bool> done{false};
  std::thread other([&] {
    auto g = locks.lock("b", "other");
    auto g2 = locks.lock("c", "k");  // same key name, other bucket
    done = true;
  });
  other.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(locks.size(), 1u);
}

TEST(key_locks_test, a_write_counts_as_a_change_when_it_ends) {
  KeyLocks locks;
  uint64_t before = locks.changes("b", "k");
  {
    auto g = locks.lock("b", "k");
    EXPECT_EQ(locks.changes("b", "k"), before) << "counted when the write ends, not when it starts";
  }
  EXPECT_EQ(locks.changes("b", "k"), before + 1);
  { auto reader = locks.lock("b", "k", /*change=*/false); }
  EXPECT_EQ(locks.changes("b", "k"), before + 1);
}

}  // namespace
}  // namespace reservoir::s3
