#include "ns/namespace.h"

#include <algorithm>
#include <mutex>

#include <fmt/format.h>

namespace reservoir::ns {

Namespace::Namespace(std::vector<std::unique_ptr<Mount>> mounts, std::vector<PolicyConfig> policies)
    : mounts_(std::move(mounts)), policies_(std::move(policies)) {
  for (size_t i = 0; i < mounts_.size(); ++i) mounts_[i]->id = static_cast<int>(i);
}

Result<std::unique_ptr<Namespace>> Namespace::create(const Config& config) {
  std::vector<std::unique_ptr<Mount>> mounts;
  for (auto& mc : config.mounts) {
    auto store = ufs::open_under_store(mc);
    if (!store.ok())
      return Status(store.status().code(), fmt::format("mount {}: {}", mc.path, store.status().message()));
    auto m = std::make_unique<Mount>();
    m->config = mc;
    m->store = std::move(store.value());
    mounts.push_back(std::move(m));
  }
  return std::make_unique<Namespace>(std::move(mounts), config.policies);
}

Mount* Namespace::root() const {
  for (auto& m : mounts_)
    if (m->is_root()) return m.get();
  return nullptr;
}

Result<Resolved> Namespace::resolve_bucket(const std::string& bucket) const {
  for (auto& m : mounts_)
    if (!m->is_root() && m->config.path.compare(1, std::string::npos, bucket) == 0) {
      Resolved r;
      r.mount = m.get();
      r.policy.write_mode = m->config.write_mode;
      r.policy.metadata_ttl = m->config.metadata_ttl;
      return r;
    }
  if (Mount* r = root()) {
    Resolved res;
    res.mount = r;
    res.ufs_path = bucket;
    res.policy.write_mode = r->config.write_mode;
    res.policy.metadata_ttl = r->config.metadata_ttl;
    return res;
  }
  return not_found("no mount serves bucket " + bucket);
}

Result<Resolved> Namespace::resolve(const std::string& bucket, const std::string& key) const {
  auto r = resolve_bucket(bucket);
  if (!r.ok()) return r.status();
  Resolved res = std::move(r.value());
  res.ufs_path = res.mount->is_root() ? bucket + "/" + key : key;
  std::string full = "/" + bucket + "/" + key;
  // Every matching policy, shortest path first (runtime rules after the
  // configuration's at equal length): longer paths override field by field.
  std::vector<const PolicyConfig*> hits;
  for (auto& p : policies_)
    if (full.compare(0, p.path.size(), p.path) == 0) hits.push_back(&p);
  std::shared_lock lk(rules_mu_);
  for (auto& p : runtime_)
    if (full.compare(0, p.path.size(), p.path) == 0) hits.push_back(&p);
  std::stable_sort(hits.begin(), hits.end(), [](auto* a, auto* b) { return a->path.size() < b->path.size(); });
  for (auto* p : hits) {
    if (p->write_mode) res.policy.write_mode = *p->write_mode;
    if (p->ttl) res.policy.ttl = *p->ttl;
    if (p->ttl_action) res.policy.ttl_action = *p->ttl_action;
    if (p->pin) res.policy.pin = *p->pin;
    if (p->read_type) res.policy.read_type = *p->read_type;
  }
  return res;
}

void Namespace::set_runtime_rules(std::vector<PolicyConfig> rules) {
  std::unique_lock lk(rules_mu_);
  runtime_ = std::move(rules);
}

std::vector<PolicyConfig> Namespace::runtime_rules() const {
  std::shared_lock lk(rules_mu_);
  return runtime_;
}

bool Namespace::pinned(const std::string& bucket, const std::string& key) const {
  auto r = resolve(bucket, key);
  return r.ok() && r->policy.pin;
}

std::vector<std::string> Namespace::mount_buckets() const {
  std::vector<std::string> out;
  for (auto& m : mounts_)
    if (!m->is_root()) out.push_back(m->config.path.substr(1));
  return out;
}

}  // namespace reservoir::ns
