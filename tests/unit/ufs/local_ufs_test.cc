#include "ufs/local_ufs.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "test_util.h"
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "ufs/memory_ufs.h"

namespace reservoir::ufs {
namespace {

using testing_util::TempDir;

bool exists(const std::string& p) { return std::filesystem::exists(p); }

class local_ufs_test : public testing::Test {
 protected:
  void SetUp() override {
    auto u = make_local_ufs(dir_.path());
    ASSERT_TRUE(u.ok()) << u.status().to_string();
    ufs_ = std::move(u.value());
    ASSERT_TRUE(ufs_->make_dir("bkt").ok());
  }

  Status put(const std::string& path, const std::string& data, ObjectInfo meta = {}) {
    StringSource src(data);
    return ufs_->put(path, src, data.size(), meta);
  }

  void must_put(const std::string& path, const std::string& data, ObjectInfo meta = {}) {
    Status st = put(path, data, meta);
    ASSERT_TRUE(st.ok()) << path << ": " << st.to_string();
  }

  std::string get(const std::string& path, uint64_t offset = 0, uint64_t length = UINT64_MAX) {
    auto src = ufs_->get(path, offset, length);
    EXPECT_TRUE(src.ok()) << path << ": " << src.status().to_string();
    if (!src.ok()) return "<error>";
    auto data = read_all(**src);
    EXPECT_TRUE(data.ok());
    return data.ok() ? *data : "<error>";
  }

  std::vector<std::string> list(const std::string& prefix, const std::string& after = "", size_t max = 1000,
                                bool* truncated = nullptr) {
    auto page = ufs_->list(prefix, after, max);
    EXPECT_TRUE(page.ok()) << page.status().to_string();
    std::vector<std::string> out;
    if (!page.ok()) return out;
    for (auto& e : page->entries) out.push_back(e.path);
    if (truncated) *truncated = page->truncated;
    return out;
  }

  std::string root() const { return dir_.path(); }

  TempDir dir_;
  std::unique_ptr<UnderStore> ufs_;
};

using Paths = std::vector<std::string>;

}  // namespace

TEST_F(local_ufs_test, put_get_head_round_trip_with_metadata_sidecar) {
  ObjectInfo meta;
  meta.etag = "0123456789abcdef0123456789abcdef";
  meta.content_type = "application/json";
  meta.headers = {{"cache-control", "max-age=60"}};
  meta.user_meta = {{"owner", "alice"}, {"purpose", "unit test"}};
  meta.tags = {{"team", "storage"}};
  must_put("bkt/dir/obj.json", "{\"a\":1}", meta);

  // The object lives at its natural path; metadata in the sidecar.
  EXPECT_TRUE(exists(root() + "/bkt/dir/obj.json"));
  EXPECT_TRUE(exists(root() + "/.reservoir-meta/bkt/dir/obj.json"));

  auto h = ufs_->head("bkt/dir/obj.json");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(h->path, "bkt/dir/obj.json");
  EXPECT_EQ(h->size, 7u);
  EXPECT_EQ(h->etag, meta.etag);
  EXPECT_EQ(h->content_type, "application/json");
  EXPECT_EQ(h->headers, meta.headers);
  EXPECT_EQ(h->user_meta, meta.user_meta);
  EXPECT_EQ(h->tags, meta.tags);
  EXPECT_GT(h->mtime_ms, 0);
  EXPECT_EQ(get("bkt/dir/obj.json"), "{\"a\":1}");
}

TEST_F(local_ufs_test, overwrite_replaces_data_and_metadata) {
  ObjectInfo a;
  a.etag = "aaaa";
  a.content_type = "text/plain";
  a.user_meta = {{"v", "1"}};
  must_put("bkt/k", "first version", a);
  ObjectInfo b;
  b.etag = "bbbb";
  b.content_type = "image/png";
  must_put("bkt/k", "second", b);
  auto h = ufs_->head("bkt/k");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->size, 6u);
  EXPECT_EQ(h->etag, "bbbb");
  EXPECT_EQ(h->content_type, "image/png");
  EXPECT_TRUE(h->user_meta.empty());
  EXPECT_EQ(get("bkt/k"), "second");
}

// A DELETE removes the directories it leaves empty; a PUT into the same
// directory at that moment made it, then failed its rename with ENOENT.
TEST_F(local_ufs_test, a_delete_never_removes_the_directory_of_a_put_under_way) {
  std::atomic<int> failures{0};
  std::string first;
  std::mutex mu;
  auto worker = [&](int w) {
    for (int i = 0; i < 300; ++i) {
      std::string path = fmt::format("bkt/d/e/w{}-{}", w, i);
      Status st = put(path, "x");
      if (st.ok()) st = ufs_->remove(path);
      if (!st.ok()) {
        std::lock_guard lk(mu);
        if (failures++ == 0) first = st.to_string();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) threads.emplace_back(worker, w);
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0) << first;
}

TEST_F(local_ufs_test, ranged_get_returns_the_requested_bytes) {
  must_put("bkt/r", "0123456789");
  EXPECT_EQ(get("bkt/r", 2, 3), "234");
  EXPECT_EQ(get("bkt/r", 7), "789");
  EXPECT_EQ(get("bkt/r", 0, 1), "0");
  EXPECT_EQ(get("bkt/r", 8, 100), "89");
  EXPECT_EQ(get("bkt/r", 10), "");
  EXPECT_EQ(get("bkt/r", 50, 5), "");
}

TEST_F(local_ufs_test, empty_object_round_trips) {
  must_put("bkt/empty", "");
  auto h = ufs_->head("bkt/empty");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->size, 0u);
  EXPECT_EQ(get("bkt/empty"), "");
}

TEST_F(local_ufs_test, absent_object_is_not_found) {
  auto h = ufs_->head("bkt/missing");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Code::not_found);
  auto g = ufs_->get("bkt/missing", 0, UINT64_MAX);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), Code::not_found);
}

TEST_F(local_ufs_test, directory_is_not_an_object) {
  must_put("bkt/d/inner", "x");
  auto h = ufs_->head("bkt/d");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Code::not_found);
}

// The UnderStore contract: not_found means absent. An object below another
// object ("x/y" when "x" is a file) can never exist, so head must say
// not_found; today it reports invalid_argument (ENOTDIR), which the engine's
// HeadObject passes to the client as 400 InvalidArgument instead of 404.
TEST_F(local_ufs_test, object_below_a_file_is_not_found) {
  must_put("bkt/x", "file");
  auto h = ufs_->head("bkt/x/y");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Code::not_found) << h.status().to_string();
  auto g = ufs_->get("bkt/x/y", 0, UINT64_MAX);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), Code::not_found) << g.status().to_string();
}

TEST_F(local_ufs_test, foreign_file_without_sidecar_gets_stable_etag) {
  {
    std::ofstream f(root() + "/bkt/foreign.txt", std::ios::binary);
    f << "written by someone else";
  }
  auto h1 = ufs_->head("bkt/foreign.txt");
  ASSERT_TRUE(h1.ok()) << h1.status().to_string();
  EXPECT_EQ(h1->size, 23u);
  EXPECT_FALSE(h1->etag.empty());
  auto h2 = ufs_->head("bkt/foreign.txt");
  ASSERT_TRUE(h2.ok());
  EXPECT_EQ(h1->etag, h2->etag);
  EXPECT_EQ(list("bkt/"), (Paths{"bkt/foreign.txt"}));
}

// A sidecar written by someone else with a line break in a header value:
// the value would split the response head, so it is not passed on.
TEST_F(local_ufs_test, sidecar_values_that_no_header_can_hold_are_dropped) {
  {
    std::ofstream f(root() + "/bkt/foreign.txt", std::ios::binary);
    f << "abc";
  }
  std::filesystem::create_directories(root() + "/.reservoir-meta/bkt");
  {
    std::ofstream f(root() + "/.reservoir-meta/bkt/foreign.txt", std::ios::binary);
    f << R"({"size": 3, "etag": "e1", "content_type": "text/plain\r\nSet-Cookie: x=1",)"
      << R"( "headers": {"cache-control": "no-cache", "content-disposition": "a\nb"},)"
      << R"( "user_meta": {"ok": "fine", "bad": "x\r\ny"}})";
  }
  auto h = ufs_->head("bkt/foreign.txt");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(h->etag, "e1");
  EXPECT_EQ(h->content_type, "");
  EXPECT_EQ(h->headers, (std::map<std::string, std::string>{{"cache-control", "no-cache"}}));
  EXPECT_EQ(h->user_meta, (std::map<std::string, std::string>{{"ok", "fine"}}));
}

// A put writes the new sidecar, then renames the new data file into place.
// A read in between must not pair the new ETag with the old bytes: the
// sidecar names its data file, and open_read takes metadata only from the
// sidecar of the file it opened.
TEST_F(local_ufs_test, a_read_between_a_puts_sidecar_and_its_rename_never_mixes_versions) {
  ObjectInfo v1, v2;
  v1.etag = "11111111111111111111111111111111";
  v2.etag = "22222222222222222222222222222222";
  must_put("bkt/obj", "version-1", v1);
  must_put("bkt/next", "version-2", v2);  // same size
  // The moment between the two steps of a put of "version-2" on bkt/obj.
  std::filesystem::copy_file(root() + "/.reservoir-meta/bkt/next", root() + "/.reservoir-meta/bkt/obj",
                             std::filesystem::copy_options::overwrite_existing);
  auto o = ufs_->open_read("bkt/obj", 0, UINT64_MAX);
  ASSERT_TRUE(o.ok()) << o.status().to_string();
  EXPECT_NE(o->info.etag, v2.etag) << "the new version's ETag with the old version's bytes";
  auto data = read_all(*o->src);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, "version-1");
  auto h = ufs_->head("bkt/obj");
  ASSERT_TRUE(h.ok());
  EXPECT_NE(h->etag, v2.etag);
  // Once the rename is done, the pair is whole again.
  std::filesystem::rename(root() + "/bkt/next", root() + "/bkt/obj");
  o = ufs_->open_read("bkt/obj", 0, UINT64_MAX);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->info.etag, v2.etag);
  auto now = read_all(*o->src);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(*now, "version-2");
}

// A copy of the store (cp -a, rsync -a, a restore) gives every file a new
// inode but keeps its mtime: the sidecar still describes it.
TEST_F(local_ufs_test, a_copied_store_keeps_its_metadata) {
  ObjectInfo v1;
  v1.etag = "11111111111111111111111111111111";
  v1.content_type = "text/x-kept";
  must_put("bkt/obj", "version-1", v1);
  std::string data = root() + "/bkt/obj", copy = root() + "/bkt/obj.copy";
  struct stat before {};
  ASSERT_EQ(::stat(data.c_str(), &before), 0);
  std::filesystem::copy_file(data, copy);
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, copy.c_str(), times, 0), 0);
  ASSERT_EQ(::rename(copy.c_str(), data.c_str()), 0);
  struct stat after {};
  ASSERT_EQ(::stat(data.c_str(), &after), 0);
  ASSERT_NE(after.st_ino, before.st_ino);
  auto o = ufs_->open_read("bkt/obj", 0, UINT64_MAX);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->info.etag, v1.etag);
  EXPECT_EQ(o->info.content_type, "text/x-kept");
}

TEST_F(local_ufs_test, list_is_in_byte_order_across_directories) {
  // '-' (0x2d) < '.' (0x2e) < '/' (0x2f) < '0' (0x30): the directory "a"
  // must sort as "a/", between "a.txt" and "a0".
  for (std::string k : {"b", "a0", "a/c/d", "a/b", "a.txt", "a-b"}) must_put("bkt/" + k, k);
  EXPECT_EQ(list("bkt/"), (Paths{"bkt/a-b", "bkt/a.txt", "bkt/a/b", "bkt/a/c/d", "bkt/a0", "bkt/b"}));
}

TEST_F(local_ufs_test, list_with_file_and_dash_sibling) {
  // "a" as an object (a file) cannot coexist with "a/..." in a directory tree.
  for (std::string k : {"b", "a-b", "a"}) must_put("bkt/" + k, k);
  EXPECT_EQ(list("bkt/"), (Paths{"bkt/a", "bkt/a-b", "bkt/b"}));
  EXPECT_EQ(list("bkt/", "bkt/a"), (Paths{"bkt/a-b", "bkt/b"}));
}

TEST_F(local_ufs_test, list_start_after_skips_strictly) {
  for (std::string k : {"a-b", "a.txt", "a/b", "a/c/d", "a0", "b"}) must_put("bkt/" + k, k);
  EXPECT_EQ(list("bkt/", "bkt/a-b"), (Paths{"bkt/a.txt", "bkt/a/b", "bkt/a/c/d", "bkt/a0", "bkt/b"}));
  EXPECT_EQ(list("bkt/", "bkt/a/b"), (Paths{"bkt/a/c/d", "bkt/a0", "bkt/b"}));
  EXPECT_EQ(list("bkt/", "bkt/a/"), (Paths{"bkt/a/b", "bkt/a/c/d", "bkt/a0", "bkt/b"}));
  EXPECT_EQ(list("bkt/", "bkt/a/c/d"), (Paths{"bkt/a0", "bkt/b"}));
  EXPECT_EQ(list("bkt/", "bkt/a/zzz"), (Paths{"bkt/a0", "bkt/b"}));  // start_after that is not a key
  EXPECT_EQ(list("bkt/", "bkt/a0"), (Paths{"bkt/b"}));
  EXPECT_TRUE(list("bkt/", "bkt/b").empty());
}

TEST_F(local_ufs_test, list_prefix_filters_keys) {
  for (std::string k : {"a-b", "a.txt", "a/b", "a/c/d", "a0", "b"}) must_put("bkt/" + k, k);
  ASSERT_TRUE(ufs_->make_dir("bkt2").ok());
  must_put("bkt2/a/b", "other bucket");
  EXPECT_EQ(list("bkt/a/"), (Paths{"bkt/a/b", "bkt/a/c/d"}));
  EXPECT_EQ(list("bkt/a/c"), (Paths{"bkt/a/c/d"}));
  EXPECT_EQ(list("bkt/a"), (Paths{"bkt/a-b", "bkt/a.txt", "bkt/a/b", "bkt/a/c/d", "bkt/a0"}));
  EXPECT_EQ(list("bkt/a", "bkt/a.txt"), (Paths{"bkt/a/b", "bkt/a/c/d", "bkt/a0"}));
  EXPECT_TRUE(list("bkt/zz").empty());
  EXPECT_EQ(list("bkt2/"), (Paths{"bkt2/a/b"}));
  EXPECT_EQ(list(""), (Paths{"bkt/a-b", "bkt/a.txt", "bkt/a/b", "bkt/a/c/d", "bkt/a0", "bkt/b", "bkt2/a/b"}));
}

TEST_F(local_ufs_test, list_pages_cover_every_key_once) {
  Paths all;
  for (std::string k : {"a-b", "a.txt", "a/b", "a/c/d", "a/c/e", "a0", "b", "c/d/e/f"}) {
    must_put("bkt/" + k, k);
    all.push_back("bkt/" + k);
  }
  std::sort(all.begin(), all.end());
  for (size_t page_size : {1u, 2u, 3u}) {
    Paths seen;
    std::string after;
    for (int pages = 0; pages < 100; ++pages) {
      bool truncated = false;
      Paths p = list("bkt/", after, page_size, &truncated);
      EXPECT_LE(p.size(), page_size);
      seen.insert(seen.end(), p.begin(), p.end());
      if (!truncated) break;
      ASSERT_FALSE(p.empty());
      after = p.back();
    }
    EXPECT_EQ(seen, all) << "page size " << page_size;
  }
}

TEST_F(local_ufs_test, list_skips_reserved_directories) {
  must_put("bkt/k", "v");
  auto page = ufs_->list("", "", 1000);
  ASSERT_TRUE(page.ok());
  for (auto& e : page->entries) EXPECT_EQ(e.path.rfind(".reservoir-", 0), std::string::npos) << e.path;
  EXPECT_EQ(page->entries.size(), 1u);
}

TEST_F(local_ufs_test, list_entries_carry_metadata) {
  ObjectInfo m;
  m.etag = "feedface";
  m.content_type = "text/csv";
  must_put("bkt/data.csv", "a,b\n", m);
  auto page = ufs_->list("bkt/", "", 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_EQ(page->entries[0].size, 4u);
  EXPECT_EQ(page->entries[0].etag, "feedface");
  EXPECT_EQ(page->entries[0].content_type, "text/csv");
}

TEST_F(local_ufs_test, remove_prunes_empty_directories_but_keeps_bucket) {
  must_put("bkt/x/y/z", "deep");
  must_put("bkt/x/keep", "sibling");
  ASSERT_TRUE(ufs_->remove("bkt/x/y/z").ok());
  EXPECT_FALSE(exists(root() + "/bkt/x/y/z"));
  EXPECT_FALSE(exists(root() + "/bkt/x/y"));
  EXPECT_FALSE(exists(root() + "/.reservoir-meta/bkt/x/y"));
  EXPECT_TRUE(exists(root() + "/bkt/x/keep"));

  ASSERT_TRUE(ufs_->remove("bkt/x/keep").ok());
  EXPECT_FALSE(exists(root() + "/bkt/x"));
  EXPECT_FALSE(exists(root() + "/.reservoir-meta/bkt/x"));
  EXPECT_TRUE(std::filesystem::is_directory(root() + "/bkt"));
  EXPECT_TRUE(list("bkt/").empty());
  auto h = ufs_->head("bkt/x/keep");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Code::not_found);
}

TEST_F(local_ufs_test, remove_of_absent_object_succeeds) {
  EXPECT_TRUE(ufs_->remove("bkt/never").ok());
  EXPECT_TRUE(ufs_->remove("bkt/no/such/dir/key").ok());
}

TEST_F(local_ufs_test, removed_path_can_become_a_directory) {
  must_put("bkt/x", "file");
  ASSERT_TRUE(ufs_->remove("bkt/x").ok());
  must_put("bkt/x/y", "now a directory");
  EXPECT_EQ(get("bkt/x/y"), "now a directory");
}

TEST_F(local_ufs_test, check_path_rejects_paths_a_directory_cannot_hold) {
  for (const std::string& bad : std::vector<std::string>{"", "bkt/../etc", "..", "bkt/..", "bkt/./x", ".", "bkt/.", "bkt//x", "//", "bkt/x//",
                          "bkt/", "/abs", ".reservoir-meta/x", ".reservoir-tmp", "bkt/a/.reservoir-dir"}) {
    Status st = ufs_->check_path(bad);
    ASSERT_FALSE(st.ok()) << "accepted: '" << bad << "'";
    EXPECT_EQ(st.code(), Code::invalid_argument) << bad;
  }
  EXPECT_FALSE(ufs_->check_path("bkt/" + std::string(256, 'n')).ok());
  EXPECT_FALSE(ufs_->check_path(std::string("bkt/a\0b", 7)).ok());
}

TEST_F(local_ufs_test, folder_markers_are_empty_objects_kept_as_directories) {
  ASSERT_TRUE(ufs_->check_path("bkt/dir/").ok());
  ufs::ObjectInfo meta;
  meta.content_type = "application/x-directory";
  ufs::StringSource empty("");
  ASSERT_TRUE(ufs_->put("bkt/dir/", empty, 0, meta).ok());
  auto info = ufs_->head("bkt/dir/");
  ASSERT_TRUE(info.ok()) << info.status().to_string();
  EXPECT_EQ(info->size, 0u);
  EXPECT_EQ(info->content_type, "application/x-directory");
  EXPECT_EQ(get("bkt/dir/"), "");
  must_put("bkt/dir/file", "inside");
  must_put("bkt/dir0", "after");
  auto page = ufs_->list("bkt/", "", 100);
  ASSERT_TRUE(page.ok());
  std::vector<std::string> keys;
  for (auto& e : page->entries) keys.push_back(e.path);
  EXPECT_EQ(keys, (std::vector<std::string>{"bkt/dir/", "bkt/dir/file", "bkt/dir0"}));
  // Removing the child keeps the marked directory; removing the marker then drops it.
  ASSERT_TRUE(ufs_->remove("bkt/dir/file").ok());
  EXPECT_TRUE(ufs_->head("bkt/dir/").ok());
  ASSERT_TRUE(ufs_->remove("bkt/dir/").ok());
  EXPECT_EQ(ufs_->head("bkt/dir/").status().code(), Code::not_found);
  // Markers carry no data here.
  ufs::StringSource data("x");
  EXPECT_EQ(ufs_->put("bkt/d2/", data, 1, meta).code(), Code::invalid_argument);
}

TEST_F(local_ufs_test, check_path_accepts_ordinary_keys) {
  for (const std::string& good : std::vector<std::string>{"bkt/k", "bkt/a b/c.txt", "bkt/...", "bkt/..x", "bkt/.hidden", "bkt/x/.reservoir-meta",
                           "bkt/" + std::string(255, 'n')}) {
    Status st = ufs_->check_path(good);
    EXPECT_TRUE(st.ok()) << good << ": " << st.to_string();
  }
}

TEST_F(local_ufs_test, operations_refuse_bad_paths) {
  Status st = put("bkt/../escape", "x");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::invalid_argument);
  EXPECT_FALSE(exists(root() + "/escape"));
  EXPECT_EQ(ufs_->head("bkt/a//b").status().code(), Code::invalid_argument);
  EXPECT_EQ(ufs_->remove("bkt/..").code(), Code::invalid_argument);
}

TEST_F(local_ufs_test, file_blocks_keys_below_it) {
  must_put("bkt/x", "I am a file");
  Status st = put("bkt/x/y", "cannot live under a file");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::failed_precondition) << st.to_string();
  // The existing object is untouched.
  EXPECT_EQ(get("bkt/x"), "I am a file");
  EXPECT_EQ(list("bkt/"), (Paths{"bkt/x"}));
  // No temporary leftovers.
  EXPECT_TRUE(std::filesystem::is_empty(root() + "/.reservoir-tmp"));
}

TEST_F(local_ufs_test, directory_blocks_a_key_with_its_name) {
  must_put("bkt/p/q", "inside");
  Status st = put("bkt/p", "cannot replace a directory");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::failed_precondition) << st.to_string();
  EXPECT_EQ(get("bkt/p/q"), "inside");
  EXPECT_EQ(list("bkt/"), (Paths{"bkt/p/q"}));
  EXPECT_TRUE(std::filesystem::is_empty(root() + "/.reservoir-tmp"));
}

// A refused put must leave nothing behind. Below a foreign file (one without
// a sidecar) the sidecar of "f/g" is written before the data rename fails, so
// ".reservoir-meta/bkt/f/" becomes a directory and "f" itself can no longer
// be overwritten (its sidecar rename hits that directory).
TEST_F(local_ufs_test, refused_put_below_foreign_file_leaves_no_sidecar) {
  {
    std::ofstream f(root() + "/bkt/f", std::ios::binary);
    f << "foreign";
  }
  Status below = put("bkt/f/g", "cannot live under a file");
  ASSERT_FALSE(below.ok());
  EXPECT_EQ(below.code(), Code::failed_precondition);
  EXPECT_FALSE(exists(root() + "/.reservoir-meta/bkt/f/g"));
  Status over = put("bkt/f", "replacing the foreign file");
  EXPECT_TRUE(over.ok()) << over.to_string();
  EXPECT_EQ(get("bkt/f"), "replacing the foreign file");
}

TEST_F(local_ufs_test, foreign_file_can_be_overwritten) {
  {
    std::ofstream f(root() + "/bkt/f", std::ios::binary);
    f << "foreign";
  }
  ObjectInfo m;
  m.etag = "cafe";
  must_put("bkt/f", "ours now", m);
  EXPECT_EQ(get("bkt/f"), "ours now");
  EXPECT_EQ(ufs_->head("bkt/f")->etag, "cafe");
}

TEST_F(local_ufs_test, short_source_is_refused_and_leaves_nothing) {
  StringSource src("abc");
  Status st = ufs_->put("bkt/short", src, 10, {});
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(exists(root() + "/bkt/short"));
  EXPECT_TRUE(std::filesystem::is_empty(root() + "/.reservoir-tmp"));
}

TEST_F(local_ufs_test, buckets_are_directories) {
  ASSERT_TRUE(ufs_->make_dir("alpha").ok());
  EXPECT_TRUE(ufs_->dir_exists("alpha").value());
  EXPECT_FALSE(ufs_->dir_exists("nope").value());
  auto dirs = ufs_->list_dirs();
  ASSERT_TRUE(dirs.ok());
  EXPECT_EQ(*dirs, (Paths{"alpha", "bkt"}));  // sorted, reserved directories hidden

  must_put("alpha/obj", "x");
  Status busy = ufs_->remove_dir("alpha");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.code(), Code::failed_precondition);
  ASSERT_TRUE(ufs_->remove("alpha/obj").ok());
  ASSERT_TRUE(ufs_->remove_dir("alpha").ok());
  EXPECT_FALSE(ufs_->dir_exists("alpha").value());
  EXPECT_TRUE(ufs_->remove_dir("alpha").ok());  // already gone
}

TEST_F(local_ufs_test, reopen_clears_temporary_leftovers) {
  {
    std::ofstream f(root() + "/.reservoir-tmp/crashed-upload");
    f << "partial";
  }
  must_put("bkt/k", "kept");
  auto again = make_local_ufs(root());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(std::filesystem::is_empty(root() + "/.reservoir-tmp"));
  auto h = (*again)->head("bkt/k");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->size, 4u);
}

TEST(open_under_store_test, opens_by_uri_scheme) {
  TempDir dir;
  auto f = open_under_store("file://" + dir.path() + "/u");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)->uri(), "file://" + dir.path() + "/u");
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() + "/u"));

  auto m = open_under_store("mem://name");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->uri(), "mem://name");
  EXPECT_NE(dynamic_cast<MemoryUfs*>(m->get()), nullptr);

  auto bad = open_under_store("ftp://host/x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::invalid_argument);
  EXPECT_FALSE(open_under_store("file://").ok());
}

}  // namespace reservoir::ufs
