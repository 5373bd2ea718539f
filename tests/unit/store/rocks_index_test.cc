// The RocksDB index: object data in blob files, and their garbage collected.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <filesystem>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "store/index.h"
#include "test_util.h"

namespace reservoir::store {
namespace {

using testing_util::TempDir;

constexpr int kValues = 200;
constexpr size_t kValueBytes = 8 * 1024;

std::string key(int i) { return fmt::format("i{:016x}", i); }
std::string value(int i) { return std::string(kValueBytes, static_cast<char>('a' + i % 26)) + std::to_string(i); }

// Bytes in the index's blob files on disk (a file deleted meanwhile counts 0).
uint64_t blob_bytes(const std::string& dir) {
  uint64_t n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    std::error_code ec;
    uint64_t size = e.path().extension() == ".blob" ? std::filesystem::file_size(e.path(), ec) : 0;
    if (!ec) n += size;
  }
  return n;
}

// Waits up to 20 s for the blob files to shrink below `limit` bytes.
bool blob_bytes_fall_below(const std::string& dir, uint64_t limit) {
  for (int i = 0; i < 200; i++) {
    if (blob_bytes(dir) < limit) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// What the collector's checks saw: checks that found counted garbage, and
// collections run.
struct Checks {
  std::atomic<int> with_garbage{0};
  std::atomic<int> collections{0};
  static bool wait_until(const std::function<bool()>& done) {
    for (int i = 0; i < 200 && !done(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return done();
  }
  bool wait_for_garbage() {
    return wait_until([&] { return with_garbage > 0; });
  }
  bool wait_for_collections(int n) {
    return wait_until([&] { return collections >= n; });
  }
  std::function<void(uint64_t, uint64_t, bool)> hook() {
    return [this](uint64_t garbage, uint64_t, bool collected) {
      if (garbage > 0) with_garbage++;
      if (collected) collections++;
    };
  }
};

std::unique_ptr<KvIndex> open(const std::string& dir, const RocksIndexOptions& o) {
  auto r = open_rocks_index(dir, /*wal=*/false, o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r.value()) : nullptr;
}

// Writes kValues values and flushes them into one table file and its blob file.
// The deletes that follow are a second table file, and RocksDB (two table
// files in level 0 start a compaction, OptimizeLevelStyleCompaction) then
// finds the deleted values and counts them as garbage.
void fill(KvIndex& idx) {
  for (int i = 0; i < kValues; i += 10) {
    KvBatch b;
    for (int j = i; j < i + 10; j++) b.put(key(j), value(j));
    ASSERT_TRUE(idx.write(b, false).ok());
  }
  ASSERT_TRUE(idx.sync().ok());
}

// Deletes the values whose number `drop` accepts, then flushes.
template <class F>
void drop_where(KvIndex& idx, F drop) {
  KvBatch b;
  for (int i = 0; i < kValues; i++)
    if (drop(i)) b.del(key(i));
  ASSERT_TRUE(idx.write(b, false).ok());
  ASSERT_TRUE(idx.sync().ok());
}

void expect_values(KvIndex& idx, bool (*kept)(int)) {
  for (int i = 0; i < kValues; i++) {
    auto v = idx.get(key(i));
    ASSERT_TRUE(v.ok()) << v.status().to_string();
    if (kept(i)) {
      ASSERT_TRUE(v.value().has_value()) << i;
      EXPECT_EQ(*v.value(), value(i)) << i;
    } else {
      EXPECT_FALSE(v.value().has_value()) << i;
    }
  }
}

bool every_fourth(int i) { return i % 4 == 0; }
bool none(int) { return false; }

TEST(RocksIndex, LargeValuesLiveInBlobFilesAndSmallOnesDoNot) {
  TempDir dir;
  auto idx = open(dir.path(), {.min_blob_size = 4096});
  fill(*idx);
  EXPECT_GE(blob_bytes(dir.path()), kValues * kValueBytes);
  EXPECT_EQ(idx->stats().blob_bytes, blob_bytes(dir.path()));
  KvBatch b;
  for (int i = 0; i < 100; i++) b.put(fmt::format("o{}", i), std::string(100, 'x'));
  auto before = blob_bytes(dir.path());
  ASSERT_TRUE(idx->write(b, false).ok());
  ASSERT_TRUE(idx->sync().ok());
  EXPECT_EQ(blob_bytes(dir.path()), before);
}

TEST(RocksIndex, PartlyDeadBlobFilesAreRewritten) {
  TempDir dir;
  Checks checks;
  RocksIndexOptions o{.min_blob_size = 1024, .gc_min_garbage = 256 * 1024, .gc_garbage_ratio = 0.5};
  o.on_check = checks.hook();
  auto idx = open(dir.path(), o);
  fill(*idx);
  uint64_t full = blob_bytes(dir.path());
  ASSERT_GE(full, kValues * kValueBytes);
  // Three in four become garbage; the table files' compaction counts it, and
  // the collector rewrites the live quarter.
  drop_where(*idx, [](int i) { return !every_fourth(i); });
  EXPECT_TRUE(checks.wait_for_collections(1));
  EXPECT_TRUE(blob_bytes_fall_below(dir.path(), full / 2)) << blob_bytes(dir.path()) << " of " << full;
  auto st = idx->stats();
  EXPECT_EQ(st.blob_collections, 1u);
  EXPECT_GT(st.blob_bytes, 0u);
  EXPECT_LE(st.blob_bytes, blob_bytes(dir.path()));  // files just made obsolete may linger
  EXPECT_EQ(st.blob_garbage_bytes, 0u);
  expect_values(*idx, every_fourth);
  idx.reset();
  idx = open(dir.path(), o);
  expect_values(*idx, every_fourth);
}

TEST(RocksIndex, WritesDuringACollectionAndClosingDuringOneLoseNothing) {
  TempDir dir;
  RocksIndexOptions o{.min_blob_size = 1024, .gc_min_garbage = 256 * 1024, .gc_garbage_ratio = 0.5};
  auto idx = open(dir.path(), o);
  fill(*idx);
  drop_where(*idx, [](int i) { return !every_fourth(i); });
  // New values, flushed in several table files, while the collection runs.
  for (int round = 0; round < 5; round++) {
    KvBatch b;
    for (int i = 0; i < 40; i++) b.put(fmt::format("j{:04d}", round * 40 + i), value(i));
    ASSERT_TRUE(idx->write(b, false).ok());
    ASSERT_TRUE(idx->sync().ok());
  }
  idx.reset();  // may cancel a collection under way
  idx = open(dir.path(), o);
  expect_values(*idx, every_fourth);
  for (int i = 0; i < 200; i++) {
    auto v = idx->get(fmt::format("j{:04d}", i));
    ASSERT_TRUE(v.ok() && v.value().has_value()) << i;
    EXPECT_EQ(*v.value(), value(i % 40));
  }
}

// Three values in four deleted and counted as garbage by RocksDB, yet (with
// options `o`) the collector must leave the blob files as they are.
void expect_garbage_left(RocksIndexOptions o) {
  TempDir dir;
  Checks checks;
  o.on_check = checks.hook();
  auto idx = open(dir.path(), o);
  fill(*idx);
  uint64_t full = blob_bytes(dir.path());
  drop_where(*idx, [](int i) { return !every_fourth(i); });
  ASSERT_TRUE(checks.wait_for_garbage());
  EXPECT_EQ(checks.collections, 0);
  EXPECT_EQ(blob_bytes(dir.path()), full);
  expect_values(*idx, every_fourth);
}

TEST(RocksIndex, GarbageBelowTheThresholdStays) {
  expect_garbage_left({.min_blob_size = 1024, .gc_min_garbage = 64ull << 20, .gc_garbage_ratio = 0.5});
}

TEST(RocksIndex, NoCollectionWithoutRoomForTheRewrite) {
  RocksIndexOptions o{.min_blob_size = 1024, .gc_min_garbage = 256 * 1024, .gc_garbage_ratio = 0.5};
  o.free_bytes = [](const std::string&) { return uint64_t{64} << 10; };
  expect_garbage_left(o);
}

// After a collection skipped for want of room, the next one waits for
// gc_min_garbage more garbage, even once there is room.
TEST(RocksIndex, ASkippedCollectionWaitsForMoreGarbage) {
  TempDir dir;
  Checks checks;
  std::atomic<uint64_t> room{64 << 10};
  // A ratio low enough that only the floor holds the second check back.
  RocksIndexOptions o{.min_blob_size = 1024, .gc_min_garbage = 256 * 1024, .gc_garbage_ratio = 0.25};
  o.on_check = checks.hook();
  o.free_bytes = [&](const std::string&) { return room.load(); };
  auto idx = open(dir.path(), o);
  fill(*idx);
  drop_where(*idx, [](int i) { return !every_fourth(i); });
  ASSERT_TRUE(checks.wait_for_garbage());
  room = UINT64_MAX;
  int seen = checks.with_garbage;
  // New values, flushed: a check with the same garbage, and room now, but
  // nothing collected.
  for (int i = 0; i < kValues; i += 10) {
    KvBatch b;
    for (int j = i; j < i + 10; j++) b.put(fmt::format("j{:04d}", j), value(j));
    ASSERT_TRUE(idx->write(b, false).ok());
  }
  ASSERT_TRUE(idx->sync().ok());
  ASSERT_TRUE(Checks::wait_until([&] { return checks.with_garbage > seen; }));
  EXPECT_EQ(checks.collections, 0);
  // Three in four of them deleted: more than gc_min_garbage of new garbage
  // (once the flush of the deletes starts a compaction), so it collects.
  KvBatch drop;
  for (int i = 0; i < kValues; i++)
    if (!every_fourth(i)) drop.del(fmt::format("j{:04d}", i));
  ASSERT_TRUE(idx->write(drop, false).ok());
  ASSERT_TRUE(idx->sync().ok());
  EXPECT_TRUE(checks.wait_for_collections(1));
  expect_values(*idx, every_fourth);
}

TEST(RocksIndex, AnAllDeadBlobFileIsDeletedWithoutACollection) {
  TempDir dir;
  RocksIndexOptions o{.min_blob_size = 1024, .gc_min_garbage = 64ull << 20, .gc_garbage_ratio = 0.5};
  auto idx = open(dir.path(), o);
  fill(*idx);
  drop_where(*idx, [](int) { return true; });
  EXPECT_TRUE(blob_bytes_fall_below(dir.path(), 1)) << blob_bytes(dir.path());
  expect_values(*idx, none);
}

}  // namespace
}  // namespace reservoir::store
