// Power loss: the index loses every write after its last synced one (the
// memory index models a write-ahead log; behind the index journal, it keeps
// only what the journal's flushes made durable, and the ring loses what was
// written after its last fdatasync). Whatever survives must be a state
// the store can serve from: acknowledged data intact, no record pointing at
// data that was removed, and unpersisted objects back in the dirty queue.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "common/hash.h"
#include "store/cache_store.h"
#include "store/journal_index.h"
#include "test_util.h"

namespace reservoir::store {
namespace {

using testing_util::TempDir;

class PowerLoss {
 public:
  // journaled: the memory index behind the index journal, as in production
  // (a power loss then also loses the ring's records after its last sync).
  explicit PowerLoss(bool journaled, bool durable = true) : journaled_(journaled), durable_(durable) {
    open(make_memory_index());
  }

  CacheStore& s() { return *store_; }

  ObjectMeta put(const std::string& key, const std::string& data, bool in_index) {
    auto f = store_->new_file(in_index, data.size());
    EXPECT_TRUE(f.ok()) << f.status().to_string();
    EXPECT_TRUE((*f)->append(data.data(), data.size()).ok());
    EXPECT_TRUE((*f)->commit(true, true).ok());
    ObjectMeta m;
    m.size = data.size();
    m.crc32c = (*f)->crc32c();
    m.etag = hex_encode((*f)->md5());
    m.mtime_ms = now_ms();
    m.state = PersistState::dirty;
    m.segments.push_back((*f)->segment());
    KvBatch with;
    (*f)->take_inline(with);
    auto r = store_->commit("b", key, m, nullptr, std::move(with));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : ObjectMeta{};
  }

  void set_state(const ObjectMeta& m, const std::string& key, PersistState st) {
    auto r = store_->set_state_if_current("b", key, m.version, st);
    ASSERT_TRUE(r.ok() && *r) << (r.ok() ? "not current" : r.status().to_string());
  }

  // The persister's marks for one upload: persisting, then how it ended.
  void upload(const ObjectMeta& m, const std::string& key, PersistState end = PersistState::persisted) {
    set_state(m, key, PersistState::persisting);
    set_state(m, key, end);
  }

  // The machine loses power: the store restarts on what the index made
  // durable, over the same cache directory.
  void power_loss() {
    JournalPosition pos = journaled_ ? journal_position(*index_) : JournalPosition{};
    auto survivor = memory_index_after_power_loss(*inner_);
    ASSERT_NE(survivor, nullptr);
    store_.reset();
    if (journaled_) {
      ASSERT_LE(pos.synced, pos.head);
      std::string zeros(pos.head - pos.synced, '\0');
      FILE* f = std::fopen(journal_path().c_str(), "r+b");
      ASSERT_NE(f, nullptr);
      std::fseek(f, static_cast<long>(pos.synced), SEEK_SET);
      std::fwrite(zeros.data(), 1, zeros.size(), f);
      std::fclose(f);
    }
    open(std::move(survivor));
  }

  std::optional<ObjectMeta> get(const std::string& key) {
    auto m = store_->get("b", key);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    return m.ok() ? *m : std::nullopt;
  }

  std::string read(const std::string& key) {
    auto h = store_->open("b", key);
    if (!h.ok()) return "<" + h.status().to_string() + ">";
    std::string out(h->meta().size, '\0');
    auto n = h->pread(0, out.data(), out.size());
    if (!n.ok()) return "<" + n.status().to_string() + ">";
    out.resize(*n);
    return out;
  }

  bool dirty(const std::string& key) {
    bool found = false;
    EXPECT_TRUE(store_->scan_dirty([&](const std::string&, const std::string& k) {
      found |= k == key;
      return true;
    }).ok());
    return found;
  }

 private:
  std::string journal_path() const { return dir_.path() + "/journal"; }

  void open(std::unique_ptr<KvIndex> inner) {
    inner_ = inner.get();
    std::unique_ptr<KvIndex> index = std::move(inner);
    if (journaled_) {
      auto j = open_journaled_index(std::move(index), journal_path(), 1 << 20);
      ASSERT_TRUE(j.ok()) << j.status().to_string();
      index = std::move(j.value());
    }
    index_ = index.get();
    auto s = CacheStore::open(dir_.path() + "/cache", std::move(index), durable_, 64 * 1024);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(s.value());
  }

  bool journaled_;
  bool durable_;
  TempDir dir_;
  KvIndex* inner_ = nullptr;  // the memory index (behind the journal, if any)
  KvIndex* index_ = nullptr;
  std::unique_ptr<CacheStore> store_;
};

class power_loss_test : public testing::TestWithParam<bool> {};

INSTANTIATE_TEST_SUITE_P(indexes, power_loss_test, testing::Values(false, true),
                         [](const testing::TestParamInfo<bool>& i) { return i.param ? "journaled" : "memory"; });

TEST_P(power_loss_test, an_acknowledged_put_survives) {
  for (bool in_index : {true, false}) {
    PowerLoss t(GetParam());
    std::string data(in_index ? 1000 : 100 * 1024, in_index ? 's' : 'f');
    t.put("k", data, in_index);
    t.power_loss();
    EXPECT_EQ(t.read("k"), data);
    EXPECT_TRUE(t.dirty("k"));
  }
}

TEST_P(power_loss_test, a_lost_persisted_mark_leaves_the_object_dirty_and_readable) {
  for (bool in_index : {true, false}) {
    PowerLoss t(GetParam());
    std::string data(in_index ? 1000 : 100 * 1024, 'p');
    ObjectMeta m = t.put("k", data, in_index);
    t.upload(m, "k");
    ASSERT_FALSE(t.dirty("k"));
    t.power_loss();
    // Uploaded once more after the restart: the under store ends the same.
    EXPECT_TRUE(t.dirty("k"));
    EXPECT_EQ(t.read("k"), data);
    // Not persisted, so it cannot be evicted.
    EXPECT_FALSE(t.s().free_object("b", "k", "test").ok());
  }
}

TEST_P(power_loss_test, a_later_synced_write_keeps_an_earlier_persisted_mark) {
  PowerLoss t(GetParam());
  ObjectMeta a = t.put("a", "first", true);
  t.upload(a, "a");
  t.put("b", "second", true);  // synced: everything before it is durable too
  t.power_loss();
  ASSERT_TRUE(t.get("a"));
  EXPECT_EQ(t.get("a")->state, PersistState::persisted);
  EXPECT_FALSE(t.dirty("a"));
  EXPECT_EQ(t.read("a"), "first");
  EXPECT_EQ(t.read("b"), "second");
}

TEST_P(power_loss_test, eviction_after_an_unsynced_persisted_mark_never_leaves_a_record_without_data) {
  for (bool in_index : {true, false}) {
    PowerLoss t(GetParam());
    std::string data(in_index ? 1000 : 100 * 1024, 'e');
    ObjectMeta m = t.put("k", data, in_index);
    t.upload(m, "k");
    auto freed = t.s().free_object("b", "k", "test");
    ASSERT_TRUE(freed.ok()) << freed.status().to_string();
    ASSERT_EQ(*freed, data.size());
    t.power_loss();
    // The eviction's synced write made the mark and the drop durable: the
    // cache no longer has the object (the under store does).
    EXPECT_FALSE(t.get("k"));
  }
}

TEST_P(power_loss_test, a_parked_mark_is_durable_on_its_own) {
  PowerLoss t(GetParam());
  ObjectMeta m = t.put("k", "parked", true);
  t.upload(m, "k", PersistState::parked);
  t.power_loss();
  ASSERT_TRUE(t.get("k"));
  EXPECT_EQ(t.get("k")->state, PersistState::parked);
  EXPECT_EQ(t.read("k"), "parked");
}

TEST_P(power_loss_test, a_retried_parked_object_is_not_parked_again_after_a_power_loss) {
  PowerLoss t(GetParam());
  ObjectMeta m = t.put("k", "retried", true);
  t.upload(m, "k", PersistState::parked);
  t.set_state(m, "k", PersistState::dirty);  // an admin's retry
  t.upload(m, "k");
  t.power_loss();
  ASSERT_TRUE(t.get("k"));
  EXPECT_NE(t.get("k")->state, PersistState::parked);
  EXPECT_TRUE(t.dirty("k"));  // uploaded once more, not stuck waiting for another retry
  EXPECT_EQ(t.read("k"), "retried");
}

TEST_P(power_loss_test, an_erase_that_finds_no_record_keeps_a_persisted_tombstone_gone) {
  // A DELETE's tombstone is uploaded: marking it persisted removes its record
  // (not synced on its own). A write through to the under store then erases
  // nothing and is acknowledged: a power cut must not bring the tombstone
  // back, dirty, to delete what that write put in the under store.
  PowerLoss t(GetParam());
  ObjectMeta tomb;
  tomb.deleted = true;
  tomb.state = PersistState::dirty;
  tomb.mtime_ms = now_ms();
  auto r = t.s().commit("b", "k", tomb);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  t.upload(*r, "k");
  ASSERT_FALSE(t.get("k"));
  ASSERT_TRUE(t.s().erase("b", "k").ok());
  t.power_loss();
  EXPECT_FALSE(t.get("k"));
  EXPECT_FALSE(t.dirty("k"));
}

TEST_P(power_loss_test, marks_before_an_index_sync_survive) {
  // What the sync barrier does before it answers "done".
  PowerLoss t(GetParam());
  ObjectMeta m = t.put("k", "synced", true);
  t.upload(m, "k");
  ASSERT_TRUE(t.s().sync_index().ok());
  t.power_loss();
  ASSERT_TRUE(t.get("k"));
  EXPECT_EQ(t.get("k")->state, PersistState::persisted);
  EXPECT_FALSE(t.dirty("k"));
}

TEST_P(power_loss_test, data_of_a_lost_commit_is_swept_after_the_restart) {
  PowerLoss t(GetParam());
  t.put("kept", "kept", true);
  // A small object's data written unsynced before its record (as parts and
  // write-through uploads do), then the power goes before the record.
  auto f = t.s().new_file(true, 5);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->append("lost!", 5).ok());
  ASSERT_TRUE((*f)->commit(false).ok());
  ASSERT_TRUE(t.s().sync_index().ok());  // the data reached the log; its record never did
  Segment lost = (*f)->segment();
  f->reset();
  t.power_loss();
  ASSERT_TRUE(t.s().read_inline(lost).ok());
  t.s().sweep_orphans();
  EXPECT_FALSE(t.s().read_inline(lost).ok());
  EXPECT_EQ(t.read("kept"), "kept");
}

// With durability "none", record changes are not synced: a power cut can bring
// back the record an overwrite replaced. Its file must still be there, so the
// unlink waits for the next sync point (whose synced write makes the change
// durable).
TEST(power_loss_none_test, a_replaced_objects_file_stays_until_the_sync_point) {
  PowerLoss t(/*journaled=*/false, /*durable=*/false);
  std::string v1(100 * 1024, '1'), v2(100 * 1024, '2');
  auto first = t.put("k", v1, false);
  ASSERT_TRUE(t.s().write_sync_point().ok());  // v1's record is durable
  t.put("k", v2, false);                         // its replacement is not
  std::string old_file = t.s().files().path(first.segments[0].file_id, first.segments[0].tier);
  EXPECT_EQ(::access(old_file.c_str(), F_OK), 0);
  t.power_loss();
  EXPECT_EQ(t.read("k"), v1);  // an older state (allowed with "none"), not a missing file
  t.put("k", v2, false);
  ASSERT_TRUE(t.s().write_sync_point().ok());
  EXPECT_NE(::access(old_file.c_str(), F_OK), 0);  // unlinked once the change is durable
  t.power_loss();
  EXPECT_EQ(t.read("k"), v2);
}

}  // namespace
}  // namespace reservoir::store
