#include "common/config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "common/units.h"

namespace reservoir {

const char* write_mode_name(WriteMode m) {
  switch (m) {
    case WriteMode::write_back: return "write-back";
    case WriteMode::through: return "through";
    case WriteMode::cache_through: return "cache-through";
    case WriteMode::transient: return "transient";
  }
  return "?";
}

Result<WriteMode> parse_write_mode(std::string_view s) {
  if (s == "write-back") return WriteMode::write_back;
  if (s == "through") return WriteMode::through;
  if (s == "cache-through") return WriteMode::cache_through;
  if (s == "transient") return WriteMode::transient;
  return invalid_argument(fmt::format("write_mode '{}' (use write-back, through, cache-through, transient)", s));
}

const char* read_type_name(ReadType t) {
  switch (t) {
    case ReadType::cache: return "cache";
    case ReadType::no_cache: return "no-cache";
    case ReadType::promote: return "promote";
  }
  return "?";
}

Result<ReadType> parse_read_type(std::string_view s) {
  if (s == "cache") return ReadType::cache;
  if (s == "no-cache") return ReadType::no_cache;
  if (s == "promote") return ReadType::promote;
  return invalid_argument(fmt::format("read_type '{}' (use cache, no-cache, promote)", s));
}

const char* ttl_action_name(TtlAction a) { return a == TtlAction::free ? "free" : "delete"; }

Result<TtlAction> parse_ttl_action(std::string_view s) {
  if (s == "free") return TtlAction::free;
  if (s == "delete") return TtlAction::del;
  return invalid_argument(fmt::format("ttl action '{}' (use free or delete)", s));
}

bool Config::default_credentials() const {
  AuthConfig d;
  return auth.access_key == d.access_key && auth.secret_key == d.secret_key;
}

Config default_config() {
  Config c;
  Status st = finalize_config(c);
  (void)st;
  return c;
}

namespace {

constexpr int64_t kMaxSeconds = int64_t{100} * 365 * 86400;

// Reads optional fields of a TOML table into typed values, collecting the
// first error with the key's name.
class Reader {
 public:
  Reader(const toml::table& t, std::string where) : t_(t), where_(std::move(where)) {}

  // A key read elsewhere (a nested table).
  void known(const char* key) { seen_.insert(key); }
  // Every key of the table was read: a misspelt or misplaced key is an error
  // naming it, not a setting silently ignored.
  void no_others() {
    for (const auto& [k, v] : t_)
      if (!seen_.count(std::string(k.str()))) {
        if (st_.ok()) st_ = invalid_argument(fmt::format("{}.{} is not a setting", where_, k.str()));
        return;
      }
  }

  void str(const char* key, std::string& out) {
    if (auto n = get(key)) {
      if (auto v = n->value<std::string>()) out = *v;
      else fail(key, "a string");
    }
  }
  void boolean(const char* key, bool& out) {
    if (auto n = get(key)) {
      if (auto v = n->value<bool>()) out = *v;
      else fail(key, "true or false");
    }
  }
  void integer(const char* key, int& out) {
    if (auto n = get(key)) {
      if (auto v = n->value<int64_t>()) out = static_cast<int>(*v);
      else fail(key, "an integer");
    }
  }
  void count(const char* key, uint64_t& out) {
    if (auto n = get(key)) {
      auto v = n->value<int64_t>();
      if (v && *v >= 0) out = static_cast<uint64_t>(*v);
      else fail(key, "an integer >= 0");
    }
  }
  void number(const char* key, double& out) {
    if (auto n = get(key)) {
      if (auto v = n->value<double>()) out = *v;
      else fail(key, "a number");
    }
  }
  void size(const char* key, uint64_t& out) {
    if (auto n = get(key)) {
      if (auto i = n->value<int64_t>()) {
        if (*i < 0) return fail(key, "a size >= 0");
        out = static_cast<uint64_t>(*i);
        return;
      }
      if (auto s = n->value<std::string>()) {
        auto r = parse_size(*s);
        if (r.ok()) out = *r;
        else set(r.status(), key);
        return;
      }
      fail(key, "a size like \"200MiB\"");
    }
  }
  void duration(const char* key, std::chrono::milliseconds& out) {
    if (auto n = get(key)) {
      if (auto i = n->value<int64_t>()) {
        if (*i < 0 || *i > kMaxSeconds) return fail(key, "a duration of 0 to 100 years");
        out = std::chrono::seconds(*i);
        return;
      }
      if (auto s = n->value<std::string>()) {
        auto r = parse_duration(*s);
        if (r.ok()) out = *r;
        else set(r.status(), key);
        return;
      }
      fail(key, "a duration like \"30s\"");
    }
  }
  void string_list(const char* key, std::vector<std::string>& out) {
    if (auto n = get(key)) {
      auto* arr = n->as_array();
      if (!arr) return fail(key, "an array of strings");
      out.clear();
      for (auto& e : *arr) {
        if (auto v = e.value<std::string>()) out.push_back(*v);
        else return fail(key, "an array of strings");
      }
    }
  }
  void write_mode(const char* key, WriteMode& out) {
    std::string s;
    str(key, s);
    if (s.empty()) return;
    auto r = parse_write_mode(s);
    if (r.ok()) out = *r;
    else set(r.status(), key);
  }
  const Status& status() const { return st_; }

 private:
  void fail(const char* key, const char* what) {
    if (st_.ok()) st_ = invalid_argument(fmt::format("{}.{} must be {}", where_, key, what));
  }
  void set(const Status& s, const char* key) {
    if (st_.ok()) st_ = invalid_argument(fmt::format("{}.{}: {}", where_, key, s.message()));
  }
  const toml::node* get(const char* key) {
    seen_.insert(key);
    return t_.get(key);
  }
  const toml::table& t_;
  std::string where_;
  Status st_;
  std::set<std::string> seen_;
};

Status read_policy(const toml::table& t, int idx, PolicyConfig& p) {
  Reader r(t, fmt::format("policy[{}]", idx));
  r.str("path", p.path);
  WriteMode wm = WriteMode::write_back;
  std::string wms;
  r.str("write_mode", wms);
  if (!wms.empty()) {
    r.write_mode("write_mode", wm);
    p.write_mode = wm;
  }
  if (t.contains("ttl")) {
    std::chrono::milliseconds ttl{0};
    r.duration("ttl", ttl);
    p.ttl = ttl;
  }
  std::string s;
  r.str("ttl_action", s);
  if (!s.empty()) {
    auto a = parse_ttl_action(s);
    if (!a.ok()) return invalid_argument(fmt::format("policy[{}].ttl_action: {}", idx, a.status().message()));
    p.ttl_action = *a;
  }
  s.clear();
  r.str("read_type", s);
  if (!s.empty()) {
    auto rt = parse_read_type(s);
    if (!rt.ok()) return invalid_argument(fmt::format("policy[{}].read_type: {}", idx, rt.status().message()));
    p.read_type = *rt;
  }
  if (t.contains("pin")) {
    bool pin = false;
    r.boolean("pin", pin);
    p.pin = pin;
  }
  if (p.ttl && (p.ttl->count() <= 0))
    return invalid_argument(fmt::format("policy[{}].ttl must be more than 0 (leave it out for none)", idx));
  r.no_others();
  return r.status();
}

Status read_mount(const toml::table& t, int idx, MountConfig& m) {
  Reader r(t, fmt::format("mount[{}]", idx));
  r.str("path", m.path);
  r.str("ufs", m.ufs);
  r.str("endpoint", m.endpoint);
  r.str("region", m.region);
  r.str("access_key", m.access_key);
  r.str("secret_key", m.secret_key);
  r.size("multipart_threshold", m.multipart_threshold);
  r.size("part_size", m.part_size);
  if (t.contains("path_style")) {
    bool ps = true;
    r.boolean("path_style", ps);
    m.path_style = ps;
  }
  r.write_mode("write_mode", m.write_mode);
  r.integer("replicas", m.replicas);
  r.size("dirty_max_bytes", m.dirty_max_bytes);
  r.size("dirty_max_objects", m.dirty_max_objects);
  if (t.contains("metadata_ttl")) {
    std::chrono::milliseconds ttl{0};
    r.duration("metadata_ttl", ttl);
    m.metadata_ttl = ttl;
  }
  std::string on_full;
  r.str("on_full", on_full);
  if (on_full == "reject") m.on_full = OnFull::reject;
  else if (!on_full.empty() && on_full != "through")
    return invalid_argument(fmt::format("mount[{}].on_full must be \"through\" or \"reject\"", idx));
  r.known("persist");
  r.no_others();
  RETURN_IF_ERROR(r.status());
  if (auto p = t.get("persist")) {
    auto* pt = p->as_table();
    if (!pt) return invalid_argument(fmt::format("mount[{}].persist must be a table", idx));
    Reader pr(*pt, fmt::format("mount[{}].persist", idx));
    pr.number("max_ops_per_sec", m.persist.max_ops_per_sec);
    pr.size("max_bytes_per_sec", m.persist.max_bytes_per_sec);
    pr.integer("concurrency", m.persist.concurrency);
    pr.duration("delay", m.persist.delay);
    pr.no_others();
    RETURN_IF_ERROR(pr.status());
  }
  return ok_status();
}

}  // namespace

Result<Config> parse_config(std::string_view text, std::string_view origin) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << e;
    return invalid_argument("cannot parse configuration: " + os.str());
  }
  // Every top-level name is a known table, of its kind: "[mount]" where
  // "[[mount]]" was meant would otherwise leave the default mount in place.
  for (const auto& [k, v] : root) {
    std::string name(k.str());
    bool list = name == "tier" || name == "mount" || name == "policy";
    bool table = name == "server" || name == "auth" || name == "cache";
    if (!list && !table) return invalid_argument(fmt::format("'{}' is not a section of the configuration", name));
    if (list && !v.is_array()) return invalid_argument(fmt::format("write [[{}]] (one entry per table), not [{}]", name, name));
    if (table && !v.is_table()) return invalid_argument(fmt::format("'{}' must be a table: [{}]", name, name));
  }
  Config c;
  if (auto* s = root["server"].as_table()) {
    Reader r(*s, "server");
    r.str("s3_listen", c.server.s3_listen);
    r.str("admin_listen", c.server.admin_listen);
    r.str("data_dir", c.server.data_dir);
    r.str("tls_listen", c.server.tls_listen);
    r.str("tls_cert", c.server.tls_cert);
    r.str("tls_key", c.server.tls_key);
    r.string_list("domains", c.server.domains);
    r.integer("threads", c.server.threads);
    r.integer("io_threads", c.server.io_threads);
    r.integer("max_connections", c.server.max_connections);
    r.size("max_header_bytes", c.server.max_header_bytes);
    r.size("inline_max_bytes", c.server.inline_max_bytes);
    r.size("index_journal_bytes", c.server.index_journal_bytes);
    r.duration("header_timeout", c.server.header_timeout);
    r.duration("idle_timeout", c.server.idle_timeout);
    r.duration("drain_timeout", c.server.drain_timeout);
    r.str("log_level", c.server.log_level);
    std::string dur;
    r.str("durability", dur);
    r.no_others();
    if (dur == "none") c.server.durability = Durability::none;
    else if (!dur.empty() && dur != "fsync")
      return invalid_argument("server.durability must be \"fsync\" or \"none\"");
    RETURN_IF_ERROR(r.status());
    if (c.server.index_journal_bytes < (1ull << 20) || c.server.index_journal_bytes > (4ull << 30))
      return invalid_argument("server.index_journal_bytes must be 1MiB to 4GiB");
  }
  if (auto* a = root["auth"].as_table()) {
    Reader r(*a, "auth");
    r.str("access_key", c.auth.access_key);
    r.str("secret_key", c.auth.secret_key);
    r.boolean("allow_anonymous", c.auth.allow_anonymous);
    r.str("region", c.auth.region);
    r.no_others();
    RETURN_IF_ERROR(r.status());
  }
  if (auto* tiers = root["tier"].as_array()) {
    int i = 0;
    for (auto& n : *tiers) {
      auto* t = n.as_table();
      if (!t) return invalid_argument("[[tier]] entries must be tables");
      TierConfig tc;
      Reader r(*t, fmt::format("tier[{}]", i++));
      r.str("medium", tc.medium);
      r.str("path", tc.path);
      r.size("quota", tc.quota);
      r.no_others();
      RETURN_IF_ERROR(r.status());
      c.tiers.push_back(tc);
    }
  }
  if (auto* ct = root["cache"].as_table()) {
    Reader r(*ct, "cache");
    r.size("page_size", c.cache.page_size);
    r.str("eviction", c.cache.eviction);
    r.number("high_watermark", c.cache.high_watermark);
    r.number("low_watermark", c.cache.low_watermark);
    r.integer("readahead_pages", c.cache.readahead_pages);
    r.duration("ttl_check_interval", c.cache.ttl_check_interval);
    r.integer("load_concurrency", c.cache.load_concurrency);
    r.size("memory", c.cache.memory);
    r.count("max_metadata_records", c.cache.max_metadata_records);
    r.no_others();
    RETURN_IF_ERROR(r.status());
  }
  if (auto* mounts = root["mount"].as_array()) {
    int i = 0;
    for (auto& n : *mounts) {
      auto* t = n.as_table();
      if (!t) return invalid_argument("[[mount]] entries must be tables");
      MountConfig m;
      RETURN_IF_ERROR(read_mount(*t, i++, m));
      c.mounts.push_back(m);
    }
  }
  if (auto* pols = root["policy"].as_array()) {
    int i = 0;
    for (auto& n : *pols) {
      auto* t = n.as_table();
      if (!t) return invalid_argument("[[policy]] entries must be tables");
      PolicyConfig p;
      RETURN_IF_ERROR(read_policy(*t, i++, p));
      c.policies.push_back(p);
    }
  }
  RETURN_IF_ERROR(finalize_config(c));
  return c;
}

Result<Config> load_config_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return not_found(fmt::format("cannot open configuration file '{}'", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_config(ss.str(), path);
}

Status finalize_config(Config& c) {
  if (c.server.data_dir.empty()) return invalid_argument("server.data_dir must not be empty");
  if (c.tiers.empty()) {
    TierConfig t;
    t.medium = "ssd";
    t.path = c.server.data_dir + "/cache";
    t.quota = 0;
    c.tiers.push_back(t);
  }
  if (c.mounts.empty()) {
    MountConfig m;
    m.path = "/";
    m.ufs = "file://" + c.server.data_dir + "/ufs";
    c.mounts.push_back(m);
  }
  for (size_t i = 0; i < c.mounts.size(); ++i) {
    auto& m = c.mounts[i];
    if (m.path.empty() || m.path[0] != '/')
      return invalid_argument(fmt::format("mount[{}].path '{}' must start with '/'", i, m.path));
    if (m.path.size() > 1 && m.path.back() == '/') m.path.pop_back();
    if (m.path.find('/', 1) != std::string::npos)
      return invalid_argument(fmt::format("mount[{}].path '{}': mounts are '/' or '/<bucket>'", i, m.path));
    if (m.ufs.empty()) return invalid_argument(fmt::format("mount[{}].ufs is required", i));
    if (m.persist.concurrency < 1 || m.persist.concurrency > 1024)
      return invalid_argument(fmt::format("mount[{}].persist.concurrency must be between 1 and 1024", i));
    if (m.part_size < (5ull << 20) || m.part_size > (5ull << 30))
      return invalid_argument(fmt::format("mount[{}].part_size must be between 5MiB and 5GiB (S3's part size limits)", i));
    if (m.replicas < 1) return invalid_argument(fmt::format("mount[{}].replicas must be >= 1", i));
  }
  for (size_t i = 0; i < c.mounts.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (c.mounts[i].path == c.mounts[j].path)
        return invalid_argument(fmt::format("mount[{}] and mount[{}] have the same path '{}'", j, i, c.mounts[i].path));
  for (size_t i = 0; i < c.policies.size(); ++i)
    if (c.policies[i].path.empty() || c.policies[i].path[0] != '/')
      return invalid_argument(fmt::format("policy[{}].path must start with '/'", i));
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "warning", "error", "err", "critical", "off"};
  if (std::find(std::begin(kLevels), std::end(kLevels), c.server.log_level) == std::end(kLevels))
    return invalid_argument(fmt::format("server.log_level '{}' must be one of trace, debug, info, warn, error, "
                                        "critical, off",
                                        c.server.log_level));
  for (size_t i = 0; i < c.tiers.size(); ++i) {
    auto& t = c.tiers[i];
    if (t.medium != "mem" && t.medium != "ssd" && t.medium != "hdd")
      return invalid_argument(fmt::format("tier[{}].medium must be mem, ssd or hdd", i));
    if (t.path.empty()) return invalid_argument(fmt::format("tier[{}].path is required", i));
    auto canon = [](const std::string& p) {
      std::error_code ec;
      auto c = std::filesystem::weakly_canonical(p, ec);
      std::string s = (ec ? std::filesystem::path(p).lexically_normal() : c).string();
      while (s.size() > 1 && s.back() == '/') s.pop_back();
      return s;
    };
    for (size_t j = 0; j < i; ++j)
      if (canon(c.tiers[j].path) == canon(t.path))
        return invalid_argument(fmt::format("tier[{}] and tier[{}] have the same directory '{}'", j, i, t.path));
  }
  if (c.cache.page_size < 4096 || c.cache.page_size > (1ull << 30))
    return invalid_argument("cache.page_size must be between 4KiB and 1GiB");
  if (c.cache.eviction != "lru" && c.cache.eviction != "lfu")
    return invalid_argument("cache.eviction must be \"lru\" or \"lfu\"");
  if (!(c.cache.low_watermark > 0 && c.cache.low_watermark <= c.cache.high_watermark && c.cache.high_watermark <= 1))
    return invalid_argument("cache watermarks must satisfy 0 < low_watermark <= high_watermark <= 1");
  if (c.cache.readahead_pages < 0 || c.cache.load_concurrency < 1)
    return invalid_argument("cache.readahead_pages must be >= 0 and cache.load_concurrency >= 1");
  // Zero here would refuse every request or spin a loop.
  if (c.server.io_threads < 1 || c.server.max_connections < 1)
    return invalid_argument("server.io_threads and server.max_connections must be at least 1");
  if (c.server.max_header_bytes < 1024) return invalid_argument("server.max_header_bytes must be at least 1KiB");
  if (c.server.header_timeout.count() <= 0 || c.server.idle_timeout.count() <= 0)
    return invalid_argument("server.header_timeout and server.idle_timeout must be more than 0");
  if (c.cache.ttl_check_interval.count() <= 0) return invalid_argument("cache.ttl_check_interval must be more than 0");
  if (c.server.tls_listen.size() && (c.server.tls_cert.empty() || c.server.tls_key.empty()))
    return invalid_argument("server.tls_listen needs server.tls_cert and server.tls_key");
  return ok_status();
}

std::string describe_config(const Config& c) {
  std::string s = fmt::format(
      "s3_listen={} admin_listen={} tls_listen={} data_dir={} threads={} io_threads={} "
      "durability={} max_connections={} access_key={}",
      c.server.s3_listen, c.server.admin_listen, c.server.tls_listen.empty() ? "off" : c.server.tls_listen,
      c.server.data_dir, c.server.threads, c.server.io_threads,
      c.server.durability == Durability::fsync ? "fsync" : "none", c.server.max_connections,
      c.auth.access_key);
  for (auto& t : c.tiers) s += fmt::format("\n  tier medium={} path={} quota={}", t.medium, t.path, t.quota);
  s += fmt::format("\n  cache page_size={} eviction={} watermarks={}/{} readahead_pages={} memory={} max_metadata_records={}",
                   c.cache.page_size, c.cache.eviction, c.cache.low_watermark, c.cache.high_watermark,
                   c.cache.readahead_pages, c.cache.memory, c.cache.max_metadata_records);
  for (auto& m : c.mounts)
    s += fmt::format(
        "\n  mount {} -> {} write_mode={} persist(concurrency={} max_ops_per_sec={} max_bytes_per_sec={} delay={}ms) on_full={}",
        m.path, m.ufs, write_mode_name(m.write_mode), m.persist.concurrency, m.persist.max_ops_per_sec,
        m.persist.max_bytes_per_sec, m.persist.delay.count(), m.on_full == OnFull::through ? "through" : "reject");
  for (auto& p : c.policies)
    s += fmt::format("\n  policy {} write_mode={} ttl={} ttl_action={} pin={} read_type={}", p.path,
                     p.write_mode ? write_mode_name(*p.write_mode) : "-",
                     p.ttl ? std::to_string(p.ttl->count()) + "ms" : "-",
                     p.ttl_action ? ttl_action_name(*p.ttl_action) : "-", p.pin ? (*p.pin ? "true" : "false") : "-",
                     p.read_type ? read_type_name(*p.read_type) : "-");
  return s;
}

}  // namespace reservoir
