// TlsCertificates: one TLS listener's current TlsServerContext, replaced when its files change
// (SPEC §7: a renewed file, or a swapped symlink as Kubernetes mounts do, serves new handshakes
// within `reload_check`; a broken new pair keeps the old one serving) or when a reload brings
// new settings.
// Thread: current() is called by every worker at each accept; reload() and changed() by the
// control thread. A mutex guards the pointer (one lock per new connection, not per request).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "net/tls.h"

namespace gh::net {

class TlsCertificates {
 public:
  // REQUIRES: `first` was loaded from `opts`.
  TlsCertificates(TlsServerOptions opts, std::shared_ptr<const TlsServerContext> first);

  std::shared_ptr<const TlsServerContext> current() const;

  // Loads `opts` (new settings from a reload, or the same ones to re-read the files): the new
  // context serves from now on. On failure the old one stays, and `error` says why.
  bool reload(const TlsServerOptions& opts, std::string& error);
  // Serves `ctx`, already loaded from `opts`, from now on.
  void install(const TlsServerOptions& opts, std::shared_ptr<const TlsServerContext> ctx);
  // Whether a file (certificate, key or client_ca) differs from what the last reload attempt
  // read: its target (a symlink followed), inode, size or modification time.
  bool changed() const;
  const TlsServerOptions& options() const noexcept { return opts_; }

 private:
  struct FileId {
    unsigned long dev = 0, ino = 0;
    long size = -1;
    long mtime_ns = 0;
    bool operator==(const FileId&) const = default;
  };
  static std::vector<FileId> identify(const TlsServerOptions& opts);

  mutable std::mutex mu_;
  std::shared_ptr<const TlsServerContext> current_;
  TlsServerOptions opts_;
  std::vector<FileId> seen_;  // the files as the last attempt found them
};

}  // namespace gh::net
