// The admin API on its own port: health, Prometheus metrics, persistence
// status, the persistence barrier, retry of parked objects, and the cache
// operations of CacheAdmin (load, free, pin, ttl, stat). Everything but
// /health and /metrics needs "Authorization: Bearer <secret_key>".
#pragma once

#include "admin/cache_api.h"
#include "common/config.h"
#include "http/io.h"
#include "s3/engine.h"

namespace reservoir::admin {

// Returns the handler; references must outlive it.
http::Handler make_admin_handler(s3::Engine& engine, const Config& config, boost::asio::thread_pool& pool,
                                 CacheAdmin& cache);

}  // namespace reservoir::admin
