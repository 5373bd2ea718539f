// Cache management: load, free, stat, runtime rules (pin, ttl) and TTL sweeps.
#include <nlohmann/json.hpp>

#include "common/guarded.h"
#include "common/json_text.h"
#include "common/log.h"
#include "common/workers.h"
#include "s3/engine.h"
#include "s3/errors.h"
#include "s3/names.h"

namespace reservoir::s3 {

using nlohmann::json;
using store::ObjectMeta;
using store::PersistState;

Status Engine::load(const std::string& bucket, const std::string& prefix, int concurrency, LoadProgress& p) {
  RETURN_IF_ERROR(bucket_exists(bucket));
  // The keys first (from the cache and the under store), then the fetches.
  std::vector<std::pair<std::string, uint64_t>> keys;
  ListRequest req;
  req.prefix = prefix;
  for (;;) {
    if (p.cancel) return aborted("the load was cancelled");
    auto page = list(bucket, req);
    if (!page.ok()) return page.status();
    for (auto& e : page->contents) {
      keys.emplace_back(e.key, e.size);
      p.objects_total++;
      p.bytes_total += e.size;
    }
    if (!page->truncated || page->contents.empty()) break;
    req.start_after = page->contents.back().key;
  }
  p.listed = true;
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < keys.size() && !p.cancel; i = next++) {
      const std::string& key = keys[i].first;
      uint64_t size = keys[i].second;
      Status st;
      bool ran = guarded("cache load", [&] {
        auto h = open_object(bucket, key);
        if (h.ok() && h->meta().page_size) {
          auto where = ns_.resolve(bucket, key);
          if (!where.ok()) st = where.status();
          else {
            PagedObject o{bucket, key, h->meta().version, h->meta().size, h->meta().page_size,
                          where->mount->store.get(), where->ufs_path, ReadType::cache, h->meta().etag};
            st = reads_->load(o).status();
          }
        } else if (!h.ok()) {
          st = h.status();
        }
      });
      if (!ran) st = internal_error("unexpected exception (logged)");
      if (st.ok()) {
        p.objects_done++;
        p.bytes_done += size;
      } else {
        p.errors++;
        std::lock_guard lk(p.mu);
        if (p.first_error.empty()) p.first_error = key + ": " + st.to_string();
      }
    }
  };
  std::vector<std::thread> threads;
  start_workers(threads, std::max(1, concurrency) - 1, work, "cache load");
  work();
  for (auto& t : threads) t.join();
  return p.cancel ? aborted("the load was cancelled") : ok_status();
}

Result<FreeResult> Engine::free(const std::string& bucket, const std::string& prefix) {
  RETURN_IF_ERROR(bucket_exists(bucket));
  std::vector<std::string> keys;
  RETURN_IF_ERROR(store_.scan_objects(bucket, prefix, "", [&](const std::string& k, const ObjectMeta& m) {
    if (!m.deleted) keys.push_back(k);
    return true;
  }));
  FreeResult out;
  for (auto& k : keys) {
    if (ns_.pinned(bucket, k)) {
      out.refused_pinned++;
      if (out.refused_keys.size() < 20) out.refused_keys.push_back(k + " (pinned)");
      continue;
    }
    auto n = store_.free_object(bucket, k, "free");
    if (n.ok()) {
      if (*n) out.objects++;
      out.bytes += *n;
    } else if (n.status().code() == Code::failed_precondition) {
      out.refused_dirty++;
      if (out.refused_keys.size() < 20) out.refused_keys.push_back(k + " (not persisted yet)");
    } else {
      return n.status();
    }
  }
  return out;
}

Result<std::string> Engine::stat(const std::string& bucket, const std::string& key) {
  RETURN_IF_ERROR(validate_key(key));
  RETURN_IF_ERROR(bucket_exists(bucket));
  auto where = ns_.resolve(bucket, key);
  if (!where.ok()) return where.status();
  const auto& pol = where->policy;
  json j{{"bucket", bucket}, {"key", key}, {"pinned", pol.pin}, {"write_mode", write_mode_name(pol.write_mode)},
         {"read_type", read_type_name(pol.read_type)}};
  if (pol.ttl) j["ttl"] = {{"ms", pol.ttl->count()}, {"action", ttl_action_name(pol.ttl_action)}};
  else j["ttl"] = nullptr;
  auto cur = store_.get(bucket, key);
  if (!cur.ok()) return cur.status();
  if (!cur.value() || cur.value()->deleted) {
    j["cached"] = false;
    j["cached_bytes"] = 0;
    j["state"] = cur.value() ? "deleted (tombstone)" : "not cached";
    if (!cur.value() && where->mount->store->check_path(where->ufs_path).ok()) {
      auto info = where->mount->store->head(where->ufs_path);
      j["in_under_store"] = info.ok();
      if (info.ok()) j["size"] = info->size;
    }
    return json_text(j) + "\n";
  }
  const ObjectMeta& m = *cur.value();
  j["size"] = m.size;
  j["etag"] = m.etag;
  j["state"] = persist_state_name(m.state);
  j["mtime_ms"] = m.mtime_ms;
  j["version"] = m.version;
  if (!m.park_reason.empty()) j["park_reason"] = m.park_reason;
  std::map<int, uint64_t> per_tier;
  uint64_t cached_bytes = 0;
  if (m.page_size) {
    auto pages = store_.list_pages(bucket, key, m.version);
    if (!pages.ok()) return pages.status();
    uint64_t total = (m.size + m.page_size - 1) / m.page_size;
    j["page_size"] = m.page_size;
    j["pages_total"] = total;
    j["pages_cached"] = pages->size();
    for (auto& [n, seg] : *pages) {
      per_tier[seg.tier] += seg.size;
      cached_bytes += seg.size;
    }
    j["checked_ms"] = m.checked_ms;
  } else {
    for (auto& s : m.segments) {
      per_tier[s.tier] += s.size;
      cached_bytes += s.size;
    }
    j["pages_total"] = nullptr;
  }
  j["cached"] = m.size == 0 || cached_bytes == m.size;
  j["cached_bytes"] = cached_bytes;
  auto usage = store_.space().usage();
  json tiers = json::array();
  for (auto& [t, bytes] : per_tier)
    tiers.push_back({{"tier", t}, {"medium", usage[static_cast<size_t>(t)].medium}, {"bytes", bytes}});
  j["tiers"] = tiers;
  return json_text(j) + "\n";
}

namespace {

json rule_to_json(const PolicyConfig& p) {
  json j = json::object();
  if (p.pin) j["pin"] = *p.pin;
  if (p.ttl) j["ttl_ms"] = p.ttl->count();
  if (p.ttl_action) j["ttl_action"] = ttl_action_name(*p.ttl_action);
  if (p.read_type) j["read_type"] = read_type_name(*p.read_type);
  return j;
}

Result<PolicyConfig> rule_from_json(const std::string& path, const std::string& text) {
  try {
    json j = json::parse(text);
    PolicyConfig p;
    p.path = path;
    if (j.contains("pin")) p.pin = j["pin"].get<bool>();
    if (j.contains("ttl_ms")) p.ttl = std::chrono::milliseconds(j["ttl_ms"].get<int64_t>());
    if (j.contains("ttl_action")) {
      auto a = parse_ttl_action(j["ttl_action"].get<std::string>());
      if (a.ok()) p.ttl_action = *a;
    }
    if (j.contains("read_type")) {
      auto r = parse_read_type(j["read_type"].get<std::string>());
      if (r.ok()) p.read_type = *r;
    }
    return p;
  } catch (const std::exception& e) {
    return internal_error(std::string("corrupt rule record: ") + e.what());
  }
}

}  // namespace

Status Engine::load_rules() {
  auto rules = store_.list_rules();
  if (!rules.ok()) return rules.status();
  std::vector<PolicyConfig> out;
  for (auto& [path, text] : *rules) {
    auto p = rule_from_json(path, text);
    if (!p.ok()) return p.status();
    out.push_back(*p);
  }
  ns_.set_runtime_rules(std::move(out));
  return ok_status();
}

Status Engine::set_rule(const PolicyConfig& patch) {
  if (!valid_utf8(patch.path)) return invalid_argument("the prefix of a rule must be UTF-8");
  static std::mutex mu;  // read-modify-write of the rule set
  std::lock_guard lk(mu);
  auto rules = ns_.runtime_rules();
  PolicyConfig* r = nullptr;
  for (auto& x : rules)
    if (x.path == patch.path) r = &x;
  if (!r) {
    rules.push_back(PolicyConfig{});
    r = &rules.back();
    r->path = patch.path;
  }
  if (patch.pin) r->pin = patch.pin;
  if (patch.ttl) r->ttl = patch.ttl->count() > 0 ? patch.ttl : std::nullopt;
  if (patch.ttl_action) r->ttl_action = patch.ttl_action;
  if (patch.read_type) r->read_type = patch.read_type;
  json j = rule_to_json(*r);
  if (j.empty()) RETURN_IF_ERROR(store_.delete_rule(r->path));
  else RETURN_IF_ERROR(store_.put_rule(r->path, json_text(j)));
  ns_.set_runtime_rules(std::move(rules));
  return ok_status();
}

uint64_t Engine::apply_ttls() {
  // Nothing to do (and no scan) unless some path has a TTL.
  bool any = false;
  for (auto& p : config_.policies) any = any || p.ttl.has_value();
  for (auto& p : ns_.runtime_rules()) any = any || p.ttl.has_value();
  if (!any) return 0;
  auto buckets = store_.list_buckets();
  if (!buckets.ok()) return 0;
  std::vector<std::string> names;
  for (auto& [b, t] : *buckets) names.push_back(b);
  for (auto& b : ns_.mount_buckets()) names.push_back(b);
  uint64_t acted = 0;
  int64_t now = store::now_ms();
  for (auto& b : names) {
    struct Due {
      std::string key;
      ObjectMeta meta;
      TtlAction action;
    };
    std::vector<Due> due;
    (void)store_.scan_objects(b, "", "", [&](const std::string& k, const ObjectMeta& m) {
      if (m.deleted) return true;
      auto where = ns_.resolve(b, k);
      if (!where.ok() || !where->policy.ttl) return true;
      bool stamped = m.expires_at_ms && m.expires_at_ms <= now;  // written under a delete TTL
      if (stamped || m.mtime_ms + where->policy.ttl->count() <= now)
        due.push_back({k, m, stamped ? TtlAction::del : where->policy.ttl_action});
      return true;
    });
    for (auto& d : due) {
      if (d.action == TtlAction::del) {
        expire(b, d.key, d.meta);
        ++acted;
      } else if (d.meta.state == PersistState::persisted) {
        auto n = store_.free_object(b, d.key, "ttl", d.meta.version);
        if (n.ok() && *n) ++acted;
      }
    }
  }
  return acted;
}

void Engine::start_maintenance() {
  if (maint_.joinable()) return;
  maint_ = std::thread([this] {
    std::unique_lock lk(maint_mu_);
    while (!maint_stop_) {
      maint_cv_.wait_for(lk, config_.cache.ttl_check_interval);
      if (maint_stop_) break;
      lk.unlock();
      guarded("path TTLs", [this] {
        uint64_t n = apply_ttls();
        if (n) LOG_INFO("path TTLs: {} objects freed or deleted", n);
      });
      lk.lock();
    }
  });
}

void Engine::stop_maintenance() {
  {
    std::lock_guard lk(maint_mu_);
    maint_stop_ = true;
  }
  maint_cv_.notify_all();
  if (maint_.joinable()) maint_.join();
}

}  // namespace reservoir::s3
