#include "net/tls_certificates.h"

#include <sys/stat.h>

namespace gh::net {

TlsCertificates::TlsCertificates(TlsServerOptions opts, std::shared_ptr<const TlsServerContext> first)
    : current_(std::move(first)), opts_(std::move(opts)), seen_(identify(opts_)) {}

std::shared_ptr<const TlsServerContext> TlsCertificates::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

bool TlsCertificates::reload(const TlsServerOptions& opts, std::string& error) {
  // Identify before loading: a file replaced during the load is then seen as changed next time.
  auto ids = identify(opts);
  auto fresh = TlsServerContext::load(opts, error);
  seen_ = std::move(ids);
  if (!fresh) return false;
  opts_ = opts;
  std::lock_guard lock(mu_);
  current_ = std::move(fresh);
  return true;
}

void TlsCertificates::install(const TlsServerOptions& opts, std::shared_ptr<const TlsServerContext> ctx) {
  seen_ = identify(opts);
  opts_ = opts;
  std::lock_guard lock(mu_);
  current_ = std::move(ctx);
}

bool TlsCertificates::changed() const { return identify(opts_) != seen_; }

std::vector<TlsCertificates::FileId> TlsCertificates::identify(const TlsServerOptions& opts) {
  std::vector<FileId> out;
  auto add = [&](const std::string& path) {
    FileId id;
    struct stat st {};
    if (!path.empty() && ::stat(path.c_str(), &st) == 0) {  // stat follows symlinks to the file served
      id.dev = static_cast<unsigned long>(st.st_dev);
      id.ino = static_cast<unsigned long>(st.st_ino);
      id.size = static_cast<long>(st.st_size);
      id.mtime_ns = static_cast<long>(st.st_mtim.tv_sec) * 1'000'000'000L + st.st_mtim.tv_nsec;
    }
    out.push_back(id);
  };
  for (const auto& c : opts.certificates) {
    add(c.cert);
    add(c.key);
  }
  add(opts.client_ca);
  return out;
}

}  // namespace gh::net
