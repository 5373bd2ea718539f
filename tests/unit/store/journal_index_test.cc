// The index journal: whatever a power loss leaves of the inner index and of
// the ring, the index reopened from them holds every synced write, and is the
// state after some prefix of the writes (never a mix).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/hash.h"
#include "store/journal_index.h"
#include "test_util.h"

namespace reservoir::store {
namespace {

using testing_util::TempDir;
using State = std::map<std::string, std::string>;

State dump(KvIndex& idx) {
  State s;
  EXPECT_TRUE(idx.scan("", "\xff\xff", [&](std::string_view k, std::string_view v) {
                   if (k != kJournalSeqKey) s.emplace(k, v);
                   return true;
                 }).ok());
  return s;
}

uint32_t digest(const State& s) {
  uint32_t c = 0;
  for (auto& [k, v] : s) {
    c = crc32c_extend(c, k.data(), k.size());
    c = crc32c_extend(c, "=", 1);
    c = crc32c_extend(c, v.data(), v.size());
  }
  return c;
}

// A journaled memory index, and what a power loss leaves of it.
class Journaled {
 public:
  Journaled(std::string path, uint64_t bytes) : path_(std::move(path)), bytes_(bytes) { open(make_memory_index()); }

  KvIndex& idx() { return *index_; }

  // Power loss: the inner index keeps what it synced; the ring keeps its
  // bytes but for [durable_off, durable_end), where `garble` changes bytes at
  // random (the records written after the last fdatasync). Reopens on them.
  JournalOpenInfo power_loss(uint64_t durable_off, uint64_t durable_end, bool garble, std::mt19937& rng) {
    auto survivor = memory_index_after_power_loss(*inner_);
    EXPECT_NE(survivor, nullptr);
    index_.reset();
    if (garble) {
      std::string data(bytes_, '\0');
      FILE* f = std::fopen(path_.c_str(), "r+b");
      EXPECT_NE(f, nullptr);
      EXPECT_EQ(std::fread(data.data(), 1, data.size(), f), data.size());
      std::uniform_int_distribution<int> byte(0, 255), coin(0, 3);
      for (uint64_t o = durable_off; o < durable_end; ++o)
        if (coin(rng) == 0) data[o] = static_cast<char>(byte(rng));
      std::rewind(f);
      EXPECT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
      std::fclose(f);
    }
    return open(std::move(survivor));
  }

 private:
  JournalOpenInfo open(std::unique_ptr<KvIndex> inner) {
    inner_ = inner.get();
    JournalOpenInfo info;
    auto j = open_journaled_index(std::move(inner), path_, bytes_, &info);
    EXPECT_TRUE(j.ok()) << j.status().to_string();
    index_ = std::move(j.value());
    return info;
  }

  std::string path_;
  uint64_t bytes_;
  KvIndex* inner_ = nullptr;
  std::unique_ptr<KvIndex> index_;
};

// Rounds of writes, each ended by a power loss. record_bytes 0: batches of
// 1-3 puts and deletes of random sizes; otherwise one put whose record takes
// exactly that many bytes, so records end right at the end of each half.
void power_losses(uint64_t record_bytes) {
  TempDir dir;
  const uint64_t bytes = 1 << 20;  // a lap every few hundred writes
  // The ring's halves: [first, mid) and [mid, end).
  const uint64_t first = kJournalFirstRecord;
  const uint64_t mid = first + (bytes - first) / 2 / 4096 * 4096, end = 2 * mid - first;
  Journaled j(dir.path() + "/journal", bytes);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> key(0, 19), len(10, 6000), pct(0, 99);
  State model;
  int replays = 0;
  for (int round = 0; round < 12; ++round) {
    // digests[i]: the state after the first i writes of this round.
    std::vector<uint32_t> digests{digest(model)};
    size_t last_synced = 0;
    uint64_t head = journal_position(j.idx()).head, durable_off = head;
    uint64_t half_end = head < mid ? mid : end;  // of the half being written
    int n = 100 + pct(rng) * 5;
    for (int i = 0; i < n; ++i) {
      KvBatch b;
      int ops = record_bytes ? 1 : 1 + pct(rng) % 3;
      for (int o = 0; o < ops; ++o) {
        int kn = key(rng);
        std::string k = record_bytes ? fmt::format("k{:02d}", kn) : "k" + std::to_string(kn);
        if (!record_bytes && pct(rng) < 15) {
          b.del(k);
          model.erase(k);
        } else {
          // A record: 16 bytes, then count, kind, key length, key, value length.
          size_t vlen = record_bytes ? record_bytes - 16 - 4 - 1 - 4 - 3 - 4 : static_cast<size_t>(len(rng));
          std::string v(vlen, static_cast<char>('a' + i % 26));
          std::string tag = std::to_string(round) + "/" + std::to_string(i);
          v.replace(0, std::min(tag.size(), v.size()), tag.substr(0, v.size()));
          b.put(k, v);
          model[k] = v;
        }
      }
      bool sync = pct(rng) < 30;
      ASSERT_TRUE(j.idx().write(b, sync).ok());
      digests.push_back(digest(model));
      uint64_t prev = head;
      head = journal_position(j.idx()).head;
      // The writer went on to the other half (records never straddle the
      // middle): the change fdatasynced the ring, so only records of the new
      // half can be lost.
      if (head < prev || (prev <= mid && head > mid)) {
        half_end = head > mid ? end : mid;
        durable_off = head > mid ? mid : first;
      }
      if (sync) {
        last_synced = digests.size() - 1;
        durable_off = head;
      }
    }
    bool garble = round % 2 == 1;
    auto info = j.power_loss(durable_off, half_end, garble, rng);
    replays += info.replayed > 0;
    State got = dump(j.idx());
    uint32_t d = digest(got);
    // Without garbling, the ring holds every write; with it, at least up to
    // the last synced one.
    size_t from = garble ? last_synced : digests.size() - 1;
    bool prefix = false;
    for (size_t p = from; p < digests.size() && !prefix; ++p) prefix = digests[p] == d;
    ASSERT_TRUE(prefix) << "round " << round << ": not the state after a prefix of >= " << from << " writes of "
                        << digests.size() - 1;
    model = got;
  }
  EXPECT_GT(replays, 6);  // the inner index did lose writes the ring restored
}

TEST(JournalIndex, PowerLossKeepsSyncedWritesAndAPrefix) { power_losses(0); }
TEST(JournalIndex, PowerLossWithRecordsEndingAtTheMiddle) {
  power_losses(64);
  power_losses(4096);
}

TEST(JournalIndex, ConcurrentSyncedWritesAcrossLaps) {
  TempDir dir;
  Journaled j(dir.path() + "/journal", 1 << 20);
  std::mt19937 rng(3);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 400; ++i) {
        KvBatch b;
        b.put("t" + std::to_string(t) + "/" + std::to_string(i % 50),
              std::string(2000 + static_cast<size_t>(i), static_cast<char>('a' + t)) + std::to_string(i));
        ASSERT_TRUE(j.idx().write(b, i % 3 != 0).ok());
      }
      ASSERT_TRUE(j.idx().sync().ok());
    });
  for (auto& t : ts) t.join();
  j.power_loss(0, 0, false, rng);
  State got = dump(j.idx());
  ASSERT_EQ(got.size(), 200u);
  for (int t = 0; t < 4; ++t)
    for (int i = 350; i < 400; ++i)
      EXPECT_EQ(got["t" + std::to_string(t) + "/" + std::to_string(i % 50)],
                std::string(2000 + static_cast<size_t>(i), static_cast<char>('a' + t)) + std::to_string(i));
}

TEST(JournalIndex, RecordLargerThanTheRingIsSyncedByTheIndex) {
  TempDir dir;
  Journaled j(dir.path() + "/journal", 1 << 20);
  std::mt19937 rng(5);
  KvBatch big;
  big.put("big", std::string(600 << 10, 'x'));
  ASSERT_TRUE(j.idx().write(big, true).ok());
  KvBatch small;
  small.put("small", "s");
  ASSERT_TRUE(j.idx().write(small, true).ok());
  uint64_t off = journal_position(j.idx()).head;
  j.power_loss(off, 1 << 19, true, rng);
  State got = dump(j.idx());
  EXPECT_EQ(got["big"].size(), 600u << 10);
  EXPECT_EQ(got["small"], "s");
}

TEST(JournalIndex, BadHeaderOpensOnTheIndexAlone) {
  TempDir dir;
  std::string path = dir.path() + "/journal";
  auto inner = make_memory_index();
  KvBatch b;
  b.put("a", "1");
  ASSERT_TRUE(inner->write(b, true).ok());
  {
    std::string junk(1 << 20, 'J');
    FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  JournalOpenInfo info;
  auto j = open_journaled_index(std::move(inner), path, 1 << 20, &info);
  ASSERT_TRUE(j.ok()) << j.status().to_string();
  EXPECT_EQ(info.replayed, 0u);
  EXPECT_EQ(dump(**j), (State{{"a", "1"}}));
  EXPECT_FALSE(open_journaled_index(make_memory_index(), dir.path() + "/small", 4096).ok());
}

// An inner index whose writes or syncs fail on demand.
class FaultyIndex : public KvIndex {
 public:
  FaultyIndex() : inner_(make_memory_index()) {}
  std::atomic<bool> fail_sync{false};
  std::atomic<int> fail_writes{0};  // the next so many writes fail
  std::string fail_key;              // and every write of a batch holding this key
  std::function<void(const KvBatch&)> on_write;  // sees each write first
  KvIndex& inner() { return *inner_; }

  Result<std::optional<std::string>> get(std::string_view key) override { return inner_->get(key); }
  Status write(const KvBatch& batch, bool sync) override {
    if (on_write) on_write(batch);
    if (fail_writes > 0) {
      --fail_writes;
      return io_error("injected write failure");
    }
    if (!fail_key.empty())
      for (auto& op : batch.ops)
        if (op.first == fail_key) return io_error("injected write failure");
    return inner_->write(batch, sync);
  }
  Status sync() override { return fail_sync ? io_error("injected sync failure") : inner_->sync(); }
  Status scan(std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    return inner_->scan(start, end, fn);
  }

 private:
  std::unique_ptr<KvIndex> inner_;
};

// A ring in front of a FaultyIndex, and its reopening after a power loss
// (the ring kept whole).
struct FaultyJournal {
  TempDir dir;
  std::string path = dir.path() + "/journal";
  FaultyIndex* faulty = nullptr;
  std::unique_ptr<KvIndex> j;

  explicit FaultyJournal(JournalHooks hooks = {}) {
    auto f = std::make_unique<FaultyIndex>();
    faulty = f.get();
    auto r = open_journaled_index(std::move(f), path, 1 << 20, nullptr, std::move(hooks));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    j = std::move(r.value());
  }
  // `ring`: the ring's bytes that survive (else all of them).
  State after_power_loss(JournalOpenInfo* info = nullptr, const std::string* ring = nullptr) {
    auto survivor = memory_index_after_power_loss(faulty->inner());
    j.reset();
    if (ring) {
      FILE* f = std::fopen(path.c_str(), "r+b");
      EXPECT_NE(f, nullptr);
      if (!f) return {};
      EXPECT_EQ(std::fwrite(ring->data(), 1, ring->size(), f), ring->size());
      std::fclose(f);
    }
    auto again = open_journaled_index(std::move(survivor), path, 1 << 20, info);
    EXPECT_TRUE(again.ok()) << again.status().to_string();
    return again.ok() ? dump(**again) : State{};
  }
};

auto put_in(KvIndex& idx, const std::string& k, bool sync = true) {
  KvBatch b;
  b.put(k, "v-" + k);
  return idx.write(b, sync);
}

// A synced write the inner index refuses (applied after the ring's
// fdatasync) is answered with its error, and is not applied at a replay
// either, though it had a record in the ring: the record is made void (same
// length, no operation), so the writes after it are still replayed.
TEST(JournalIndex, RefusedWriteIsNotReplayed) {
  FaultyJournal t;
  ASSERT_TRUE(put_in(*t.j, "a").ok());
  t.faulty->fail_writes = 1;
  EXPECT_FALSE(put_in(*t.j, "b").ok());
  ASSERT_TRUE(put_in(*t.j, "c").ok());
  EXPECT_EQ(dump(*t.j), (State{{"a", "v-a"}, {"c", "v-c"}}));
  JournalOpenInfo info;
  EXPECT_EQ(t.after_power_loss(&info), (State{{"a", "v-a"}, {"c", "v-c"}}));
  EXPECT_EQ(info.replayed, 3u);  // a, b made void, c
}

// Writers in group commits, some of whose writes the inner index refuses:
// after a power loss, the index holds exactly the writes answered OK.
TEST(JournalIndex, RefusedWritesAmongGroupCommits) {
  FaultyJournal t;
  t.faulty->fail_key = "refused";
  std::mutex mu;
  State acked;
  std::vector<std::thread> ts;
  for (int w = 0; w < 4; ++w)
    ts.emplace_back([&, w] {
      for (int i = 0; i < 100; ++i) {
        std::string k = "w" + std::to_string(w) + "/" + std::to_string(i), v = std::string(3000, 'y') + k;
        KvBatch b;
        b.put(k, v);
        if (i % 7 == 3) b.put("refused", "x");
        Status st = t.j->write(b, true);
        EXPECT_EQ(st.ok(), i % 7 != 3) << k;
        std::lock_guard lk(mu);
        if (st.ok()) acked[k] = v;
      }
    });
  for (auto& th : ts) th.join();
  t.faulty->fail_key.clear();
  EXPECT_EQ(dump(*t.j), acked);
  EXPECT_EQ(t.after_power_loss(), acked);
}

// An fdatasync of the ring fails (the kernel may then drop the pages it
// could not write, and a later fdatasync succeeds without them): no write is
// acknowledged on the ring's word after that. The ring is given up, and
// with the inner index's flushes failing too, a power loss that keeps only
// what the ring had durably before the failure loses no acknowledged write.
TEST(JournalIndex, FailedRingSyncLosesNoAcknowledgedWrite) {
  std::mutex img_mu;
  std::string durable_image;  // the ring as of its last fdatasync that worked
  std::atomic<int> calls{0};
  std::atomic<bool> failed{false};
  FaultyIndex* faulty = nullptr;
  JournalHooks hooks;
  hooks.fdatasync = [&](int fd) {
    if (failed) return ::fdatasync(fd);  // "works", but proves nothing now
    if (++calls == 40) {
      failed = true;
      faulty->fail_sync = true;
      errno = EIO;
      return -1;
    }
    // What is written when the call starts is durable when it returns.
    std::string img(1 << 20, '\0');
    EXPECT_EQ(::pread(fd, img.data(), img.size(), 0), static_cast<ssize_t>(img.size()));
    int rc = ::fdatasync(fd);
    std::lock_guard lk(img_mu);
    durable_image = std::move(img);
    return rc;
  };
  FaultyJournal t(hooks);
  faulty = t.faulty;
  std::mutex mu;
  State acked;
  std::atomic<int> unsafe{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < 4; ++w)
    ts.emplace_back([&, w] {
      for (int i = 0; i < 60; ++i) {
        std::string k = "w" + std::to_string(w) + "/" + std::to_string(i);
        std::string v = "<" + k + ">" + std::string(5000, 'z');
        KvBatch b;
        b.put(k, v);
        if (!t.j->write(b, true).ok()) continue;
        // Durable when acknowledged: in what the ring had durably, or in
        // what the inner index synced.
        bool in_ring;
        {
          std::lock_guard lk(img_mu);
          in_ring = durable_image.find("<" + k + ">") != std::string::npos;
        }
        if (!in_ring) {
          auto synced = memory_index_after_power_loss(t.faulty->inner());
          auto got = synced->get(k);
          if (!got.ok() || !got.value() || *got.value() != v) ++unsafe;
        }
        std::lock_guard lk(mu);
        acked[k] = v;
      }
    });
  for (auto& th : ts) th.join();
  ASSERT_TRUE(failed);
  EXPECT_EQ(unsafe, 0);
  t.faulty->fail_sync = false;
  State got;
  {
    std::lock_guard lk(img_mu);
    got = t.after_power_loss(nullptr, &durable_image);
  }
  EXPECT_GE(acked.size(), 10u);
  for (auto& [k, v] : acked) EXPECT_EQ(got[k], v) << k;
}

// The last write before a change of half is refused (its record made
// void), and power is lost before the next flush: the inner index must still
// store a number the next header's start follows, or it would look as if it
// had lost writes, and the index would not open.
TEST(JournalIndex, RefusedLastWriteOfAHalfStillOpens) {
  FaultyJournal t;
  const uint64_t first = kJournalFirstRecord;
  const uint64_t mid = first + ((1 << 20) - first) / 2 / 4096 * 4096;
  auto key = [](int i) { return "k" + std::to_string(i % 30); };
  auto value = [](int i) { return std::string(4000, 'q') + std::to_string(i); };
  auto put_sized = [&](int i) {
    KvBatch b;
    b.put(key(i), value(i));
    return t.j->write(b, true);
  };
  // A record: 16 bytes, then count, kind, key length, key, value length, value; padded to 8.
  auto rec = [&](int i) -> uint64_t { return (16 + 4 + 1 + 4 + key(i).size() + 4 + value(i).size() + 7) / 8 * 8; };
  int i = 0;
  // Up to the last record that fits before the middle, which is refused.
  for (;; ++i) {
    uint64_t head = journal_position(*t.j).head;
    bool last = head + rec(i) <= mid && head + rec(i) + rec(i + 1) > mid;
    if (last) t.faulty->fail_writes = 1;
    Status st = put_sized(i);
    if (last) {
      ASSERT_FALSE(st.ok());
      break;
    }
    ASSERT_TRUE(st.ok());
  }
  // The first write of the second half is applied after the flush started
  // on entering that half has finished.
  const std::string slow = value(i + 1);
  t.faulty->on_write = [&](const KvBatch& b) {
    for (auto& op : b.ops)
      if (op.second && *op.second == slow) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  };
  // The second half, up to its end; the flushes fail from just before the
  // change back to the first half.
  State acked;
  bool second = false;
  for (++i;; ++i) {
    uint64_t head = journal_position(*t.j).head;
    if (head >= mid) second = true;
    else if (second) break;  // back in the first half
    if (head + rec(i) + rec(i + 1) > 2 * mid - first) t.faulty->fail_sync = true;
    ASSERT_TRUE(put_sized(i).ok());
    acked[key(i)] = value(i);
  }
  t.faulty->fail_sync = false;
  t.faulty->on_write = nullptr;
  State got = t.after_power_loss();  // opens (checked inside)
  for (auto& [k, v] : acked) EXPECT_EQ(got[k], v) << k;
}

// A write too large for the ring that the inner index refuses: the writes
// before it are durable, and a sync() after it returns (nothing waits on a
// write that will never be applied).
TEST(JournalIndex, RefusedLargeWriteLeavesNothingWaiting) {
  FaultyJournal t;
  ASSERT_TRUE(put_in(*t.j, "u", false).ok());
  t.faulty->fail_writes = 1;
  KvBatch big;
  big.put("big", std::string(600 << 10, 'x'));
  EXPECT_FALSE(t.j->write(big, true).ok());
  auto synced = std::async(std::launch::async, [&] { return t.j->sync(); });
  if (synced.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    ADD_FAILURE() << "sync() after a refused large write hangs";
    std::_Exit(1);  // the waiting thread cannot be joined
  }
  ASSERT_TRUE(synced.get().ok());
  ASSERT_TRUE(put_in(*t.j, "after").ok());
  EXPECT_EQ(t.after_power_loss(), (State{{"after", "v-after"}, {"u", "v-u"}}));
}

// An unsynced write with no write waiting before it is refused before its
// record is written: no sequence number is used.
TEST(JournalIndex, RefusedUnsyncedWriteLeavesTheChainWhole) {
  FaultyJournal t;
  ASSERT_TRUE(put_in(*t.j, "a", false).ok());
  t.faulty->fail_writes = 1;
  EXPECT_FALSE(put_in(*t.j, "b", false).ok());
  ASSERT_TRUE(put_in(*t.j, "c", false).ok());
  ASSERT_TRUE(t.j->sync().ok());
  JournalOpenInfo info;
  EXPECT_EQ(t.after_power_loss(&info), (State{{"a", "v-a"}, {"c", "v-c"}}));
  EXPECT_EQ(info.replayed, 2u);
}

// A synced write is never visible before it is durable: the inner index
// (where readers look) gets it only once the ring is fdatasynced past it.
// Every write, and an unsynced one that had to wait behind synced ones, is
// visible when it returns, also across changes of half while a group commit
// is still applying.
TEST(JournalIndex, SyncedWritesAreVisibleOnlyOnceDurable) {
  FaultyJournal t;
  std::atomic<int> checked{0}, early{0};
  t.faulty->on_write = [&](const KvBatch& b) {
    bool synced = false;
    uint64_t seq = 0;
    for (auto& [k, v] : b.ops) {
      if (k == kJournalSeqKey) seq = std::stoull(*v);
      else synced = synced || k[0] == 's';
    }
    if (!synced) return;
    ++checked;
    if (seq > journal_synced_seq(*t.j)) ++early;
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // a group commit's applying takes a while
  };
  std::vector<std::thread> ts;
  std::atomic<int> unseen{0};
  for (int w = 0; w < 4; ++w)
    ts.emplace_back([&, w] {
      for (int i = 0; i < 300; ++i) {
        bool sync = (i + w) % 2 == 0;
        std::string k = (sync ? "s" : "u") + std::to_string(w) + "/" + std::to_string(i % 40);
        KvBatch b;
        b.put(k, std::string(6000, 'x') + std::to_string(i));
        ASSERT_TRUE(t.j->write(b, sync).ok());
        auto got = t.j->get(k);
        if (!got.ok() || !got.value() || *got.value() != std::string(6000, 'x') + std::to_string(i)) ++unseen;
      }
    });
  for (auto& th : ts) th.join();
  t.faulty->on_write = nullptr;
  EXPECT_EQ(checked, 600);
  EXPECT_EQ(early, 0);
  EXPECT_EQ(unseen, 0);
}

// The background flush fails: at the next change of half the ring is given
// up, and writes go to the inner index alone, synced there. Every write that
// was acknowledged survives a power loss.
TEST(JournalIndex, FailedFlushGivesUpTheRingWithoutLosingWrites) {
  FaultyJournal t;
  t.faulty->fail_sync = true;
  State acked;
  for (int i = 0; i < 600; ++i) {  // 2.4 MB: several changes of half
    KvBatch b;
    std::string k = "k" + std::to_string(i % 40), v = std::string(4000, 'x') + std::to_string(i);
    b.put(k, v);
    if (t.j->write(b, true).ok()) acked[k] = v;
  }
  EXPECT_GE(acked.size(), 40u);
  t.faulty->fail_sync = false;
  State got = t.after_power_loss();
  for (auto& [k, v] : acked) EXPECT_EQ(got[k], v) << k;
}

// A record too large for the ring when the writer is exactly at the ring's
// end: the chain starts again at the ring's start, and the writes after it
// are replayed.
TEST(JournalIndex, LargeRecordAtTheRingsEnd) {
  TempDir dir;
  Journaled j(dir.path() + "/journal", 1 << 20);
  std::mt19937 rng(9);
  // 64-byte records (key "kNN", 32-byte values) fill both halves exactly.
  const uint64_t half = ((1 << 20) - kJournalFirstRecord) / 2 / 4096 * 4096;
  for (uint64_t i = 0; i < 2 * half / 64; ++i) {
    KvBatch b;
    b.put(fmt::format("k{:02d}", i % 100), fmt::format("{:032d}", i));
    ASSERT_TRUE(j.idx().write(b, false).ok());
  }
  ASSERT_EQ(journal_position(j.idx()).head, kJournalFirstRecord + 2 * half);
  KvBatch big;
  big.put("big", std::string(300 << 10, 'b'));
  ASSERT_TRUE(j.idx().write(big, true).ok());
  for (int i = 0; i < 10; ++i) {
    KvBatch b;
    b.put("after" + std::to_string(i), "a");
    ASSERT_TRUE(j.idx().write(b, true).ok());
  }
  auto pos = journal_position(j.idx());
  EXPECT_LT(pos.head, kJournalFirstRecord + 4096);
  j.power_loss(pos.synced, pos.head, true, rng);
  State got = dump(j.idx());
  EXPECT_EQ(got["big"].size(), 300u << 10);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(got["after" + std::to_string(i)], "a") << i;
}

// A torn write of the newer header slot leaves the older one, whose chain is
// still whole (nothing is written after a header before it is durable).
TEST(JournalIndex, TornNewerHeaderFallsBackToTheOlder) {
  TempDir dir;
  std::string path = dir.path() + "/journal";
  Journaled j(path, 1 << 20);
  std::mt19937 rng(4);
  for (int i = 0; i < 20; ++i) {
    KvBatch b;
    b.put("k" + std::to_string(i), "v" + std::to_string(i));
    ASSERT_TRUE(j.idx().write(b, true).ok());
  }
  // The index lost them; the reopening applies them from the ring and then
  // writes the next header, whose write is torn by the next power loss.
  auto first = j.power_loss(0, 0, false, rng);
  EXPECT_EQ(first.replayed, 20u);
  {
    std::string block(kJournalFirstRecord, '\0');
    FILE* f = std::fopen(path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fread(block.data(), 1, block.size(), f), block.size());
    // The newer slot is the one the reopening wrote: generation first + 1.
    uint64_t newer = (first.header_gen + 1) % 2 * 4096;
    block[newer + 20] ^= 0x5a;
    std::rewind(f);
    ASSERT_EQ(std::fwrite(block.data(), 1, block.size(), f), block.size());
    std::fclose(f);
  }
  auto again = j.power_loss(0, 0, false, rng);
  EXPECT_EQ(again.header_gen, first.header_gen);
  State got = dump(j.idx());
  ASSERT_EQ(got.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(got["k" + std::to_string(i)], "v" + std::to_string(i));
}

// 600 synced writes of 4 KB through a 1 MiB ring at `path` (2.4 MB: the
// header moves on several times, both slots written), then closed.
void fill_ring(const std::string& path) {
  auto j = open_journaled_index(make_memory_index(), path, 1 << 20);
  ASSERT_TRUE(j.ok());
  for (int i = 0; i < 600; ++i) {
    KvBatch b;
    b.put("k" + std::to_string(i % 10), std::string(4000, 'x'));
    ASSERT_TRUE((*j)->write(b, true).ok());
  }
}

// Opening the ring at `path` over an empty index fails with `why`.
void expect_refused(const std::string& path, const std::string& why) {
  auto again = open_journaled_index(make_memory_index(), path, 1 << 20);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().to_string().find(why), std::string::npos) << again.status().to_string();
}

// Both header slots damaged (not what a torn write leaves): the open fails
// rather than start without the ring's writes.
TEST(JournalIndex, DamagedHeadersAreRefused) {
  TempDir dir;
  std::string path = dir.path() + "/journal";
  fill_ring(path);
  FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  for (long slot : {0L, 4096L}) {
    std::fseek(f, slot + 20, SEEK_SET);
    std::fputc(0x77, f);
  }
  std::fclose(f);
  expect_refused(path, "both of its headers are damaged");
}

// An index that lost writes it had made durable (restored from an older
// copy) is not mixed with the ring's later records: the open fails.
TEST(JournalIndex, IndexBehindTheRingIsRefused) {
  TempDir dir;
  std::string path = dir.path() + "/journal";
  fill_ring(path);
  expect_refused(path, "the index lost writes it had made durable");
}

// RocksDB that lost the writes after a point (its directory as it was then)
// gets them back from the ring.
TEST(JournalIndex, ReplaysIntoRocksDb) {
  TempDir dir;
  std::string db = dir.path() + "/index", journal = dir.path() + "/journal";
  auto open = [&](JournalOpenInfo* info) {
    auto r = open_rocks_index(db, /*wal=*/false);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    auto j = open_journaled_index(std::move(r.value()), journal, 1 << 20, info);
    EXPECT_TRUE(j.ok()) << j.status().to_string();
    return std::move(j.value());
  };
  auto put = [](KvIndex& idx, int from, int to) {
    for (int i = from; i < to; ++i) {
      KvBatch b;
      b.put("k" + std::to_string(i), std::string(3000, 'v') + std::to_string(i));
      ASSERT_TRUE(idx.write(b, true).ok());
    }
  };
  {
    auto idx = open(nullptr);
    put(*idx, 0, 10);
  }
  std::filesystem::copy(db, dir.path() + "/snapshot");
  {
    auto idx = open(nullptr);
    put(*idx, 10, 40);
  }
  std::filesystem::remove_all(db);
  std::filesystem::rename(dir.path() + "/snapshot", db);
  JournalOpenInfo info;
  auto idx = open(&info);
  EXPECT_EQ(info.replayed, 30u);
  State got = dump(*idx);
  ASSERT_EQ(got.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(got["k" + std::to_string(i)], std::string(3000, 'v') + std::to_string(i));
  // Opened again: nothing left to apply.
  idx.reset();
  JournalOpenInfo again;
  idx = open(&again);
  EXPECT_EQ(again.replayed, 0u);
  EXPECT_EQ(dump(*idx).size(), 40u);
}

}  // namespace
}  // namespace reservoir::store
