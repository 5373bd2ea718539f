// Tiers, capacity and eviction of the cache store.
#include <gtest/gtest.h>

#include <atomic>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <set>
#include <string>
#include <vector>

#include "common/hash.h"
#include "store/cache_store.h"
#include "test_util.h"

namespace reservoir::store {
namespace {

using testing_util::TempDir;

constexpr uint64_t KiB = 1024;

// A store with two tiers ("mem" then "ssd", both plain directories here).
class TieredStore {
 public:
  TieredStore(uint64_t quota0, uint64_t quota1, cache::Policy policy = cache::Policy::lru, size_t inline_max = 0) {
    opts_.tiers = {{"mem", dir_.path() + "/t0", quota0}, {"ssd", dir_.path() + "/t1", quota1}};
    opts_.durable = true;
    opts_.inline_max = inline_max;
    opts_.policy = policy;
    opts_.high_watermark = 1.0;
    opts_.low_watermark = 1.0;
    reopen();
  }
  void reopen() {
    store_.reset();
    auto idx = open_rocks_index(dir_.path() + "/index");
    ASSERT_TRUE(idx.ok());
    auto s = CacheStore::open(opts_, std::move(idx.value()));
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(s.value());
    store_->set_pin_check([this](const std::string&, const std::string& k) { return pinned_.count(k) > 0; });
  }
  CacheStore& s() { return *store_; }
  // A start that may fail (the store is closed either way).
  Status try_reopen() {
    store_.reset();
    auto idx = open_rocks_index(dir_.path() + "/index");
    if (!idx.ok()) return idx.status();
    auto s = CacheStore::open(opts_, std::move(idx.value()));
    if (!s.ok()) return s.status();
    store_ = std::move(s.value());
    return ok_status();
  }
  // A clean stop (the last sync point), then a start.
  void clean_reopen() {
    ASSERT_TRUE(store_->close().ok());
    reopen();
  }
  void set_durable(bool durable) {
    opts_.durable = durable;
    reopen();
  }
  std::string path_of(const Segment& s) { return store_->files().path(s.file_id, s.tier); }
  void raise_quota(int tier, uint64_t quota) {
    opts_.tiers[static_cast<size_t>(tier)].quota = quota;
    ASSERT_TRUE(store_->close().ok());
    reopen();
  }
  // Opens again with these tiers (directories under the test's, by name).
  Status try_tiers(const std::vector<std::pair<std::string, std::string>>& medium_and_name) {
    opts_.tiers.clear();
    for (auto& [medium, name] : medium_and_name) opts_.tiers.push_back({medium, dir_.path() + "/" + name, 0});
    return try_reopen();
  }
  void set_max_unlink_wait_bytes(uint64_t n) {
    opts_.max_unlink_wait_bytes = n;
    reopen();
  }
  void set_max_metadata_records(uint64_t n) {
    opts_.max_metadata_records = n;
    reopen();
  }
  std::set<std::string> pinned_;
  // Opens again with the last tier taken out of the configuration.
  Status reopen_without_last_tier() {
    opts_.tiers.pop_back();
    return try_reopen();
  }

  ObjectMeta put(const std::string& key, const std::string& data, PersistState state, bool clean_file = true) {
    auto f = store_->new_file(true, data.size(), clean_file);
    EXPECT_TRUE(f.ok()) << f.status().to_string();
    if (!f.ok()) return {};
    EXPECT_TRUE((*f)->append(data.data(), data.size()).ok());
    EXPECT_TRUE((*f)->commit(true).ok());
    ObjectMeta m;
    m.size = data.size();
    m.etag = hex_encode((*f)->md5());
    m.crc32c = crc32c_extend(0, data.data(), data.size());
    m.state = state;
    m.mtime_ms = now_ms();
    m.segments.push_back((*f)->segment());
    auto r = store_->commit("b", key, m);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : ObjectMeta{};
  }
  // A clean object whose data is split over `n` segments (files).
  ObjectMeta put_segments(const std::string& key, const std::string& data, size_t n) {
    ObjectMeta m;
    size_t step = (data.size() + n - 1) / n;
    for (size_t off = 0; off < data.size(); off += step) {
      auto f = store_->new_file(false, step, true);
      EXPECT_TRUE(f.ok());
      if (!f.ok()) return {};
      size_t len = std::min(step, data.size() - off);
      EXPECT_TRUE((*f)->append(data.data() + off, len).ok());
      EXPECT_TRUE((*f)->commit(true).ok());
      m.segments.push_back((*f)->segment());
    }
    m.size = data.size();
    m.etag = hex_encode(md5_raw(data));
    m.crc32c = crc32c_extend(0, data.data(), data.size());
    m.state = PersistState::persisted;
    m.mtime_ms = now_ms();
    auto r = store_->commit("b", key, m);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : ObjectMeta{};
  }
  // A metadata-only record of an object read through (what a first HEAD or
  // GET records); returns its version.
  uint64_t read_through(const std::string& key, uint64_t size) {
    ObjectMeta m;
    m.size = size;
    m.page_size = 4096;
    m.state = PersistState::persisted;
    EXPECT_TRUE(store_->commit_if_absent("b", key, m).ok());
    auto cur = store_->get("b", key);
    return cur.ok() && cur.value() ? cur.value()->version : 0;
  }
  // One cached page of it; the writer must not outlive the store.
  std::unique_ptr<FileWriter> put_page(const std::string& key, uint64_t version, uint64_t page,
                                       const std::string& data) {
    auto f = store_->new_file(true, data.size(), true);
    EXPECT_TRUE(f.ok());
    if (!f.ok()) return nullptr;
    EXPECT_TRUE((*f)->append(data.data(), data.size()).ok());
    EXPECT_TRUE((*f)->commit(false).ok());
    Segment seg = (*f)->segment();
    seg.crc32c = (*f)->crc32c();  // as read-through pages are recorded
    auto put = store_->put_page("b", key, version, page, seg);
    EXPECT_TRUE(put.ok() && *put);
    return std::move(*f);
  }
  std::string read(const std::string& key) {
    auto h = store_->open("b", key);
    if (!h.ok()) return "<" + h.status().to_string() + ">";
    std::string out(h->meta().size, '\0');
    uint64_t off = 0;
    while (off < out.size()) {
      auto n = h->pread(off, out.data() + off, out.size() - off);
      if (!n.ok() || *n == 0) return "<short>";
      off += *n;
    }
    return out;
  }
  bool cached(const std::string& key) {
    auto m = store_->get("b", key);
    return m.ok() && m.value().has_value();
  }
  int tier_of(const std::string& key) {
    auto m = store_->get("b", key);
    return m.ok() && m.value() && !m.value()->segments.empty() ? m.value()->segments[0].tier : -1;
  }
  uint64_t used(int tier) { return store_->space().usage()[static_cast<size_t>(tier)].used; }
  uint64_t reserved(int tier) { return store_->space().usage()[static_cast<size_t>(tier)].reserved; }

 private:
  TempDir dir_;
  StoreOptions opts_;
  std::unique_ptr<CacheStore> store_;
};

std::string blob(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 + (i >> 8));
  return s;
}

TEST(cache_tiers_test, new_data_lands_in_the_fastest_tier_with_room) {
  TieredStore t(64 * KiB, 0);
  t.put("a", blob(40 * KiB, 'a'), PersistState::persisted);
  t.put("b", blob(40 * KiB, 'b'), PersistState::persisted);  // no room left in tier 0
  EXPECT_EQ(t.tier_of("a"), 0);
  EXPECT_EQ(t.tier_of("b"), 1);
  EXPECT_EQ(t.used(0), 40 * KiB);
  EXPECT_EQ(t.used(1), 40 * KiB);
}

TEST(cache_tiers_test, dirty_data_never_lands_on_a_mem_tier_when_durable) {
  TieredStore t(1024 * KiB, 0);
  t.put("d", blob(10 * KiB, 'd'), PersistState::dirty, /*clean_file=*/false);
  EXPECT_EQ(t.tier_of("d"), 1);
}

TEST(cache_tiers_test, eviction_under_pressure_keeps_dirty_pinned_and_open_data) {
  // Tier 0 (1 byte) takes nothing: everything lands in tier 1.
  TieredStore u(1, 100 * KiB);
  u.put("dirty", blob(20 * KiB, '1'), PersistState::dirty, false);
  u.put("pinned", blob(20 * KiB, '2'), PersistState::persisted);
  u.put("open", blob(20 * KiB, '3'), PersistState::persisted);
  u.put("clean1", blob(20 * KiB, '4'), PersistState::persisted);
  u.put("clean2", blob(20 * KiB, '5'), PersistState::persisted);
  u.pinned_.insert("pinned");
  EXPECT_EQ(u.used(1), 100 * KiB);
  {
    auto h = u.s().open("b", "open");
    ASSERT_TRUE(h.ok());
    u.s().space().add_reader("b", "open");
    uint64_t freed = u.s().evict(1, 100 * KiB, false, "capacity");
    u.s().space().remove_reader("b", "open");
    EXPECT_EQ(freed, 40 * KiB);
  }
  EXPECT_TRUE(u.cached("dirty"));
  EXPECT_TRUE(u.cached("pinned"));
  EXPECT_TRUE(u.cached("open"));
  EXPECT_FALSE(u.cached("clean1"));
  EXPECT_FALSE(u.cached("clean2"));
  EXPECT_EQ(u.used(1), 60 * KiB);
  EXPECT_EQ(u.read("dirty"), blob(20 * KiB, '1'));
}

TEST(cache_tiers_test, a_full_cache_of_dirty_data_refuses_new_data) {
  TieredStore t(1, 64 * KiB);
  t.put("d1", blob(40 * KiB, '1'), PersistState::dirty, false);
  auto f = t.s().new_file(true, 40 * KiB, false);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Code::resource_exhausted);
}

TEST(cache_tiers_test, a_write_evicts_clean_data_when_the_evictor_fell_behind) {
  TieredStore t(1, 64 * KiB);
  t.put("clean", blob(40 * KiB, '1'), PersistState::persisted);
  auto f = t.s().new_file(true, 40 * KiB, false);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_FALSE(t.cached("clean"));
}

TEST(cache_tiers_test, lru_and_lfu_each_evict_what_they_should) {
  for (auto policy : {cache::Policy::lru, cache::Policy::lfu}) {
    TieredStore t(1, 0, policy);
    for (auto k : {"hot", "warm", "cold"}) t.put(k, blob(10 * KiB, k[0]), PersistState::persisted);
    // hot: read 5 times early; warm: once, most recently.
    for (int i = 0; i < 5; ++i) t.s().space().touch("b", "hot", -1);
    t.s().space().touch("b", "cold", -1);
    t.s().space().touch("b", "warm", -1);
    t.s().evict(1, 10 * KiB, false, "capacity");
    if (policy == cache::Policy::lru) {
      // least recent: hot (its last use came before cold's and warm's)
      EXPECT_FALSE(t.cached("hot"));
      EXPECT_TRUE(t.cached("cold"));
    } else {
      // least frequent: cold and warm have 2 uses each; cold is older
      EXPECT_TRUE(t.cached("hot"));
      EXPECT_FALSE(t.cached("cold"));
      EXPECT_TRUE(t.cached("warm"));
    }
  }
}

TEST(cache_tiers_test, demotion_and_promotion_move_bytes_intact) {
  TieredStore t(0, 0);
  std::string data = blob(300 * KiB, 'z');
  ObjectMeta m = t.put("obj", data, PersistState::persisted);
  ASSERT_EQ(t.tier_of("obj"), 0);
  uint32_t crc = crc32c_extend(0, data.data(), data.size());
  CacheUnit u{"b", "obj", m.version, -1, 0, data.size()};
  auto r = t.s().move_unit(u, 1);
  ASSERT_TRUE(r.ok() && *r) << (r.ok() ? "changed" : r.status().to_string());
  EXPECT_EQ(t.tier_of("obj"), 1);
  EXPECT_EQ(t.used(0), 0u);
  EXPECT_EQ(t.used(1), data.size());
  std::string back = t.read("obj");
  EXPECT_EQ(crc32c_extend(0, back.data(), back.size()), crc);
  u.tier = 1;
  r = t.s().move_unit(u, 0);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(t.tier_of("obj"), 0);
  EXPECT_EQ(t.read("obj"), data);
  // Survives a restart in its new place, with exact accounting.
  t.reopen();
  EXPECT_EQ(t.read("obj"), data);
  EXPECT_EQ(t.used(0), data.size());
  EXPECT_EQ(t.used(1), 0u);
}

// Two readers promoting the same object at once (and eviction demoting it)
// each start a move: the moves take turns, so neither copies into the
// other's temporary file, and the data and the accounting stay exact.
TEST(cache_tiers_test, concurrent_moves_of_one_object_keep_its_bytes) {
  TieredStore t(0, 0);
  // Three segments (as a multipart upload leaves): a mover that fell behind
  // must not find the source of its next segment gone and undo its copy of
  // the first one, which is the file the winner's record now points to.
  std::string data = blob(6 << 20, 'c');
  ObjectMeta m = t.put_segments("obj", data, 3);
  for (int round = 0; round < 6; ++round) {
    CacheUnit down{"b", "obj", m.version, -1, 0, data.size()};
    auto r = t.s().move_unit(down, 1);
    ASSERT_TRUE(r.ok() && *r) << round;
    CacheUnit up{"b", "obj", m.version, -1, 1, data.size()};
    std::vector<std::thread> movers;
    std::atomic<int> moved{0};
    for (int i = 0; i < 3; ++i)
      movers.emplace_back([&] {
        auto res = t.s().move_unit(up, 0);
        if (res.ok() && *res) ++moved;
      });
    for (auto& th : movers) th.join();
    EXPECT_GE(moved.load(), 1) << round;
    ASSERT_EQ(t.tier_of("obj"), 0) << round;
    ASSERT_EQ(t.read("obj"), data) << round;
    EXPECT_EQ(t.used(0), data.size()) << round;
    EXPECT_EQ(t.used(1), 0u) << round;
  }
}

// An operator removes a tier that still holds data: the store refuses to
// open and says which tier, instead of reading out of bounds at start-up.
TEST(cache_tiers_test, data_in_a_tier_no_longer_configured_stops_the_open) {
  TieredStore t(0, 0);
  std::string data = blob(64 * KiB, 'q');
  ObjectMeta m = t.put("obj", data, PersistState::persisted);
  CacheUnit u{"b", "obj", m.version, -1, 0, data.size()};
  auto r = t.s().move_unit(u, 1);
  ASSERT_TRUE(r.ok() && *r);
  Status st = t.reopen_without_last_tier();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("tier 1"), std::string::npos) << st.to_string();
}

TEST(cache_tiers_test, the_evictor_demotes_clean_data_to_the_next_tier) {
  TieredStore t(0, 0);
  t.put("x", blob(30 * KiB, 'x'), PersistState::persisted);
  t.put("y", blob(30 * KiB, 'y'), PersistState::persisted);
  uint64_t freed = t.s().evict(0, 30 * KiB, /*demote=*/true, "capacity");
  EXPECT_EQ(freed, 30 * KiB);
  EXPECT_EQ(t.tier_of("x"), 1);  // the colder one
  EXPECT_EQ(t.tier_of("y"), 0);
  EXPECT_EQ(t.read("x"), blob(30 * KiB, 'x'));
  auto ev = t.s().space().evictions();
  EXPECT_EQ((ev[{0, "demote"}]), 1u);
}

TEST(cache_tiers_test, pages_belong_to_one_version_and_go_with_it) {
  TieredStore t(0, 0);
  uint64_t v = t.read_through("paged", 3 * 4096);
  auto f = t.put_page("paged", v, 1, blob(4096, 'p'));
  ASSERT_TRUE(f);
  EXPECT_EQ(t.used(0), 4096u);
  auto got = t.s().get_page("b", "paged", v, 1);
  ASSERT_TRUE(got.ok() && got.value());
  EXPECT_FALSE(t.s().get_page("b", "paged", v, 0).value().has_value());
  // A stale version cannot add pages.
  auto stale = t.s().put_page("b", "paged", v + 1000, 2, f->segment());
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(*stale);
  // Usage survives a restart; overwriting the object drops its pages.
  f.reset();  // writers never outlive their store
  t.reopen();
  EXPECT_EQ(t.used(0), 4096u);
  t.put("paged", "new", PersistState::dirty, false);
  EXPECT_FALSE(t.s().get_page("b", "paged", v, 1).value().has_value());
  EXPECT_EQ(t.used(0), 0u);
}

// A record of an object read through goes when its last cached page does
// (as a whole object's record goes with its data), so the index does not keep
// the metadata of everything ever read; any page but the last leaves it.
TEST(cache_tiers_test, the_last_evicted_page_takes_the_record_of_an_object_read_through) {
  TieredStore t(0, 0);
  uint64_t v = t.read_through("paged", 2 * 4096);
  auto p0 = t.put_page("paged", v, 0, blob(4096, 'a'));
  auto p1 = t.put_page("paged", v, 1, blob(4096, 'b'));
  auto drop = [&](const std::string& key, uint64_t version, uint64_t page) {
    auto r = t.s().drop_unit(CacheUnit{"b", key, version, static_cast<int64_t>(page), 0, 4096});
    EXPECT_TRUE(r.ok());
    return r.ok() && *r;
  };
  EXPECT_TRUE(drop("paged", v, 1));
  EXPECT_TRUE(t.s().get("b", "paged").value().has_value()) << "page 0 is still cached";
  EXPECT_TRUE(drop("paged", v, 0));
  EXPECT_FALSE(t.s().get("b", "paged").value().has_value());
  EXPECT_EQ(t.used(0), 0u);
  p0.reset();
  p1.reset();

  // A page moved to another tier since the caller looked (a reader that
  // found the old copy already unlinked) is not dropped.
  uint64_t mv = t.read_through("moved", 4096);
  t.put_page("moved", mv, 0, blob(4096, 'm')).reset();
  ASSERT_TRUE(t.s().move_unit(CacheUnit{"b", "moved", mv, 0, 0, 4096}, 1).value());
  EXPECT_FALSE(drop("moved", mv, 0)) << "the moved copy was dropped";
  auto kept = t.s().get_page("b", "moved", mv, 0);
  ASSERT_TRUE(kept.ok() && kept.value());
  EXPECT_EQ(kept.value()->tier, 1);

  // A record with no page ever cached (a HEAD) is not touched by a drop of
  // a page it does not have.
  uint64_t hv = t.read_through("headed", 4096);
  EXPECT_FALSE(drop("headed", hv, 0));
  EXPECT_TRUE(t.s().get("b", "headed").value().has_value());
}

TEST(cache_tiers_test, free_refuses_dirty_objects_and_drops_clean_ones) {
  TieredStore t(0, 0);
  t.put("dirty", "d", PersistState::dirty, false);
  t.put("clean", blob(5000, 'c'), PersistState::persisted);
  auto r = t.s().free_object("b", "dirty", "free");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::failed_precondition);
  auto c = t.s().free_object("b", "clean", "free");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 5000u);
  EXPECT_FALSE(t.cached("clean"));
  EXPECT_TRUE(t.cached("dirty"));
}

// A TTL sweep chose version 1; the key was rewritten (and drained) before the
// sweep freed it: the newer version keeps its data.
TEST(cache_tiers_test, freeing_a_replaced_version_leaves_the_newer_one) {
  TieredStore t(0, 0);
  ObjectMeta v1 = t.put("k", blob(3000, '1'), PersistState::persisted);
  ObjectMeta v2 = t.put("k", blob(4000, '2'), PersistState::persisted);
  ASSERT_NE(v1.version, v2.version);
  auto stale = t.s().free_object("b", "k", "ttl", v1.version);
  ASSERT_TRUE(stale.ok()) << stale.status().to_string();
  EXPECT_EQ(*stale, 0u);
  EXPECT_TRUE(t.cached("k"));
  auto cur = t.s().free_object("b", "k", "ttl", v2.version);
  ASSERT_TRUE(cur.ok());
  EXPECT_EQ(*cur, 4000u);
  EXPECT_FALSE(t.cached("k"));
}

// --- records that hold no data (metadata only) ---

// Keys of "b" that still have a record, among `keys`.
std::set<std::string> recorded(TieredStore& t, std::initializer_list<const char*> keys) {
  std::set<std::string> out;
  for (const char* k : keys)
    if (t.cached(k)) out.insert(k);
  return out;
}

// Calls forget 10 times, as the evictor would (a call that meets only
// records it must pass over forgets nothing); returns the total.
uint64_t forget_all(TieredStore& t) {
  uint64_t total = 0;
  for (int i = 0; i < 10; ++i) total += t.s().forget_metadata_records();
  return total;
}

TEST(cache_tiers_test, metadata_only_records_beyond_the_limit_go_least_recently_used_first) {
  TieredStore t(0, 0);
  t.set_max_metadata_records(3);
  for (const char* k : {"a", "b", "c", "d", "e"}) t.read_through(k, 4096);
  EXPECT_EQ(t.s().metadata_records().records, 5u);
  t.s().touch_record("b", "a");  // a read: now the most recent
  t.s().touch_record("b", "never-seen");
  EXPECT_EQ(t.s().forget_metadata_records(), 2u);
  EXPECT_EQ(recorded(t, {"a", "b", "c", "d", "e"}), (std::set<std::string>{"a", "d", "e"}));
  EXPECT_EQ(t.s().metadata_records().records, 3u);
  EXPECT_EQ(t.s().metadata_records().forgotten, 2u);
  EXPECT_EQ(t.s().forget_metadata_records(), 0u);
  // A forgotten key can be recorded again (the next read asks the under store).
  t.read_through("b", 4096);
  EXPECT_TRUE(t.cached("b"));
  EXPECT_EQ(t.s().forget_metadata_records(), 1u);
  EXPECT_EQ(recorded(t, {"a", "b", "c", "d", "e"}), (std::set<std::string>{"a", "b", "e"}));
}

TEST(cache_tiers_test, records_with_data_or_not_persisted_are_not_metadata_only) {
  TieredStore t(0, 0);
  t.set_max_metadata_records(1);
  uint64_t pv = t.read_through("paged", 2 * 4096);
  auto p0 = t.put_page("paged", pv, 0, blob(4096, 'a'));
  auto p1 = t.put_page("paged", pv, 1, blob(4096, 'b'));
  t.put("whole", blob(8 * KiB, 'w'), PersistState::persisted);
  t.put("dirty", blob(8 * KiB, 'd'), PersistState::dirty, false);
  ObjectMeta empty;  // an empty object: no data at all
  empty.state = PersistState::dirty;
  auto e = t.s().commit("b", "empty", empty);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(t.s().metadata_records().records, 0u) << "an empty object counts once persisted";
  ASSERT_TRUE(t.s().set_state_if_current("b", "empty", e->version, PersistState::persisted).value());
  t.read_through("headed", 4096);
  EXPECT_EQ(t.s().metadata_records().records, 2u);
  EXPECT_EQ(forget_all(t), 1u);
  EXPECT_EQ(recorded(t, {"paged", "whole", "dirty", "empty", "headed"}),
            (std::set<std::string>{"paged", "whole", "dirty", "headed"}));
  EXPECT_EQ(t.read("whole"), blob(8 * KiB, 'w'));
  // A dropped page leaves a record with another page out of the count; the
  // last page takes its record along.
  EXPECT_TRUE(t.s().drop_unit(CacheUnit{"b", "paged", pv, 1, 0, 4096}).value());
  EXPECT_EQ(t.s().metadata_records().records, 1u);
  EXPECT_TRUE(t.s().drop_unit(CacheUnit{"b", "paged", pv, 0, 0, 4096}).value());
  EXPECT_FALSE(t.cached("paged"));
  EXPECT_EQ(t.s().metadata_records().records, 1u);
  p0.reset();
  p1.reset();
  // Overwritten by a write through the cache: dirty data, out of the count.
  t.put("headed", blob(4 * KiB, 'h'), PersistState::dirty, false);
  EXPECT_EQ(t.s().metadata_records().records, 0u);
  ASSERT_TRUE(t.s().erase("b", "dirty").ok());
  EXPECT_EQ(t.s().metadata_records().records, 0u);
}

// Records being read are passed over; pinned ones are kept and taken out of
// the count, so that a pinned prefix larger than the limit does not have
// every other record forgotten at once.
TEST(cache_tiers_test, pinned_and_read_metadata_only_records_are_kept) {
  TieredStore t(0, 0);
  t.set_max_metadata_records(1);
  for (const char* k : {"pinned1", "pinned2", "read", "plain1", "plain2"}) t.read_through(k, 4096);
  t.pinned_ = {"pinned1", "pinned2"};
  t.s().space().add_reader("b", "read");
  EXPECT_EQ(forget_all(t), 2u);
  EXPECT_EQ(recorded(t, {"pinned1", "pinned2", "read", "plain1", "plain2"}),
            (std::set<std::string>{"pinned1", "pinned2", "read"}));
  EXPECT_EQ(t.s().metadata_records().records, 1u) << "only read is counted";
  t.s().space().remove_reader("b", "read");
  t.read_through("late", 4096);
  EXPECT_EQ(forget_all(t), 1u);
  EXPECT_EQ(recorded(t, {"pinned1", "pinned2", "read", "late"}), (std::set<std::string>{"pinned1", "pinned2", "late"}));
}

TEST(cache_tiers_test, without_a_limit_nothing_is_ranked) {
  TieredStore t(0, 0);
  t.set_max_metadata_records(0);
  for (const char* k : {"a", "b", "c"}) t.read_through(k, 4096);
  t.s().touch_record("b", "a");
  EXPECT_EQ(t.s().metadata_records().records, 0u);
  EXPECT_EQ(t.s().forget_metadata_records(), 0u);
  EXPECT_EQ(recorded(t, {"a", "b", "c"}).size(), 3u);
}

// A ranking gone wrong (here: a page put behind the ranking's back, as a page
// key that could not be parsed at open would leave it) costs a read through at
// most; forget never leaves pages without their record.
TEST(cache_tiers_test, forget_checks_for_pages_itself) {
  TieredStore t(0, 0);
  t.set_max_metadata_records(1);
  uint64_t v = t.read_through("paged", 4096);
  auto page = t.put_page("paged", v, 0, blob(4096, 'p'));
  page.reset();
  // Rank "paged" again as if it had no page (what a lost update would do);
  // it is the coldest.
  ASSERT_TRUE(t.s().set_state_if_current("b", "paged", v, PersistState::persisted).value());
  t.read_through("other", 4096);
  EXPECT_EQ(t.s().metadata_records().records, 2u);
  EXPECT_EQ(forget_all(t), 0u);
  EXPECT_TRUE(t.cached("paged"));
  EXPECT_TRUE(t.s().get_page("b", "paged", v, 0).value().has_value());
  EXPECT_EQ(t.s().metadata_records().records, 1u);
}

TEST(cache_tiers_test, the_metadata_only_ranking_is_rebuilt_at_open) {
  TieredStore t(0, 0);
  t.set_max_metadata_records(0);  // no limit
  for (const char* k : {"x", "y", "z"}) t.read_through(k, 4096);
  uint64_t yv = t.read_through("y", 4096);
  auto page = t.put_page("y", yv, 0, blob(4096, 'y'));
  page.reset();
  EXPECT_EQ(t.s().forget_metadata_records(), 0u);
  t.set_max_metadata_records(1);  // reopens
  EXPECT_EQ(t.s().metadata_records().records, 2u) << "x and z; y has a page";
  EXPECT_EQ(forget_all(t), 1u);
  EXPECT_EQ(recorded(t, {"x", "y", "z"}).size(), 2u);
  EXPECT_TRUE(t.cached("y"));
  // The forget survives a reopen.
  t.reopen();
  EXPECT_EQ(t.s().metadata_records().records, 1u);
}

TEST(cache_tiers_test, the_evictor_forgets_metadata_only_records_beyond_the_limit) {
  TieredStore t(0, 0);
  t.set_max_metadata_records(2);
  t.s().start_evictor();
  for (int i = 0; i < 20; ++i) t.read_through("k" + std::to_string(i), 4096);
  for (int i = 0; i < 500 && t.s().metadata_records().records > 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  t.s().stop_evictor();
  EXPECT_EQ(t.s().metadata_records().records, 2u);
  EXPECT_EQ(t.s().metadata_records().forgotten, 18u);
  EXPECT_TRUE(t.cached("k19"));
  EXPECT_TRUE(t.cached("k18"));
  EXPECT_FALSE(t.cached("k0"));
}

// A burst of HEADs can outrun the evictor: each new record of an under
// store's answer then makes room itself.
TEST(cache_tiers_test, new_records_of_reads_through_keep_the_limit_without_the_evictor) {
  TieredStore t(0, 0);
  t.set_max_metadata_records(10);
  for (int i = 0; i < 200; ++i) {
    ObjectMeta m;
    m.size = 4096;
    m.page_size = 4096;
    m.state = PersistState::persisted;
    auto r = t.s().record_if_absent("b", "k" + std::to_string(i), m);
    ASSERT_TRUE(r.ok() && *r);
    ASSERT_LE(t.s().metadata_records().records, 10u + 4 + 1) << i;  // the limit, its slack, the new one
  }
  EXPECT_EQ(t.s().metadata_records().records, 14u);
  EXPECT_EQ(t.s().metadata_records().forgotten, 186u);
  EXPECT_EQ(t.s().forget_metadata_records(), 4u);  // the evictor's part
  EXPECT_TRUE(t.cached("k199"));
  EXPECT_FALSE(t.cached("k0"));
}

TEST(cache_tiers_test, the_evictor_goes_on_after_an_exception) {
  TieredStore t(0, 0);
  t.set_max_metadata_records(2);
  std::atomic<int> throws{3};
  t.s().set_pin_check([&](const std::string&, const std::string&) -> bool {
    if (throws.fetch_sub(1) > 0) throw std::runtime_error("pin check failed");
    return false;
  });
  for (int i = 0; i < 6; ++i) t.read_through("k" + std::to_string(i), 4096);
  t.s().start_evictor();
  for (int i = 0; i < 500 && t.s().metadata_records().records > 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  t.s().stop_evictor();
  EXPECT_LE(throws.load(), 0);
  EXPECT_EQ(t.s().metadata_records().records, 2u);
}

}  // namespace
}  // namespace reservoir::store

namespace reservoir::store {
namespace {

// Data written and committed to a file (or kept in the index) that no
// record references: what a crash between the two leaves behind.
std::unique_ptr<FileWriter> unreferenced(TieredStore& t, const std::string& data, bool clean = false) {
  auto f = t.s().new_file(true, data.size(), clean);
  EXPECT_TRUE(f.ok()) << f.status().to_string();
  if (!f.ok()) return nullptr;
  EXPECT_TRUE((*f)->append(data.data(), data.size()).ok());
  EXPECT_TRUE((*f)->commit(!(*f)->in_index()).ok());
  return std::move(f.value());
}

std::string path_of(TieredStore& t, const FileWriter& f) { return t.s().files().path(f.segment().file_id, f.tier()); }

TEST(cache_tiers_test, data_never_committed_before_a_crash_is_swept_after_open) {
  TieredStore t(0, 0, cache::Policy::lru, 64 * KiB);
  std::string keep = blob(200 * KiB, 'k');
  ObjectMeta m = t.put("kept", keep, PersistState::dirty, false);
  // Written but never referenced by a record (a crash in between): a file
  // in each tier and a small piece kept in the index.
  std::vector<std::string> orphan_paths;
  for (bool clean : {false, true}) {
    auto f = unreferenced(t, blob(100 * KiB, 'o'), clean);
    ASSERT_TRUE(f);
    orphan_paths.push_back(path_of(t, *f));
  }
  auto small = unreferenced(t, "tiny");
  ASSERT_TRUE(small && small->in_index());
  Segment tiny = small->segment();
  small.reset();
  for (auto& p : orphan_paths) ASSERT_TRUE(std::filesystem::exists(p)) << p;
  t.reopen();
  // The sweep is not part of opening (start_evictor() runs it in the background).
  for (auto& p : orphan_paths) EXPECT_TRUE(std::filesystem::exists(p)) << p;
  EXPECT_TRUE(t.s().read_inline(tiny).ok());
  // Writes under way when the sweep runs are never taken for orphans.
  std::string data = blob(100 * KiB, 'r');
  auto running = unreferenced(t, data);
  auto running_small = unreferenced(t, "tiny");
  ASSERT_TRUE(running && running_small);
  t.s().sweep_orphans();
  for (auto& p : orphan_paths) EXPECT_FALSE(std::filesystem::exists(p)) << p;
  EXPECT_FALSE(t.s().read_inline(tiny).ok());
  EXPECT_TRUE(std::filesystem::exists(path_of(t, *running)));
  EXPECT_TRUE(t.s().read_inline(running_small->segment()).ok());
  EXPECT_EQ(t.read("kept"), keep);
  EXPECT_EQ(t.used(0) + t.used(1), keep.size() + data.size() + 4);  // the running writes hold their room
  (void)m;
}

// A tier move keeps the file's id: a crash during one leaves a copy of the
// file in the tier its record does not name. The sweep removes that copy
// (it is in no tier's accounting) and keeps the one the record names.
TEST(cache_tiers_test, a_copy_left_by_a_crashed_tier_move_is_swept) {
  TieredStore t(0, 0);
  std::string data = blob(100 * KiB, 'm');
  ObjectMeta m = t.put("moved", data, PersistState::persisted);
  ASSERT_EQ(m.segments.size(), 1u);
  const Segment& seg = m.segments[0];
  ASSERT_FALSE(seg.in_index);
  int other = seg.tier == 0 ? 1 : 0;
  std::string named = t.s().files().path(seg.file_id, seg.tier);
  std::string stray = t.s().files().path(seg.file_id, other);
  std::filesystem::create_directories(std::filesystem::path(stray).parent_path());
  std::filesystem::copy_file(named, stray);
  t.reopen();
  t.s().sweep_orphans();
  EXPECT_FALSE(std::filesystem::exists(stray));
  EXPECT_TRUE(std::filesystem::exists(named));
  EXPECT_EQ(t.read("moved"), data);
}

// A tier move after the open, before the sweep: the sweep's snapshot names
// the old tier, and the moved file is not taken for an orphan.
TEST(cache_tiers_test, a_tier_move_before_the_sweep_keeps_its_file) {
  TieredStore t(0, 0);
  std::string data = blob(100 * KiB, 'n');
  ObjectMeta m = t.put("moving", data, PersistState::persisted);
  ASSERT_EQ(m.segments.size(), 1u);
  const Segment seg = m.segments[0];
  int other = seg.tier == 0 ? 1 : 0;
  t.reopen();
  auto moved = t.s().move_unit({"b", "moving", m.version, -1, seg.tier, data.size()}, other);
  ASSERT_TRUE(moved.ok() && *moved);
  t.s().sweep_orphans();
  EXPECT_TRUE(std::filesystem::exists(t.s().files().path(seg.file_id, other)));
  EXPECT_FALSE(std::filesystem::exists(t.s().files().path(seg.file_id, seg.tier)));
  EXPECT_EQ(t.read("moving"), data);
}

TEST(cache_tiers_test, the_evictor_sweeps_orphans_in_the_background) {
  TieredStore t(0, 0, cache::Policy::lru, 64 * KiB);
  std::string keep = blob(200 * KiB, 'k');
  t.put("kept", keep, PersistState::dirty, false);
  auto f = unreferenced(t, blob(100 * KiB, 'o'));
  ASSERT_TRUE(f);
  std::string orphan = path_of(t, *f);
  f.reset();
  t.reopen();
  ASSERT_TRUE(std::filesystem::exists(orphan));
  t.s().start_evictor();
  for (int i = 0; i < 500 && std::filesystem::exists(orphan); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(std::filesystem::exists(orphan));
  t.s().stop_evictor();
  EXPECT_EQ(t.read("kept"), keep);
}

// --- the sync point: what a power cut may have taken (sync_point.h) ---

void overwrite(const std::string& path, uint64_t off, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "r+b");
  ASSERT_NE(f, nullptr) << path;
  std::fseek(f, static_cast<long>(off), SEEK_SET);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

TEST(cache_tiers_test, pages_torn_since_the_sync_point_are_dropped_at_open) {
  TieredStore t(0, 0);
  uint64_t v = t.read_through("paged", 3 * 4096);
  std::vector<Segment> segs;
  for (uint64_t p = 0; p < 3; ++p) segs.push_back(t.put_page("paged", v, p, blob(4096, static_cast<char>('a' + p)))->segment());
  EXPECT_EQ(t.used(0), 3 * 4096u);
  // The power cut: page 0's file lost its tail, page 1's holds other bytes.
  ASSERT_EQ(::truncate(t.path_of(segs[0]).c_str(), 100), 0);
  overwrite(t.path_of(segs[1]), 10, "torn");
  t.reopen();  // no clean stop
  EXPECT_FALSE(t.s().get_page("b", "paged", v, 0).value().has_value());
  EXPECT_FALSE(t.s().get_page("b", "paged", v, 1).value().has_value());
  ASSERT_TRUE(t.s().get_page("b", "paged", v, 2).value().has_value());
  EXPECT_EQ(t.used(0), 4096u);
  EXPECT_TRUE(t.cached("paged"));  // the record stays: the two pages are read through again
}

TEST(cache_tiers_test, a_page_without_its_crc_is_kept_only_if_a_sync_point_covers_it) {
  TieredStore t(0, 0);
  uint64_t v = t.read_through("paged", 2 * 4096);
  for (uint64_t p = 0; p < 2; ++p) {
    auto f = t.s().new_file(true, 4096, true);
    ASSERT_TRUE(f.ok());
    std::string data = blob(4096, 'q');
    ASSERT_TRUE((*f)->append(data.data(), data.size()).ok());
    ASSERT_TRUE((*f)->commit(false).ok());
    ASSERT_TRUE(t.s().put_page("b", "paged", v, p, (*f)->segment()).value());  // no CRC: cannot be checked
    if (p == 0) ASSERT_TRUE(t.s().write_sync_point().ok());
  }
  t.reopen();  // page 1 came after the sync point
  EXPECT_TRUE(t.s().get_page("b", "paged", v, 0).value().has_value());
  EXPECT_FALSE(t.s().get_page("b", "paged", v, 1).value().has_value());
}

TEST(cache_tiers_test, after_a_clean_stop_nothing_is_checked) {
  TieredStore t(0, 0);
  uint64_t v = t.read_through("paged", 4096);
  auto f = t.s().new_file(true, 4096, true);
  ASSERT_TRUE(f.ok());
  std::string data = blob(4096, 'c');
  ASSERT_TRUE((*f)->append(data.data(), data.size()).ok());
  ASSERT_TRUE((*f)->commit(false).ok());
  ASSERT_TRUE(t.s().put_page("b", "paged", v, 0, (*f)->segment()).value());
  f->reset();
  t.clean_reopen();
  EXPECT_TRUE(t.s().get_page("b", "paged", v, 0).value().has_value());
  EXPECT_EQ(t.s().lost_at_open(), 0u);
}

TEST(cache_tiers_test, with_durability_none_torn_objects_are_forgotten_at_open) {
  TieredStore t(0, 0);
  t.set_durable(false);
  auto dirty = t.put("dirty", blob(8 * KiB, 'd'), PersistState::dirty, false);
  auto clean = t.put("clean", blob(8 * KiB, 'c'), PersistState::persisted);
  t.put("intact", blob(8 * KiB, 'i'), PersistState::dirty, false);
  overwrite(t.path_of(dirty.segments[0]), 0, "torn");
  overwrite(t.path_of(clean.segments[0]), 4096, "torn");
  t.reopen();
  EXPECT_FALSE(t.cached("dirty"));  // lost: never served torn
  EXPECT_FALSE(t.cached("clean"));  // dropped: read through again
  EXPECT_EQ(t.read("intact"), blob(8 * KiB, 'i'));
  EXPECT_EQ(t.s().lost_at_open(), 1u);
  EXPECT_EQ(t.s().stats().dirty_objects, 1u);
  // With durability "fsync" the same objects are trusted (their data was
  // fsynced before the acknowledgement) once a run has written a sync point.
  t.set_durable(true);
  auto trusted = t.put("trusted", blob(8 * KiB, 't'), PersistState::dirty, false);
  t.reopen();
  EXPECT_TRUE(t.cached("trusted"));
}

TEST(cache_tiers_test, with_durability_none_torn_parts_are_forgotten_at_open) {
  TieredStore t(1, 0);
  t.set_durable(false);
  std::vector<std::string> paths;
  for (int n = 1; n <= 2; ++n) {
    std::string data = blob(16 * KiB, static_cast<char>('0' + n));
    auto f = t.s().new_file(false, data.size());
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->append(data.data(), data.size()).ok());
    std::string etag = hex_encode((*f)->md5());
    ASSERT_TRUE((*f)->commit(false).ok());
    ASSERT_TRUE(t.s().put_part("up", PartMeta{n, (*f)->segment(), etag, now_ms()}).ok());
    paths.push_back(t.path_of((*f)->segment()));
  }
  overwrite(paths[1], 100, "torn");
  t.reopen();
  auto parts = t.s().list_parts("up");
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 1u);  // part 2 is uploaded again by the client (InvalidPart until then)
  EXPECT_EQ((*parts)[0].number, 1);
}

TEST(cache_tiers_test, an_unreadable_file_fails_the_start_instead_of_losing_the_object) {
  TieredStore t(1, 0);  // no room on the mem tier (checked by size only)
  t.set_durable(false);
  auto dirty = t.put("dirty", blob(8 * KiB, 'd'), PersistState::dirty, false);
  ASSERT_EQ(t.tier_of("dirty"), 1);
  std::string path = t.path_of(dirty.segments[0]);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);  // reads fail with EISDIR: nothing known of its bytes
  Status st = t.try_reopen();
  EXPECT_FALSE(st.ok());
  ASSERT_EQ(::rmdir(path.c_str()), 0);
  t.reopen();
  EXPECT_FALSE(t.cached("dirty"));  // now missing: forgotten
  EXPECT_EQ(t.s().lost_at_open(), 1u);
}

TEST(cache_tiers_test, with_durability_none_unlinks_wait_for_the_sync_point_but_moves_do_not) {
  TieredStore t(1, 0);  // tier 0 ("mem") has no room: data lands on tier 1
  t.set_durable(false);
  std::string data = blob(64 * KiB, 'm');
  ObjectMeta m = t.put("obj", data, PersistState::persisted);
  ASSERT_EQ(t.tier_of("obj"), 1);
  std::string on_ssd = t.path_of(m.segments[0]);
  // Out to the mem tier and back: the move syncs its record and unlinks the
  // old copy at once; the copy back reuses the path.
  CacheUnit u{"b", "obj", m.version, -1, 1, data.size()};
  t.raise_quota(0, 1 << 20);
  ASSERT_TRUE(t.s().move_unit(u, 0).value());
  EXPECT_NE(::access(on_ssd.c_str(), F_OK), 0);
  u.tier = 0;
  ASSERT_TRUE(t.s().move_unit(u, 1).value());
  ASSERT_TRUE(t.s().write_sync_point().ok());
  EXPECT_EQ(t.read("obj"), data);  // no waiting unlink took the copy back
  // An overwrite lets go of the file: unlinked after the next sync point.
  t.put("obj", blob(10 * KiB, 'n'), PersistState::dirty, false);
  EXPECT_EQ(::access(on_ssd.c_str(), F_OK), 0);
  ASSERT_TRUE(t.s().write_sync_point().ok());
  EXPECT_NE(::access(on_ssd.c_str(), F_OK), 0);
}

// The space accounting counts a file let go of as free at once; with
// durability none its unlink waits for the next sync point. Once more than
// the limit waits, that sync point runs at once instead of within 5 s.
TEST(cache_tiers_test, with_durability_none_many_waiting_unlinks_run_the_sync_point_at_once) {
  TieredStore t(1, 0);  // data lands on tier 1 (files)
  t.set_max_unlink_wait_bytes(100 * KiB);
  t.set_durable(false);
  t.s().start_evictor();
  std::vector<std::string> let_go;
  let_go.push_back(t.path_of(t.put("obj", blob(64 * KiB, '1'), PersistState::persisted).segments[0]));
  let_go.push_back(t.path_of(t.put("obj", blob(64 * KiB, '2'), PersistState::dirty, false).segments[0]));
  EXPECT_EQ(::access(let_go[0].c_str(), F_OK), 0) << "64 KiB waiting: below the limit";
  t.put("obj", blob(64 * KiB, '3'), PersistState::dirty, false);  // 128 KiB waiting
  auto gone = [](const std::string& p) { return ::access(p.c_str(), F_OK) != 0; };
  for (int i = 0; i < 200 && !(gone(let_go[0]) && gone(let_go[1])); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(gone(let_go[0]) && gone(let_go[1])) << "not unlinked within 2 s";
  EXPECT_EQ(t.read("obj"), blob(64 * KiB, '3'));
}

// Records name a tier by its place in the list: a tier inserted before the
// others, or tiers reordered, would make every record name the wrong
// directory (the start's check would forget dirty objects, the orphan sweep
// unlink every file). Such a start is refused; tiers added after the existing
// ones, or a tier's directory moved, are not.
TEST(cache_tiers_test, a_start_on_reordered_tiers_is_refused) {
  TieredStore t(1, 0);  // "mem" t0 (no room), "ssd" t1
  std::string data = blob(8 * KiB, 'd');
  t.put("dirty", data, PersistState::dirty, false);
  ASSERT_EQ(t.tier_of("dirty"), 1);
  for (auto tiers : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"ssd", "t1"}, {"mem", "t0"}},                  // swapped
           {{"mem", "new"}, {"mem", "t0"}, {"ssd", "t1"}},  // one inserted in front
       }) {
    Status st = t.try_tiers(tiers);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), Code::failed_precondition);
    EXPECT_NE(st.message().find("may only be added after the existing ones"), std::string::npos) << st.to_string();
  }
  ASSERT_TRUE(t.try_tiers({{"mem", "t0"}, {"ssd", "t1"}, {"hdd", "t2"}}).ok());  // added after
  EXPECT_EQ(t.read("dirty"), data);
  EXPECT_EQ(t.s().stats().dirty_objects, 1u);
}

// A committed file counts as used; its reservation goes at the commit, not
// when the writer goes (a write going through to the under store keeps its
// writer for the whole upload, and counted twice meanwhile).
TEST(cache_tiers_test, a_commit_turns_the_reservation_into_use) {
  TieredStore t(0, 0);
  std::string data = blob(64 * KiB, 'r');
  auto f = t.s().new_file(false, data.size(), true);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(t.reserved(0), data.size());
  ASSERT_TRUE((*f)->append(data.data(), data.size()).ok());
  ASSERT_TRUE((*f)->commit(true).ok());
  EXPECT_EQ(t.used(0), data.size());
  EXPECT_EQ(t.reserved(0), 0u) << "counted twice while the writer lives";
  f->reset();
  EXPECT_EQ(t.used(0), data.size());
  EXPECT_EQ(t.reserved(0), 0u);
}

// A write that cannot fit (larger than every quota it may use) is refused
// without evicting anything for it.
TEST(cache_tiers_test, a_write_larger_than_every_quota_evicts_nothing) {
  TieredStore t(1, 100 * KiB);
  std::string data = blob(64 * KiB, 'c');
  t.put("clean", data, PersistState::persisted);
  ASSERT_EQ(t.tier_of("clean"), 1);
  auto f = t.s().new_file(false, 200 * KiB, true);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Code::resource_exhausted);
  EXPECT_TRUE(t.cached("clean")) << "evicted for a write that could never fit";
  EXPECT_EQ(t.read("clean"), data);
}

TEST(cache_tiers_test, writes_open_at_a_sync_point_are_checked_at_the_next_start) {
  OpenWrites w;
  uint64_t next = 10;
  uint64_t a = w.begin([&] { return next++; });
  uint64_t b = w.begin([&] { return next++; });
  auto taken = w.take([&] { return next; });
  EXPECT_EQ(taken.below, 12u);
  EXPECT_EQ(taken.open, (std::vector<uint64_t>{a, b}));
  w.end(a);
  EXPECT_EQ(w.take([&] { return next; }).open, std::vector<uint64_t>{b});
  w.end_unsynced(b, "/x/file");
  taken = w.take([&] { return next; });
  EXPECT_TRUE(taken.open.empty());
  EXPECT_EQ(taken.files, std::vector<std::string>{"/x/file"});
  EXPECT_TRUE(w.take([&] { return next; }).files.empty());
  // What a start then checks: ids from the mark on, and those still open.
  SyncPoint p{12, {10}, true};
  EXPECT_TRUE(p.unsure(10));
  EXPECT_FALSE(p.unsure(11));
  EXPECT_TRUE(p.unsure(12));
  auto back = decode_sync_point(encode(p));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->open, std::vector<uint64_t>{10});
  EXPECT_EQ(decode_sync_point(R"({"below":5,"durable":false})")->open.size(), 0u);  // written before "open"
}

}  // namespace
}  // namespace reservoir::store
