// The local-directory under store (file://): each object is a file at its
// natural path (<root>/<bucket>/<key>); content type, headers, user metadata,
// tags and ETag live in a JSON sidecar at <root>/.reservoir-meta/<bucket>/<key>.
// Writes go to <root>/.reservoir-tmp and are renamed into place after fsync.
#pragma once

#include <memory>
#include <string>

#include "ufs/ufs.h"

namespace reservoir::ufs {

Result<std::unique_ptr<UnderStore>> make_local_ufs(const std::string& root_dir);

}  // namespace reservoir::ufs
