#include "s3/key_locks.h"

namespace reservoir::s3 {

KeyLocks::Guard::Guard(KeyLocks* owner, std::string key, std::atomic<uint64_t>* changes)
    : owner_(owner), key_(std::move(key)), changes_(changes) {
  {
    std::lock_guard lk(owner_->mu_);
    Entry& e = owner_->map_[key_];
    ++e.users;
    mu_ = e.mu;
  }
  mu_->lock();
}

KeyLocks::Guard::~Guard() {
  if (changes_) changes_->fetch_add(1);
  mu_->unlock();
  std::lock_guard lk(owner_->mu_);
  auto it = owner_->map_.find(key_);
  if (it != owner_->map_.end() && --it->second.users == 0) owner_->map_.erase(it);
}

size_t KeyLocks::size() const {
  std::lock_guard lk(mu_);
  return map_.size();
}

}  // namespace reservoir::s3
