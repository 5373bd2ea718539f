#include "s3/key_locks.h"

namespace reservoir::s3 {

KeyLocks::Guard::Guard(KeyLocks* owner, std::string key) : owner_(owner), key_(std::move(key)) {
  {
    std::lock_guard lk(owner_->mu_);
    Entry& e = owner_->map_[key_];
    ++e.users;
    mu_ = e.mu;
  }
  mu_->lock();
}

KeyLocks::Guard::~Guard() {
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
