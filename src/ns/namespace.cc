#include "ns/namespace.h"

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
      return r;
    }
  if (Mount* r = root()) {
    Resolved res;
    res.mount = r;
    res.ufs_path = bucket;
    res.policy.write_mode = r->config.write_mode;
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
  size_t best = 0;
  for (auto& p : policies_) {
    if (full.compare(0, p.path.size(), p.path) == 0 && p.path.size() >= best) {
      best = p.path.size();
      if (p.write_mode) res.policy.write_mode = *p.write_mode;
      if (p.ttl) res.policy.ttl = p.ttl;
    }
  }
  return res;
}

std::vector<std::string> Namespace::mount_buckets() const {
  std::vector<std::string> out;
  for (auto& m : mounts_)
    if (!m->is_root()) out.push_back(m->config.path.substr(1));
  return out;
}

}  // namespace reservoir::ns
