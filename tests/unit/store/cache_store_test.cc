#include "store/cache_store.h"

#include <gtest/gtest.h>

#include "test_util.h"
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "common/hash.h"
#include "store/hot_objects.h"
#include "store/journal_index.h"

namespace reservoir::store {
namespace {

using testing_util::TempDir;

bool exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

// Which index the parameterised tests run on.
// journaled: RocksDB without its write-ahead log, behind the index journal
// (as `reservoir serve` opens it with durability "fsync").
enum class IndexKind { rocks, journaled, memory };

std::string kind_name(const testing::TestParamInfo<IndexKind>& i) {
  return i.param == IndexKind::rocks ? "rocks" : i.param == IndexKind::journaled ? "journaled" : "memory";
}

class StoreFixture {
 public:
  // inline_max 0: every object in a file of its own (the file-level tests
  // below look at the files); the inline tests pass a threshold.
  explicit StoreFixture(IndexKind kind = IndexKind::journaled, size_t inline_max = 0)
      : kind_(kind), inline_max_(inline_max) {
    reopen();
  }

  // Destroys the store (closing its index) and opens it again on the same
  // directories. Only meaningful for the RocksDB indexes.
  void reopen() {
    store_.reset();
    std::unique_ptr<KvIndex> index;
    if (kind_ != IndexKind::memory) {
      auto idx = open_rocks_index(dir_.path() + "/index", kind_ == IndexKind::rocks);
      ASSERT_TRUE(idx.ok()) << idx.status().to_string();
      index = std::move(idx.value());
      if (kind_ == IndexKind::journaled) {
        idx = open_journaled_index(std::move(index), dir_.path() + "/index.journal", 1 << 20);
        ASSERT_TRUE(idx.ok()) << idx.status().to_string();
        index = std::move(idx.value());
      }
    } else {
      index = make_memory_index();
    }
    auto s = CacheStore::open(dir_.path() + "/cache", std::move(index), /*durable=*/true, inline_max_);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(s.value());
  }

  CacheStore& store() { return *store_; }

  // Writes `data` into a new committed data file and returns a meta
  // describing it (not yet committed to the index).
  ObjectMeta write_file(const std::string& data, PersistState state = PersistState::dirty) {
    auto f = store_->new_file();
    EXPECT_TRUE(f.ok()) << f.status().to_string();
    if (!f.ok()) return {};
    auto& w = *f.value();
    EXPECT_TRUE(w.append(data.data(), data.size()).ok());
    ObjectMeta m;
    m.size = w.size();
    m.crc32c = w.crc32c();
    m.etag = hex_encode(w.md5());
    m.content_type = "text/plain";
    m.user_meta = {{"owner", "test"}};
    m.mtime_ms = now_ms();
    m.state = state;
    if (m.size > 0) m.segments.push_back(w.segment());
    EXPECT_TRUE(w.commit(true).ok());
    return m;
  }

  ObjectMeta put(const std::string& bucket, const std::string& key, const std::string& data,
                 PersistState state = PersistState::dirty) {
    auto r = store_->commit(bucket, key, write_file(data, state));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r.value() : ObjectMeta{};
  }

  std::string read(const std::string& bucket, const std::string& key) {
    auto h = store_->open(bucket, key);
    EXPECT_TRUE(h.ok()) << h.status().to_string();
    if (!h.ok()) return "<error>";
    return read_handle(*h);
  }

  static std::string read_handle(const ReadHandle& h) {
    std::string out;
    char buf[7];  // small on purpose: many preads, across segment ends
    for (;;) {
      auto n = h.pread(out.size(), buf, sizeof buf);
      EXPECT_TRUE(n.ok()) << n.status().to_string();
      if (!n.ok() || *n == 0) break;
      out.append(buf, *n);
    }
    return out;
  }

  std::vector<std::pair<std::string, std::string>> dirty() {
    std::vector<std::pair<std::string, std::string>> out;
    Status st = store_->scan_dirty([&](const std::string& b, const std::string& k) {
      out.emplace_back(b, k);
      return true;
    });
    EXPECT_TRUE(st.ok()) << st.to_string();
    return out;
  }

  std::vector<std::pair<std::string, std::string>> parked() {
    std::vector<std::pair<std::string, std::string>> out;
    Status st = store_->scan_parked([&](const std::string& b, const std::string& k) {
      out.emplace_back(b, k);
      return true;
    });
    EXPECT_TRUE(st.ok()) << st.to_string();
    return out;
  }

  std::vector<std::string> keys(const std::string& bucket, const std::string& prefix = "",
                                const std::string& after = "") {
    std::vector<std::string> out;
    Status st = store_->scan_objects(bucket, prefix, after, [&](const std::string& k, const ObjectMeta&) {
      out.push_back(k);
      return true;
    });
    EXPECT_TRUE(st.ok()) << st.to_string();
    return out;
  }

 private:
  TempDir dir_;
  IndexKind kind_;
  size_t inline_max_ = 0;
  std::unique_ptr<CacheStore> store_;
};

using Keys = std::vector<std::pair<std::string, std::string>>;

}  // namespace

// --- behaviour shared by both index implementations ---

class cache_store_basic_test : public testing::TestWithParam<IndexKind> {};

TEST_P(cache_store_basic_test, commit_then_get_open_and_scan_dirty) {
  StoreFixture f(GetParam());
  ObjectMeta m = f.put("bkt", "dir/obj", "hello, reservoir");
  EXPECT_GT(m.version, 0u);

  auto got = f.store().get("bkt", "dir/obj");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got.value().has_value());
  EXPECT_EQ(got.value()->version, m.version);
  EXPECT_EQ(got.value()->size, 16u);
  EXPECT_EQ(got.value()->etag, hex_encode(md5_raw("hello, reservoir")));
  EXPECT_EQ(got.value()->crc32c, crc32c("hello, reservoir"));
  EXPECT_EQ(got.value()->state, PersistState::dirty);

  EXPECT_EQ(f.read("bkt", "dir/obj"), "hello, reservoir");
  EXPECT_EQ(f.dirty(), (Keys{{"bkt", "dir/obj"}}));
  EXPECT_EQ(f.store().stats().dirty_objects, 1u);
  EXPECT_EQ(f.store().stats().dirty_bytes, 16u);
}

TEST_P(cache_store_basic_test, absent_key_is_nullopt_and_not_found) {
  StoreFixture f(GetParam());
  auto got = f.store().get("bkt", "nope");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got.value().has_value());
  auto h = f.store().open("bkt", "nope");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Code::not_found);
}

// A record read through by page has no data of its own to open: a reader
// that looked before it replaced a whole object gets not_found (and looks
// again), never an empty handle, nor an empty copy kept in memory.
TEST_P(cache_store_basic_test, a_record_read_through_by_page_is_not_opened_whole) {
  StoreFixture f(GetParam());
  ObjectMeta m;
  m.size = 10;
  m.page_size = 4096;
  m.etag = "e";
  m.state = PersistState::persisted;
  ASSERT_TRUE(f.store().commit("bkt", "paged", m).ok());
  auto h = f.store().open("bkt", "paged");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Code::not_found);
  EXPECT_FALSE(f.store().hot("bkt", "paged"));
}

TEST_P(cache_store_basic_test, clean_commit_is_not_dirty) {
  StoreFixture f(GetParam());
  f.put("bkt", "clean", "data", PersistState::persisted);
  EXPECT_TRUE(f.dirty().empty());
  EXPECT_EQ(f.store().stats().dirty_objects, 0u);
  EXPECT_EQ(f.read("bkt", "clean"), "data");
}

TEST_P(cache_store_basic_test, persisted_state_leaves_the_dirty_queue) {
  StoreFixture f(GetParam());
  ObjectMeta m = f.put("bkt", "k", "abc");
  auto r = f.store().set_state_if_current("bkt", "k", m.version, PersistState::persisted);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value());
  EXPECT_TRUE(f.dirty().empty());
  EXPECT_EQ(f.store().stats().dirty_objects, 0u);
  EXPECT_EQ(f.store().stats().dirty_bytes, 0u);
  auto got = f.store().get("bkt", "k");
  ASSERT_TRUE(got.ok() && got.value());
  EXPECT_EQ(got.value()->state, PersistState::persisted);
  EXPECT_EQ(f.read("bkt", "k"), "abc");  // clean data stays cached
}

TEST_P(cache_store_basic_test, scan_objects_is_ordered_and_honours_prefix_and_start_after) {
  StoreFixture f(GetParam());
  for (std::string k : {"b", "a/c/d", "a-b", "a", "a/b"}) f.put("bkt", k, k);
  f.put("bkt2", "a", "other bucket");
  f.put("bk", "zz", "bucket name is a prefix of bkt");
  EXPECT_EQ(f.keys("bkt"), (std::vector<std::string>{"a", "a-b", "a/b", "a/c/d", "b"}));
  EXPECT_EQ(f.keys("bkt", "a/"), (std::vector<std::string>{"a/b", "a/c/d"}));
  EXPECT_EQ(f.keys("bkt", "", "a-b"), (std::vector<std::string>{"a/b", "a/c/d", "b"}));
  EXPECT_EQ(f.keys("bkt", "a/", "a/b"), (std::vector<std::string>{"a/c/d"}));
  EXPECT_EQ(f.keys("bkt", "a/", "0"), (std::vector<std::string>{"a/b", "a/c/d"}));  // start_after < prefix
  EXPECT_TRUE(f.keys("bkt", "a/", "a/z").empty());
  EXPECT_EQ(f.keys("bk"), (std::vector<std::string>{"zz"}));
}

TEST_P(cache_store_basic_test, multi_segment_object_reads_across_segments) {
  StoreFixture f(GetParam());
  ObjectMeta a = f.write_file("first-part|");
  ObjectMeta b = f.write_file("second-part|");
  ObjectMeta c = f.write_file("third");
  ObjectMeta m = a;
  m.segments = {a.segments[0], b.segments[0], c.segments[0]};
  m.size = a.size + b.size + c.size;
  m.part_sizes = {a.size, b.size, c.size};
  ASSERT_TRUE(f.store().commit("bkt", "mp", m).ok());
  EXPECT_EQ(f.read("bkt", "mp"), "first-part|second-part|third");
}

INSTANTIATE_TEST_SUITE_P(indexes, cache_store_basic_test, testing::Values(IndexKind::rocks, IndexKind::journaled, IndexKind::memory),
                         kind_name);

// --- RocksDB-backed store: durability across reopen ---

TEST(cache_store_test, dirty_entries_survive_reopen) {
  StoreFixture f;
  ObjectMeta m = f.put("bkt", "photos/cat.jpg", std::string(10000, 'c') + "tail");
  f.reopen();

  auto got = f.store().get("bkt", "photos/cat.jpg");
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_TRUE(got.value().has_value());
  const ObjectMeta& g = *got.value();
  EXPECT_EQ(g.version, m.version);
  EXPECT_EQ(g.size, m.size);
  EXPECT_EQ(g.etag, m.etag);
  EXPECT_EQ(g.crc32c, m.crc32c);
  EXPECT_EQ(g.content_type, "text/plain");
  EXPECT_EQ(g.user_meta, m.user_meta);
  EXPECT_EQ(g.mtime_ms, m.mtime_ms);
  EXPECT_EQ(g.state, PersistState::dirty);
  ASSERT_EQ(g.segments.size(), 1u);
  EXPECT_EQ(g.segments[0].file_id, m.segments[0].file_id);

  EXPECT_EQ(f.read("bkt", "photos/cat.jpg"), std::string(10000, 'c') + "tail");
  EXPECT_EQ(f.dirty(), (Keys{{"bkt", "photos/cat.jpg"}}));
  EXPECT_EQ(f.store().stats().dirty_objects, 1u);
  EXPECT_EQ(f.store().stats().dirty_bytes, 10004u);
}

TEST(cache_store_test, recovery_reports_only_dirty_entries) {
  StoreFixture f;
  for (int i = 0; i < 200; ++i) f.put("bkt", "clean/" + std::to_string(i), "c" + std::to_string(i), PersistState::persisted);
  f.put("bkt", "dirty/1", "d1");
  f.put("bkt", "dirty/2", "dd2");
  f.put("other", "dirty/3", "ddd3");
  // A dirty object that was persisted before the restart is clean again.
  ObjectMeta done = f.put("bkt", "dirty/was", "w");
  ASSERT_TRUE(f.store().set_state_if_current("bkt", "dirty/was", done.version, PersistState::persisted).value());
  f.reopen();

  EXPECT_EQ(f.dirty(), (Keys{{"bkt", "dirty/1"}, {"bkt", "dirty/2"}, {"other", "dirty/3"}}));
  EXPECT_EQ(f.store().stats().dirty_objects, 3u);
  EXPECT_EQ(f.store().stats().dirty_bytes, 9u);
  EXPECT_EQ(f.keys("bkt", "clean/").size(), 200u);
  EXPECT_EQ(f.read("bkt", "clean/199"), "c199");
}

TEST(cache_store_test, persisting_entries_are_dirty_again_after_reopen) {
  StoreFixture f;
  ObjectMeta m = f.put("bkt", "k", "abc");
  ASSERT_TRUE(f.store().set_state_if_current("bkt", "k", m.version, PersistState::persisting).value());
  EXPECT_EQ(f.store().stats().dirty_objects, 1u);
  f.reopen();
  EXPECT_EQ(f.dirty(), (Keys{{"bkt", "k"}}));
  EXPECT_EQ(f.store().stats().dirty_objects, 1u);
}

TEST(cache_store_test, set_state_with_stale_version_changes_nothing) {
  StoreFixture f;
  ObjectMeta v1 = f.put("bkt", "k", "one");
  ObjectMeta v2 = f.put("bkt", "k", "two");
  ASSERT_GT(v2.version, v1.version);

  auto r = f.store().set_state_if_current("bkt", "k", v1.version, PersistState::persisted);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.value());
  auto p = f.store().set_state_if_current("bkt", "k", v1.version, PersistState::parked, "nope");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p.value());

  auto got = f.store().get("bkt", "k");
  ASSERT_TRUE(got.ok() && got.value());
  EXPECT_EQ(got.value()->version, v2.version);
  EXPECT_EQ(got.value()->state, PersistState::dirty);
  EXPECT_TRUE(got.value()->park_reason.empty());
  EXPECT_EQ(f.dirty(), (Keys{{"bkt", "k"}}));
  EXPECT_TRUE(f.parked().empty());
  EXPECT_EQ(f.store().stats().dirty_objects, 1u);
  EXPECT_EQ(f.read("bkt", "k"), "two");

  // Absent keys: false as well.
  auto none = f.store().set_state_if_current("bkt", "absent", v2.version, PersistState::persisted);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none.value());
}

TEST(cache_store_test, parked_entries_leave_the_dirty_queue_and_are_listed) {
  StoreFixture f;
  ObjectMeta m = f.put("bkt", "k", "abc");
  ASSERT_TRUE(f.store().set_state_if_current("bkt", "k", m.version, PersistState::parked, "403 from backend").value());
  EXPECT_TRUE(f.dirty().empty());
  EXPECT_EQ(f.parked(), (Keys{{"bkt", "k"}}));
  // Parked is acknowledged and not persisted: it still counts, across a reopen too.
  EXPECT_EQ(f.store().stats().dirty_objects, 1u);
  f.reopen();
  EXPECT_EQ(f.store().stats().dirty_objects, 1u);
  auto got = f.store().get("bkt", "k");
  ASSERT_TRUE(got.ok() && got.value());
  EXPECT_EQ(got.value()->state, PersistState::parked);
  EXPECT_EQ(got.value()->park_reason, "403 from backend");
  EXPECT_EQ(f.parked(), (Keys{{"bkt", "k"}}));

  // A new write replaces the parked version and leaves the parked list.
  f.put("bkt", "k", "new");
  EXPECT_TRUE(f.parked().empty());
  EXPECT_EQ(f.dirty(), (Keys{{"bkt", "k"}}));
}

TEST(cache_store_test, tombstone_marked_persisted_disappears) {
  StoreFixture f;
  ObjectMeta data = f.put("bkt", "k", "abc");
  std::string data_path = f.store().files().path(data.segments[0].file_id);
  ASSERT_TRUE(exists(data_path));

  ObjectMeta tomb;
  tomb.deleted = true;
  tomb.state = PersistState::dirty;
  auto t = f.store().commit("bkt", "k", tomb);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(exists(data_path));  // the deleted version's data is gone
  auto h = f.store().open("bkt", "k");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Code::not_found);
  EXPECT_EQ(f.dirty(), (Keys{{"bkt", "k"}}));  // the delete must reach the under store
  EXPECT_EQ(f.keys("bkt"), (std::vector<std::string>{"k"}));  // listing sees the tombstone
  EXPECT_EQ(f.store().stats().dirty_objects, 0u);            // tombstones carry no dirty bytes

  ASSERT_TRUE(f.store().set_state_if_current("bkt", "k", t->version, PersistState::persisted).value());
  auto got = f.store().get("bkt", "k");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got.value().has_value());
  EXPECT_TRUE(f.dirty().empty());
  EXPECT_TRUE(f.keys("bkt").empty());
  f.reopen();
  EXPECT_FALSE(f.store().get("bkt", "k").value().has_value());
  EXPECT_TRUE(f.dirty().empty());
}

TEST(cache_store_test, overwrite_removes_old_data_but_open_handle_still_reads_it) {
  StoreFixture f;
  ObjectMeta v1 = f.put("bkt", "k", "old bytes of version one");
  ASSERT_EQ(v1.segments.size(), 1u);
  std::string old_path = f.store().files().path(v1.segments[0].file_id);
  ASSERT_TRUE(exists(old_path));

  auto h = f.store().open("bkt", "k");
  ASSERT_TRUE(h.ok());
  ObjectMeta v2 = f.put("bkt", "k", "new");
  EXPECT_GT(v2.version, v1.version);
  EXPECT_FALSE(exists(old_path)) << old_path;
  EXPECT_TRUE(exists(f.store().files().path(v2.segments[0].file_id)));

  EXPECT_EQ(h->meta().version, v1.version);
  EXPECT_EQ(StoreFixture::read_handle(*h), "old bytes of version one");
  EXPECT_EQ(f.read("bkt", "k"), "new");
}

TEST(cache_store_test, commit_sharing_data_keeps_the_file) {
  StoreFixture f;
  ObjectMeta v1 = f.put("bkt", "k", "shared");
  std::string path = f.store().files().path(v1.segments[0].file_id);
  ObjectMeta tagged = v1;
  tagged.tags = {{"a", "b"}};
  auto v2 = f.store().commit("bkt", "k", tagged);
  ASSERT_TRUE(v2.ok());
  EXPECT_GT(v2->version, v1.version);
  EXPECT_TRUE(exists(path));
  EXPECT_EQ(f.read("bkt", "k"), "shared");
  EXPECT_EQ(f.store().get("bkt", "k").value()->tags, (Tags{{"a", "b"}}));
}

TEST(cache_store_test, erase_removes_record_and_data) {
  StoreFixture f;
  ObjectMeta m = f.put("bkt", "k", "abc");
  std::string path = f.store().files().path(m.segments[0].file_id);
  ASSERT_TRUE(f.store().erase("bkt", "k").ok());
  EXPECT_FALSE(exists(path));
  EXPECT_FALSE(f.store().get("bkt", "k").value().has_value());
  EXPECT_TRUE(f.dirty().empty());
  EXPECT_EQ(f.store().stats().dirty_objects, 0u);
  EXPECT_TRUE(f.store().erase("bkt", "k").ok());  // erasing an absent key succeeds
}

TEST(cache_store_test, commit_if_absent_never_replaces_a_record) {
  StoreFixture f;
  ObjectMeta fill = f.write_file("from the under store", PersistState::persisted);
  auto first = f.store().commit_if_absent("bkt", "k", fill);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first.value());
  EXPECT_TRUE(f.dirty().empty());

  ObjectMeta newer = f.put("bkt", "k", "newer write");
  ObjectMeta stale = f.write_file("stale fill", PersistState::persisted);
  auto second = f.store().commit_if_absent("bkt", "k", stale);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second.value());
  EXPECT_EQ(f.store().get("bkt", "k").value()->version, newer.version);
  EXPECT_EQ(f.read("bkt", "k"), "newer write");
}

TEST(cache_store_test, precondition_can_refuse_a_commit) {
  StoreFixture f;
  ObjectMeta v1 = f.put("bkt", "k", "one");
  bool saw_current = false;
  auto r = f.store().commit("bkt", "k", f.write_file("two"), [&](const std::optional<ObjectMeta>& cur) {
    saw_current = cur.has_value() && cur->version == v1.version;
    return failed_precondition("If-Match");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::failed_precondition);
  EXPECT_TRUE(saw_current);
  EXPECT_EQ(f.store().get("bkt", "k").value()->version, v1.version);
  EXPECT_EQ(f.read("bkt", "k"), "one");
}

TEST(cache_store_test, version_ids_keep_increasing_across_reopen) {
  StoreFixture f;
  std::set<uint64_t> seen;
  uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 5; ++i) {
      ObjectMeta m = f.put("bkt", "k" + std::to_string(i), "x");
      EXPECT_GT(m.version, last);
      EXPECT_TRUE(seen.insert(m.version).second) << "version reused: " << m.version;
      EXPECT_TRUE(seen.insert(m.segments[0].file_id).second) << "file id reused: " << m.segments[0].file_id;
      last = m.version;
    }
    f.reopen();
  }
  // Data files of the current versions are intact after all the reopens.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(f.read("bkt", "k" + std::to_string(i)), "x");
}

TEST(cache_store_test, uncommitted_file_writer_leaves_no_file) {
  StoreFixture f;
  uint64_t id;
  {
    auto w = f.store().new_file();
    ASSERT_TRUE(w.ok());
    id = (*w)->id();
    ASSERT_TRUE((*w)->append("abc", 3).ok());
  }
  EXPECT_FALSE(exists(f.store().files().path(id)));
  EXPECT_TRUE(std::filesystem::is_empty(f.store().files().dir() + "/tmp"));
}

TEST(cache_store_test, buckets_round_trip_and_survive_reopen) {
  StoreFixture f;
  ASSERT_TRUE(f.store().put_bucket("beta", 2000).ok());
  ASSERT_TRUE(f.store().put_bucket("alpha", 1000).ok());
  f.reopen();
  auto list = f.store().list_buckets();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (std::vector<std::pair<std::string, int64_t>>{{"alpha", 1000}, {"beta", 2000}}));
  EXPECT_EQ(f.store().bucket_created("alpha").value(), std::optional<int64_t>(1000));
  ASSERT_TRUE(f.store().delete_bucket("alpha").ok());
  EXPECT_FALSE(f.store().bucket_created("alpha").value().has_value());
}

TEST(cache_store_test, uploads_and_parts_round_trip_and_drop) {
  StoreFixture f;
  UploadMeta u;
  u.upload_id = "up1";
  u.bucket = "bkt";
  u.key = "big";
  u.content_type = "video/mp4";
  ASSERT_TRUE(f.store().put_upload(u).ok());
  ObjectMeta p1 = f.write_file("part-one");
  ObjectMeta p2 = f.write_file("part-two");
  ObjectMeta p2b = f.write_file("part-two-replaced");
  ASSERT_TRUE(f.store().put_part("up1", {2, p2.segments[0], "e2", 0}).ok());
  ASSERT_TRUE(f.store().put_part("up1", {1, p1.segments[0], "e1", 0}).ok());
  // Re-uploading a part replaces it and removes the old data.
  ASSERT_TRUE(f.store().put_part("up1", {2, p2b.segments[0], "e2b", 0}).ok());
  EXPECT_FALSE(exists(f.store().files().path(p2.segments[0].file_id)));

  auto parts = f.store().list_parts("up1");
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].number, 1);
  EXPECT_EQ((*parts)[1].number, 2);
  EXPECT_EQ((*parts)[1].etag, "e2b");
  auto ups = f.store().list_uploads("bkt");
  ASSERT_TRUE(ups.ok());
  ASSERT_EQ(ups->size(), 1u);
  EXPECT_EQ((*ups)[0].key, "big");
  EXPECT_TRUE(f.store().list_uploads("other").value().empty());

  ASSERT_TRUE(f.store().drop_upload("up1", {p1.segments[0].file_id}).ok());
  EXPECT_FALSE(f.store().get_upload("up1").value().has_value());
  EXPECT_TRUE(f.store().list_parts("up1").value().empty());
  EXPECT_TRUE(exists(f.store().files().path(p1.segments[0].file_id)));  // kept
  EXPECT_FALSE(exists(f.store().files().path(p2b.segments[0].file_id)));
}

TEST(meta_test, object_meta_encode_decode_round_trip) {
  ObjectMeta m;
  m.version = 42;
  m.deleted = false;
  m.cached = false;
  m.size = 123;
  m.etag = "abc-2";
  m.crc32c = 0xdeadbeef;
  m.content_type = "text/plain";
  m.headers = {{"cache-control", "no-cache"}};
  m.user_meta = {{"k", "v"}};
  m.checksums = {{"crc32", "AAAA"}};
  m.tags = {{"t", "1"}, {"a", "2"}};
  m.mtime_ms = 1700000000123;
  m.state = PersistState::parked;
  m.park_reason = "why";
  m.segments = {{1, 100, false, 0, std::nullopt}, {2, 23, false, 0, std::nullopt}};
  m.part_sizes = {100, 23};
  m.expires_at_ms = 99;
  auto d = decode_object(encode(m));
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->version, 42u);
  EXPECT_FALSE(d->cached);
  EXPECT_EQ(d->size, 123u);
  EXPECT_EQ(d->etag, "abc-2");
  EXPECT_EQ(d->crc32c, 0xdeadbeefu);
  EXPECT_EQ(d->headers, m.headers);
  EXPECT_EQ(d->user_meta, m.user_meta);
  EXPECT_EQ(d->checksums, m.checksums);
  EXPECT_EQ(d->tags, m.tags);
  EXPECT_EQ(d->mtime_ms, m.mtime_ms);
  EXPECT_EQ(d->state, PersistState::parked);
  EXPECT_EQ(d->park_reason, "why");
  ASSERT_EQ(d->segments.size(), 2u);
  EXPECT_EQ(d->segments[1].file_id, 2u);
  EXPECT_EQ(d->segments[1].size, 23u);
  EXPECT_EQ(d->part_sizes, m.part_sizes);
  EXPECT_EQ(d->expires_at_ms, 99);

  EXPECT_FALSE(decode_object("\xc1 not msgpack").ok());
}

}  // namespace reservoir::store

namespace reservoir::store {

TEST(cache_store_inline_test, small_objects_live_in_the_index_and_survive_reopen) {
  StoreFixture f(IndexKind::rocks, 64 * 1024);
  ObjectMeta small = f.write_file(std::string(10 * 1024, 's'));
  ASSERT_EQ(small.segments.size(), 1u);
  EXPECT_TRUE(small.segments[0].in_index);
  EXPECT_FALSE(std::filesystem::exists(f.store().files().path(small.segments[0].file_id)));
  ASSERT_TRUE(f.store().commit("bkt", "small", small).ok());
  ObjectMeta big = f.write_file(std::string(100 * 1024, 'b'));
  EXPECT_FALSE(big.segments[0].in_index);
  EXPECT_TRUE(std::filesystem::exists(f.store().files().path(big.segments[0].file_id)));
  ASSERT_TRUE(f.store().commit("bkt", "big", big).ok());
  f.reopen();
  EXPECT_EQ(f.read("bkt", "small"), std::string(10 * 1024, 's'));
  EXPECT_EQ(f.read("bkt", "big"), std::string(100 * 1024, 'b'));
}

TEST(cache_store_inline_test, overwrite_drops_old_inline_data_but_an_open_handle_keeps_it) {
  StoreFixture f(IndexKind::rocks, 64 * 1024);
  ASSERT_TRUE(f.store().commit("bkt", "k", f.write_file("version one")).ok());
  auto h = f.store().open("bkt", "k");
  ASSERT_TRUE(h.ok());
  ObjectMeta v1 = h->meta();
  ASSERT_TRUE(f.store().commit("bkt", "k", f.write_file("version two")).ok());
  // The old data is gone from the index...
  EXPECT_FALSE(f.store().pin(v1).ok());
  // ...but the handle opened before still reads it.
  char buf[64];
  auto n = h->pread(0, buf, sizeof buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "version one");
  EXPECT_EQ(f.read("bkt", "k"), "version two");
}

}  // namespace reservoir::store

namespace reservoir::store {

// A deferred inline write lands in the same batch as the record: both or
// neither (a refused commit leaves no data behind).
TEST(cache_store_inline_test, deferred_inline_data_is_written_with_its_record_or_not_at_all) {
  StoreFixture f(IndexKind::rocks, 64 * 1024);
  auto write = [&](const std::string& data) {
    auto w = f.store().new_file();
    EXPECT_TRUE(w.ok());
    EXPECT_TRUE((*w)->append(data.data(), data.size()).ok());
    EXPECT_TRUE((*w)->commit(true, true).ok());
    return std::move(w.value());
  };
  {
    auto w1 = write("kept with its record");
    ObjectMeta m;
    m.size = w1->size();
    m.segments.push_back(w1->segment());
    // Not in the index until the record commits.
    EXPECT_FALSE(f.store().read_inline(w1->segment()).ok());
    KvBatch b;
    w1->take_inline(b);
    ASSERT_TRUE(f.store().commit("bkt", "k", m, nullptr, std::move(b)).ok());
  }  // writers go before the store they write to
  f.reopen();
  EXPECT_EQ(f.read("bkt", "k"), "kept with its record");

  auto w2 = write("refused");
  ObjectMeta m2;
  m2.size = w2->size();
  m2.segments.push_back(w2->segment());
  KvBatch b2;
  w2->take_inline(b2);
  auto refused = f.store().commit("bkt", "k", m2,
                                  [](const std::optional<ObjectMeta>&) { return failed_precondition("refused"); },
                                  std::move(b2));
  EXPECT_FALSE(refused.ok());
  EXPECT_FALSE(f.store().read_inline(w2->segment()).ok());
  EXPECT_EQ(f.read("bkt", "k"), "kept with its record");

  // Written on its own when asked (a synchronous upload reads it back first).
  auto w3 = write("written now");
  ASSERT_TRUE(w3->write_inline().ok());
  auto d = f.store().read_inline(w3->segment());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value(), "written now");
}

// A commit replaces the key's copy in memory with the new version's; a
// version too large to keep must still drop the older copy (else a read is
// answered with it).
TEST(hot_objects_test, a_copy_too_large_to_keep_still_drops_the_older_one) {
  HotObjects hot(8 * 1024);  // keeps entries up to 1 KiB
  ObjectMeta v1, v2;
  v1.version = 1;
  v2.version = 2;
  hot.put("b", "k", std::make_shared<HotObject>(HotObject{v1, "small"}));
  ASSERT_TRUE(hot.get("b", "k"));
  hot.put("b", "k", std::make_shared<HotObject>(HotObject{v2, std::string(2000, 'x')}));
  EXPECT_FALSE(hot.get("b", "k"));
}

}  // namespace reservoir::store
