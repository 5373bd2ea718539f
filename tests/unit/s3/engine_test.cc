#include "s3/engine.h"

#include <gtest/gtest.h>

#include "test_util.h"
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "s3/errors.h"
#include "ufs/local_ufs.h"
#include "ufs/memory_ufs.h"

namespace reservoir::s3 {
namespace {

using namespace std::chrono_literals;
using Strings = std::vector<std::string>;

using testing_util::TempDir;

std::string s3_code_of(const Status& st) { return to_s3_error(st).code; }

// Engine over one root mount; the under store is a MemoryUfs unless given.
class EngineFixture {
 public:
  explicit EngineFixture(std::unique_ptr<ufs::UnderStore> under = nullptr, WriteMode mode = WriteMode::write_back,
                         std::unique_ptr<store::KvIndex> index = nullptr) {
    MountConfig mc;
    mc.write_mode = mode;
    mc.path = "/";
    mc.ufs = under ? under->uri() : "mem://t";
    mc.persist.concurrency = 4;
    config_.mounts = {mc};
    if (!under) {
      auto mem = std::make_unique<ufs::MemoryUfs>("mem://t");
      mem_ = mem.get();
      under = std::move(mem);
    }
    auto m = std::make_unique<ns::Mount>();
    m->config = mc;
    m->store = std::move(under);
    std::vector<std::unique_ptr<ns::Mount>> mounts;
    mounts.push_back(std::move(m));
    ns_ = std::make_unique<ns::Namespace>(std::move(mounts), std::vector<PolicyConfig>{});
    auto s = store::CacheStore::open(dir_.path() + "/cache", index ? std::move(index) : store::make_memory_index(),
                                     /*durable=*/false);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(s.value());
    persister_ = std::make_unique<persist::Persister>(*store_, *ns_);
    EXPECT_TRUE(persister_->start().ok());
    engine_ = std::make_unique<Engine>(*store_, *ns_, *persister_, config_);
    Status st = engine_->create_bucket("bkt");
    EXPECT_TRUE(st.ok()) << st.to_string();
  }

  ~EngineFixture() {
    if (mem_) mem_->hold_writes(false);
    engine_.reset();
    persister_->stop();
  }

  store::ObjectMeta write(const std::string& key, const std::string& data) {
    auto f = engine_->new_file();
    EXPECT_TRUE(f.ok()) << f.status().to_string();
    if (!f.ok()) return {};
    EXPECT_TRUE((*f)->append(data.data(), data.size()).ok());
    auto r = engine_->finish_put("bkt", key, std::move(f.value()), {}, {});
    EXPECT_TRUE(r.ok()) << key << ": " << r.status().to_string();
    return r.ok() ? r.value() : store::ObjectMeta{};
  }

  void ufs_put(const std::string& key, const std::string& data) {
    ufs::StringSource src(data);
    Status st = ns_->root()->store->put("bkt/" + key, src, data.size(), {});
    ASSERT_TRUE(st.ok()) << st.to_string();
  }

  ListResult list(const ListRequest& req) {
    auto r = engine_->list("bkt", req);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r.value() : ListResult{};
  }

  static Strings keys(const ListResult& r) {
    Strings out;
    for (auto& e : r.contents) out.push_back(e.key);
    return out;
  }

  ufs::MemoryUfs& mem() { return *mem_; }
  Engine& engine() { return *engine_; }
  store::CacheStore& store() { return *store_; }
  persist::Persister& persister() { return *persister_; }

 private:
  TempDir dir_;
  Config config_;
  ufs::MemoryUfs* mem_ = nullptr;
  std::unique_ptr<ns::Namespace> ns_;
  std::unique_ptr<store::CacheStore> store_;
  std::unique_ptr<persist::Persister> persister_;
  std::unique_ptr<Engine> engine_;
};

// Objects only in the under store, dirty objects only in the cache (their
// uploads held), one key in both (the cache's newer version must win), and a
// key deleted in the cache while the under store still has it.
class engine_list_test : public testing::Test {
 protected:
  void SetUp() override {
    f_.ufs_put("u1", "under-1");
    f_.ufs_put("dir/u2", "under-2");
    f_.ufs_put("gone", "deleted in the cache");
    f_.ufs_put("shared", "old shared");
    f_.ufs_put("z/deep/key", "zzz");
    f_.mem().hold_writes(true);
    f_.write("c1", "cache-1");
    f_.write("dir/c2", "cache-2");
    f_.write("dir/sub/c3", "cache-3");
    shared_ = f_.write("shared", "new shared, longer");
    ASSERT_TRUE(f_.engine().delete_object("bkt", "gone").ok());
  }

  // Pages through the listing with max_keys = page, feeding next_marker back
  // as start_after; returns keys and common prefixes in the order seen.
  Strings page_all(ListRequest req, int page) {
    Strings seen;
    req.max_keys = page;
    for (int i = 0; i < 100; ++i) {
      ListResult r = f_.list(req);
      EXPECT_LE(r.contents.size() + r.common_prefixes.size(), static_cast<size_t>(page));
      for (auto& e : r.contents) seen.push_back(e.key);
      for (auto& p : r.common_prefixes) seen.push_back(p);
      if (!r.truncated) return seen;
      EXPECT_FALSE(r.next_marker.empty());
      req.start_after = r.next_marker;
    }
    ADD_FAILURE() << "listing did not end after 100 pages";
    return seen;
  }

  const Strings all_ = {"c1", "dir/c2", "dir/sub/c3", "dir/u2", "shared", "u1", "z/deep/key"};
  EngineFixture f_;
  store::ObjectMeta shared_;
};

}  // namespace

TEST_F(engine_list_test, merges_cache_and_under_store_in_order) {
  ListResult r = f_.list({});
  EXPECT_EQ(EngineFixture::keys(r), all_);
  EXPECT_TRUE(r.common_prefixes.empty());
  EXPECT_FALSE(r.truncated);
  EXPECT_TRUE(r.next_marker.empty());
}

TEST_F(engine_list_test, cache_version_wins_over_under_store) {
  ListResult r = f_.list({});
  auto it = std::find_if(r.contents.begin(), r.contents.end(), [](const ListEntry& e) { return e.key == "shared"; });
  ASSERT_NE(it, r.contents.end());
  EXPECT_EQ(it->size, std::string("new shared, longer").size());
  EXPECT_EQ(it->etag, shared_.etag);
  // Exactly once, although both sides have it.
  EXPECT_EQ(std::count_if(r.contents.begin(), r.contents.end(), [](const ListEntry& e) { return e.key == "shared"; }),
            1);
}

TEST_F(engine_list_test, under_store_entries_carry_their_size) {
  ListResult r = f_.list({});
  std::map<std::string, uint64_t> sizes;
  for (auto& e : r.contents) sizes[e.key] = e.size;
  EXPECT_EQ(sizes["u1"], 7u);
  EXPECT_EQ(sizes["z/deep/key"], 3u);
  EXPECT_EQ(sizes["c1"], 7u);
}

TEST_F(engine_list_test, hides_deleted_key_still_in_under_store) {
  ASSERT_TRUE(f_.mem().data("bkt/gone").has_value());  // the delete is not persisted yet
  ListResult r = f_.list({});
  for (auto& e : r.contents) EXPECT_NE(e.key, "gone");
  ListRequest req;
  req.prefix = "go";
  EXPECT_TRUE(f_.list(req).contents.empty());
  auto h = f_.engine().head_object("bkt", "gone");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(s3_code_of(h.status()), "NoSuchKey");
  auto o = f_.engine().open_object("bkt", "gone");
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(s3_code_of(o.status()), "NoSuchKey");
}

TEST_F(engine_list_test, prefix_filters_both_sources) {
  ListRequest req;
  req.prefix = "dir/";
  EXPECT_EQ(EngineFixture::keys(f_.list(req)), (Strings{"dir/c2", "dir/sub/c3", "dir/u2"}));
  req.prefix = "dir/s";
  EXPECT_EQ(EngineFixture::keys(f_.list(req)), (Strings{"dir/sub/c3"}));
  req.prefix = "nothing/";
  EXPECT_TRUE(f_.list(req).contents.empty());
}

TEST_F(engine_list_test, delimiter_rolls_up_common_prefixes) {
  ListRequest req;
  req.delimiter = "/";
  ListResult r = f_.list(req);
  EXPECT_EQ(EngineFixture::keys(r), (Strings{"c1", "shared", "u1"}));
  EXPECT_EQ(r.common_prefixes, (Strings{"dir/", "z/"}));
  EXPECT_FALSE(r.truncated);

  req.prefix = "dir/";
  ListResult d = f_.list(req);
  EXPECT_EQ(EngineFixture::keys(d), (Strings{"dir/c2", "dir/u2"}));
  EXPECT_EQ(d.common_prefixes, (Strings{"dir/sub/"}));

  req.prefix = "z/";
  ListResult z = f_.list(req);
  EXPECT_TRUE(z.contents.empty());
  EXPECT_EQ(z.common_prefixes, (Strings{"z/deep/"}));
}

TEST_F(engine_list_test, start_after_is_exclusive) {
  ListRequest req;
  req.start_after = "dir/sub/c3";
  EXPECT_EQ(EngineFixture::keys(f_.list(req)), (Strings{"dir/u2", "shared", "u1", "z/deep/key"}));
  req.start_after = "dir/zzz";  // not a key
  EXPECT_EQ(EngineFixture::keys(f_.list(req)), (Strings{"shared", "u1", "z/deep/key"}));
  req.start_after = "gone";  // the deleted key
  EXPECT_EQ(EngineFixture::keys(f_.list(req)), (Strings{"shared", "u1", "z/deep/key"}));
  req.start_after = "z/deep/key";
  EXPECT_TRUE(f_.list(req).contents.empty());
  req.prefix = "dir/";
  req.start_after = "a";  // before the prefix
  EXPECT_EQ(EngineFixture::keys(f_.list(req)), (Strings{"dir/c2", "dir/sub/c3", "dir/u2"}));
}

TEST_F(engine_list_test, max_keys_truncates_with_next_marker) {
  ListRequest req;
  req.max_keys = 3;
  ListResult r = f_.list(req);
  EXPECT_EQ(EngineFixture::keys(r), (Strings{"c1", "dir/c2", "dir/sub/c3"}));
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.next_marker, "dir/sub/c3");

  req.max_keys = static_cast<int>(all_.size());
  ListResult exact = f_.list(req);
  EXPECT_EQ(EngineFixture::keys(exact), all_);
  EXPECT_FALSE(exact.truncated);
}

TEST_F(engine_list_test, paging_covers_every_key_exactly_once) {
  for (int page = 1; page <= 8; ++page) EXPECT_EQ(page_all({}, page), all_) << "page size " << page;
  ListRequest req;
  req.prefix = "dir/";
  for (int page = 1; page <= 4; ++page)
    EXPECT_EQ(page_all(req, page), (Strings{"dir/c2", "dir/sub/c3", "dir/u2"})) << "page size " << page;
}

// With a delimiter, next_marker can be a common prefix ("dir/"). Fed back as
// the marker / continuation token, the next page starts at "dir/c2", which
// rolls up into "dir/" again: the prefix is returned on every page and the
// listing never ends (S3 skips everything under a common-prefix marker).
TEST_F(engine_list_test, paging_with_delimiter_covers_every_entry_exactly_once) {
  ListRequest req;
  req.delimiter = "/";
  for (int page = 1; page <= 5; ++page) {
    Strings seen = page_all(req, page);
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (Strings{"c1", "dir/", "shared", "u1", "z/"})) << "page size " << page;
  }
}

TEST_F(engine_list_test, listing_is_unchanged_once_everything_is_persisted) {
  ListRequest req;
  req.delimiter = "/";
  ListResult before = f_.list({});
  ListResult before_d = f_.list(req);
  f_.mem().hold_writes(false);
  auto s = f_.persister().sync("bkt", "", 30s);
  ASSERT_TRUE(s.done);
  EXPECT_FALSE(f_.mem().data("bkt/gone").has_value());
  EXPECT_EQ(f_.mem().data("bkt/shared"), std::optional<std::string>("new shared, longer"));
  ListResult after = f_.list({});
  EXPECT_EQ(EngineFixture::keys(after), EngineFixture::keys(before));
  for (size_t i = 0; i < std::min(after.contents.size(), before.contents.size()); ++i) {
    EXPECT_EQ(after.contents[i].size, before.contents[i].size) << after.contents[i].key;
    EXPECT_EQ(after.contents[i].etag, before.contents[i].etag) << after.contents[i].key;
  }
  ListResult after_d = f_.list(req);
  EXPECT_EQ(EngineFixture::keys(after_d), EngineFixture::keys(before_d));
  EXPECT_EQ(after_d.common_prefixes, before_d.common_prefixes);
}

TEST_F(engine_list_test, reads_see_cache_and_under_store) {
  auto h = f_.engine().head_object("bkt", "u1");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(h->size, 7u);
  auto o = f_.engine().open_object("bkt", "shared");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->meta().size, std::string("new shared, longer").size());
  auto missing = f_.engine().head_object("bkt", "never");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(s3_code_of(missing.status()), "NoSuchKey");
}

// The persister removes a deleted key from the under store, then drops its
// tombstone. A listing that read the under store's page before the batch of
// records holding the tombstone would list the key again: after each new
// batch of records, the rest of the page is read again.
TEST(engine_test, a_delete_persisted_during_a_listing_is_not_listed) {
  EngineFixture f;
  f.ufs_put("c", "deleted");
  f.persister().stop();  // the test persists the tombstone itself
  for (int i = 0; i < 1000; ++i) f.write(fmt::format("b/{:04d}", i), "x");  // one whole batch before "c"
  ASSERT_TRUE(f.engine().delete_object("bkt", "c").ok());
  auto tomb = f.store().get("bkt", "c");
  ASSERT_TRUE(tomb.ok() && tomb.value());
  uint64_t version = tomb.value()->version;
  f.mem().after_next_list([&] {
    ASSERT_TRUE(f.mem().remove("bkt/c").ok());
    auto done = f.store().set_state_if_current("bkt", "c", version, store::PersistState::persisted);
    ASSERT_TRUE(done.ok() && *done);
  });
  ListRequest req;
  req.delimiter = "/";
  ListResult r = f.list(req);
  EXPECT_EQ(r.common_prefixes, Strings{"b/"});
  EXPECT_EQ(EngineFixture::keys(r), Strings{}) << "a deleted key listed";
}

// A backend's 400 (an expired token, a malformed request) is an error to
// report, not a missing key: NoSuchKey would tell a client the object is gone.
TEST(engine_test, a_backend_error_on_a_cold_read_is_not_no_such_key) {
  EngineFixture f;
  f.ufs_put("k", "exists");
  f.mem().fail_next(1, invalid_argument("HEAD bkt/k: HTTP 400 ExpiredToken"));
  auto h = f.engine().head_object("bkt", "k");
  ASSERT_FALSE(h.ok());
  EXPECT_NE(s3_code_of(h.status()), "NoSuchKey");
  auto again = f.engine().head_object("bkt", "k");
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->size, 6u);
}

TEST(engine_test, list_of_missing_bucket_is_no_such_bucket) {
  EngineFixture f;
  auto r = f.engine().list("nobucket", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(s3_code_of(r.status()), "NoSuchBucket");
}

TEST(engine_test, expiry_of_a_replaced_version_keeps_the_newer_write) {
  // A TTL sweep (or a GET) saw v1 past its TTL; a PUT replaced it before the
  // expiry was applied: the PUT's data stays.
  for (auto mode : {WriteMode::write_back, WriteMode::cache_through, WriteMode::transient}) {
    EngineFixture f(nullptr, mode);
    store::ObjectMeta v1 = f.write("k", "old");
    f.write("k", "newer write");
    f.engine().expire("bkt", "k", v1);
    auto h = f.engine().head_object("bkt", "k");
    ASSERT_TRUE(h.ok()) << h.status().to_string();
    EXPECT_EQ(h->size, std::string("newer write").size());
    // The current version itself does expire.
    f.engine().expire("bkt", "k", *h);
    auto gone = f.engine().head_object("bkt", "k");
    ASSERT_FALSE(gone.ok());
    EXPECT_EQ(s3_code_of(gone.status()), "NoSuchKey");
    if (mode != WriteMode::transient) {
      ASSERT_TRUE(f.persister().sync("bkt", "", std::chrono::seconds(10)).done);
      EXPECT_FALSE(f.mem().head("bkt/k").ok()) << "the tombstone reached the under store";
    }
  }
}

// A small write-back or transient write is kept in memory, as the version it
// committed, for the reads right after it; whatever changes the key after it
// drops or replaces that copy, so a read from memory is never stale.
TEST(engine_test, a_small_write_is_kept_in_memory_as_the_version_it_committed) {
  for (auto mode : {WriteMode::write_back, WriteMode::transient}) {
    EngineFixture f(nullptr, mode);
    f.mem().hold_writes(true);
    auto expect_hot = [&](const store::ObjectMeta& v, const std::string& data) {
      auto h = f.store().hot("bkt", "k");
      ASSERT_TRUE(h) << "not kept in memory";
      EXPECT_EQ(h->meta.version, v.version);
      EXPECT_EQ(h->data, data);
    };
    store::ObjectMeta v1 = f.write("k", "first");
    expect_hot(v1, "first");

    // A refused conditional write changes nothing.
    auto file = f.engine().new_file();
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->append("no", 2).ok());
    PutConditions absent;
    absent.if_none_match_star = true;
    auto refused = f.engine().finish_put("bkt", "k", std::move(file.value()), {}, absent);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(s3_code_of(refused.status()), "PreconditionFailed");
    expect_hot(v1, "first");

    // Data too large for the index is not kept; the older copy is dropped.
    std::string big(100 * 1024, 'b');
    f.write("k", big);
    EXPECT_FALSE(f.store().hot("bkt", "k"));
    auto o = f.engine().open_object("bkt", "k");
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->meta().size, big.size());

    store::ObjectMeta v3 = f.write("k", "third");
    expect_hot(v3, "third");
    std::string empty;
    store::ObjectMeta v4 = f.write("k", empty);
    expect_hot(v4, empty);
    ASSERT_TRUE(f.engine().delete_object("bkt", "k").ok());
    EXPECT_FALSE(f.store().hot("bkt", "k"));
  }
}

// A parked version (its upload failed for good) is superseded by a write or
// DELETE through to the under store, which answers the client as before; a
// retry-parked queues parked keys again only under the key's write lock, so
// it can never queue the older version behind such a write's check.
TEST(engine_test, a_write_through_supersedes_a_parked_version) {
  EngineFixture f(nullptr, WriteMode::cache_through);
  f.ufs_put("gone", "in the under store");
  for (std::string key : {"k", "gone"}) {
    store::ObjectMeta v1 = f.write(key, "v1");
    auto parked = f.store().set_state_if_current("bkt", key, v1.version, store::PersistState::parked, "test");
    ASSERT_TRUE(parked.ok() && *parked);
  }
  store::ObjectMeta v2 = f.write("k", "version 2");
  EXPECT_EQ(v2.state, store::PersistState::persisted);
  EXPECT_EQ(f.mem().data("bkt/k").value_or(""), "version 2");
  ASSERT_TRUE(f.engine().delete_object("bkt", "gone").ok());
  EXPECT_FALSE(f.mem().head("bkt/gone").ok());
  auto retried = f.engine().retry_parked("bkt", "");
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(*retried, 0u) << "nothing is parked any more";
  ASSERT_TRUE(f.persister().sync("bkt", "", std::chrono::seconds(10)).done);
  EXPECT_EQ(f.mem().data("bkt/k").value_or(""), "version 2");
}

TEST(engine_test, deleted_then_rewritten_key_is_listed_once) {
  EngineFixture f;
  f.ufs_put("k", "under");
  f.mem().hold_writes(true);
  ASSERT_TRUE(f.engine().delete_object("bkt", "k").ok());
  EXPECT_TRUE(f.list({}).contents.empty());
  f.write("k", "again");
  ListResult r = f.list({});
  ASSERT_EQ(EngineFixture::keys(r), (Strings{"k"}));
  EXPECT_EQ(r.contents[0].size, 5u);
}

// HeadObject of "x/y" when "x" is an object of a file:// under store: the key
// does not exist, so S3 answers 404 NoSuchKey (GetObject does). HeadObject
// passes the local store's ENOTDIR (invalid_argument) through: 400.
TEST(engine_test, head_below_a_file_object_is_no_such_key) {
  TempDir ufs_dir;
  auto local = ufs::make_local_ufs(ufs_dir.path());
  ASSERT_TRUE(local.ok());
  EngineFixture f(std::move(local.value()));
  f.ufs_put("x", "a file");
  auto o = f.engine().open_object("bkt", "x/y");
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(s3_code_of(o.status()), "NoSuchKey");
  auto h = f.engine().head_object("bkt", "x/y");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(s3_code_of(h.status()), "NoSuchKey") << h.status().to_string();
  EXPECT_EQ(to_s3_error(h.status()).http_status, 404);
}

}  // namespace reservoir::s3

namespace reservoir::s3 {
namespace {

std::string read_all(Engine& e, const std::string& key) {
  auto h = e.open_object("bkt", key);
  if (!h.ok()) return "<" + h.status().to_string() + ">";
  std::string out(h->meta().size, '\0');
  size_t off = 0;
  while (off < out.size()) {
    auto n = h->pread(off, out.data() + off, out.size() - off);
    if (!n.ok() || *n == 0) return "<short>";
    off += *n;
  }
  return out;
}

// Regression: a failed synchronous write removed the data it had been given,
// even when that data belonged to the current version (tags) or to an upload.
TEST(engine_failure_test, failed_cache_through_tagging_keeps_the_object) {
  EngineFixture f(nullptr, WriteMode::cache_through);
  f.write("k", "payload");
  f.mem().fail_next(1, unavailable("backend down"));
  EXPECT_FALSE(f.engine().put_tags("bkt", "k", {{"a", "b"}}).ok());
  EXPECT_EQ(read_all(f.engine(), "k"), "payload");
  ASSERT_TRUE(f.engine().put_tags("bkt", "k", {{"a", "b"}}).ok());
  EXPECT_EQ(read_all(f.engine(), "k"), "payload");
  EXPECT_EQ(f.mem().data("bkt/k").value_or(""), "payload");
}

// An index that notes every batch written to it.
class NotingIndex : public store::KvIndex {
 public:
  NotingIndex() : inner_(store::make_memory_index()) {}
  Result<std::optional<std::string>> get(std::string_view key) override { return inner_->get(key); }
  Status write(const store::KvBatch& batch, bool sync) override {
    {
      std::lock_guard lk(mu_);
      batches_.push_back(batch);
    }
    return inner_->write(batch, sync);
  }
  Status sync() override { return inner_->sync(); }
  Status scan(std::string_view start, std::string_view end,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    return inner_->scan(start, end, fn);
  }
  std::vector<store::KvBatch> batches() {
    std::lock_guard lk(mu_);
    return batches_;
  }

 private:
  std::unique_ptr<store::KvIndex> inner_;
  std::mutex mu_;
  std::vector<store::KvBatch> batches_;
};

// A completed upload's records go in the batch of the object's record: a
// crash or an error after it never leaves the upload alive beside an object
// that holds its part files (an abort, or a part sent again, would then
// remove the object's data).
TEST(engine_failure_test, a_completion_removes_the_upload_in_the_batch_of_the_objects_record) {
  for (auto mode : {WriteMode::write_back, WriteMode::cache_through, WriteMode::through, WriteMode::transient}) {
    auto index = std::make_unique<NotingIndex>();
    NotingIndex* noted = index.get();
    EngineFixture f(nullptr, mode, std::move(index));
    auto id = f.engine().create_upload("bkt", "mp", {});
    ASSERT_TRUE(id.ok()) << id.status().to_string();
    std::string data(1000, 'p');
    std::vector<CompletedPart> parts;
    for (int n : {1, 2}) {
      auto w = f.engine().new_file();
      ASSERT_TRUE(w.ok());
      ASSERT_TRUE((*w)->append(data.data(), data.size()).ok());
      auto etag = f.engine().put_part(*id, n, std::move(w.value()));
      ASSERT_TRUE(etag.ok()) << etag.status().to_string();
      if (n == 2) parts.push_back({n, *etag});  // part 1 left out: its file goes
    }
    auto done = f.engine().complete_upload("bkt", "mp", *id, parts);
    ASSERT_TRUE(done.ok()) << done.status().to_string();
    // (Through: nothing is cached, so the upload's removal is all there is.)
    const std::string object_key = std::string("obkt") + '\0' + "mp";
    int removals = 0;
    for (const auto& b : noted->batches()) {
      bool upload_gone = false, object = false;
      for (const auto& [k, v] : b.ops) {
        upload_gone |= k == "u" + *id && !v;
        object |= k == object_key;
      }
      removals += upload_gone;
      if (upload_gone && mode != WriteMode::through) EXPECT_TRUE(object) << "the upload removed in a batch of its own";
    }
    EXPECT_EQ(removals, 1);
    auto abort = f.engine().abort_upload("bkt", "mp", *id);
    ASSERT_FALSE(abort.ok());
    EXPECT_EQ(s3_code_of(abort), "NoSuchUpload");
    if (mode != WriteMode::through) EXPECT_EQ(read_all(f.engine(), "mp"), data);
  }
}

TEST(engine_failure_test, complete_upload_can_be_retried_after_a_backend_failure) {
  EngineFixture f(nullptr, WriteMode::cache_through);
  auto id = f.engine().create_upload("bkt", "mp", {});
  ASSERT_TRUE(id.ok()) << id.status().to_string();
  auto w = f.engine().new_file();
  ASSERT_TRUE(w.ok());
  std::string data(1000, 'p');
  ASSERT_TRUE((*w)->append(data.data(), data.size()).ok());
  auto etag = f.engine().put_part(*id, 1, std::move(w.value()));
  ASSERT_TRUE(etag.ok()) << etag.status().to_string();
  f.mem().fail_next(1, unavailable("backend down"));
  EXPECT_FALSE(f.engine().complete_upload("bkt", "mp", *id, {{1, *etag}}).ok());
  auto done = f.engine().complete_upload("bkt", "mp", *id, {{1, *etag}});
  ASSERT_TRUE(done.ok()) << done.status().to_string();
  EXPECT_EQ(read_all(f.engine(), "mp"), data);
  EXPECT_EQ(f.mem().data("bkt/mp").value_or(""), data);
}

// A reader asks the under store about a key the cache does not hold; before
// the answer arrives, a write through Reservoir replaces the object there.
// The old answer must not be recorded as the key's metadata.
TEST(engine_test, a_fill_overtaken_by_a_write_is_not_recorded) {
  for (auto mode : {WriteMode::through, WriteMode::cache_through}) {
    EngineFixture f(nullptr, mode);
    f.ufs_put("k", "old");
    f.mem().hold_answers(true);
    Result<store::ObjectMeta> seen = internal_error("not run");
    std::thread reader([&] { seen = f.engine().head_object("bkt", "k"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the answer "old" is on its way
    std::thread writer([&] { f.write("k", "newer data"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    f.mem().hold_answers(false);
    writer.join();
    reader.join();
    ASSERT_TRUE(seen.ok()) << seen.status().to_string();
    auto h = f.engine().head_object("bkt", "k");
    ASSERT_TRUE(h.ok()) << h.status().to_string();
    EXPECT_EQ(h->size, std::string("newer data").size());
    EXPECT_EQ(read_all(f.engine(), "k"), "newer data");
  }
}

// Two PUTs with If-None-Match: * on a key no one has, written through to the
// under store: the second waits for the first, sees its object, and fails.
TEST(engine_test, conditional_writes_through_to_the_under_store_are_atomic) {
  EngineFixture f(nullptr, WriteMode::cache_through);
  f.mem().hold_writes(true);
  auto put_if_absent = [&](const std::string& data) -> Status {
    auto w = f.engine().new_file();
    if (!w.ok()) return w.status();
    RETURN_IF_ERROR((*w)->append(data.data(), data.size()));
    PutConditions c;
    c.if_none_match_star = true;
    return f.engine().finish_put("bkt", "k", std::move(w.value()), {}, c).status();
  };
  Status a = internal_error("not run"), b = internal_error("not run");
  std::thread first([&] { a = put_if_absent("first"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // uploading, held
  std::thread second([&] { b = put_if_absent("second"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  f.mem().hold_writes(false);
  first.join();
  second.join();
  EXPECT_TRUE(a.ok()) << a.to_string();
  EXPECT_EQ(s3_code_of(b), "PreconditionFailed") << b.to_string();
  EXPECT_EQ(read_all(f.engine(), "k"), "first");
  EXPECT_EQ(f.mem().data("bkt/k").value_or(""), "first");
}

// Completion racing a new copy of the same part, or an abort: whatever wins,
// a completed object never points at data the other removed.
TEST(engine_test, completion_races_with_a_part_upload_and_an_abort) {
  EngineFixture f;
  auto part = [&](const std::string& id, char c) -> Result<std::string> {
    auto w = f.engine().new_file();
    if (!w.ok()) return w.status();
    std::string data(3000, c);
    RETURN_IF_ERROR((*w)->append(data.data(), data.size()));
    return f.engine().put_part(id, 1, std::move(w.value()));
  };
  for (int i = 0; i < 150; ++i) {
    std::string key = "mp" + std::to_string(i);
    auto id = f.engine().create_upload("bkt", key, {});
    ASSERT_TRUE(id.ok());
    auto etag = part(*id, 'a');
    ASSERT_TRUE(etag.ok()) << etag.status().to_string();
    Result<store::ObjectMeta> done = internal_error("not run");
    std::thread completer([&] { done = f.engine().complete_upload("bkt", key, *id, {{1, *etag}}); });
    if (i % 2) (void)part(*id, 'b');
    else (void)f.engine().abort_upload("bkt", key, *id);
    completer.join();
    if (done.ok()) EXPECT_EQ(read_all(f.engine(), key), std::string(3000, 'a')) << key;
    else  // the abort, or the new copy of part 1 (another ETag), came first
      EXPECT_EQ(s3_code_of(done.status()), i % 2 ? "InvalidPart" : "NoSuchUpload") << done.status().to_string();
  }
}

}  // namespace
}  // namespace reservoir::s3

