#include "harness/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace gh::integ {

namespace {

std::string openssl_error() {
  char buf[256];
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

void write_atomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << content;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot write " + path);
}

std::string pem_cert(X509* x) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return out;
}

std::string pem_key(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return out;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) throw std::runtime_error("bad extension " + value + ": " + openssl_error());
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, bool ca, const CertSpec& spec) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x), static_cast<long>(spec.valid_from_days) * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x), static_cast<long>(spec.valid_to_days) * 86400);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(x, key);
  X509* iss = issuer ? issuer : x;
  if (ca) {
    add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x, iss, NID_basic_constraints, "CA:FALSE");
    add_ext(x, iss, NID_ext_key_usage, "serverAuth,clientAuth");
    std::string san;
    for (const auto& d : spec.dns) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
    for (const auto& i : spec.ips) san += (san.empty() ? "" : ",") + std::string("IP:") + i;
    if (!san.empty()) add_ext(x, iss, NID_subject_alt_name, san);
  }
  X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
  return x;
}

std::vector<std::string> names_of(X509* x) {
  std::vector<std::string> out;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS)
        out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                         static_cast<std::size_t>(ASN1_STRING_length(g->d.dNSName)));
    }
    GENERAL_NAMES_free(sans);
  }
  if (out.empty()) {
    char cn[256] = {0};
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    out.emplace_back(cn);
  }
  return out;
}

// The harness's connect_to leaves its socket non-blocking; OpenSSL is driven blocking here.
void make_blocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

void set_timeouts(int fd, Millis t) {
  timeval tv{};
  auto ms = std::max<long>(1, static_cast<long>(t.count()));
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Millis left(Clock::time_point deadline) {
  return std::chrono::duration_cast<Millis>(deadline - Clock::now());
}

}  // namespace

// ---- Pki --------------------------------------------------------------------------------------

Pki::Pki(std::string dir, std::string name) : dir_(std::move(dir)) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  CertSpec spec;
  spec.valid_to_days = 365;
  X509* cert = make_cert(key, "gatehouse test CA " + name, nullptr, nullptr, true, spec);
  ca_key_ = key;
  ca_cert_ = cert;
  ca_file_ = dir_ + "/" + name + ".pem";
  write_atomically(ca_file_, pem_cert(cert));
}

Pki::~Pki() {
  X509_free(static_cast<X509*>(ca_cert_));
  EVP_PKEY_free(static_cast<EVP_PKEY*>(ca_key_));
}

CertFiles Pki::issue(const std::string& name, const CertSpec& spec) const {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = spec.self_signed ? make_cert(key, spec.cn, nullptr, nullptr, false, spec)
                                : make_cert(key, spec.cn, static_cast<X509*>(ca_cert_),
                                            static_cast<EVP_PKEY*>(ca_key_), false, spec);
  CertFiles f{dir_ + "/" + name + ".pem", dir_ + "/" + name + ".key"};
  write_atomically(f.key, pem_key(key));
  write_atomically(f.cert, pem_cert(cert));
  X509_free(cert);
  EVP_PKEY_free(key);
  return f;
}

// ---- TlsClient --------------------------------------------------------------------------------

TlsClient::TlsClient(int port, const TlsOptions& opts, Millis timeout) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ctx_ = ctx;
  if (opts.min_version != 0 && opts.min_version < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx, 0);
  if (opts.min_version) SSL_CTX_set_min_proto_version(ctx, opts.min_version);
  if (opts.max_version) SSL_CTX_set_max_proto_version(ctx, opts.max_version);
  if (opts.max_version != 0 && opts.max_version < TLS1_2_VERSION) {
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
  }
  // No client session cache: with one, a TLS 1.3 ticket received marks the session it replaces
  // not resumable, and a test resumes one session many times.
  if (!opts.ca_file.empty()) {
    SSL_CTX_load_verify_locations(ctx, opts.ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  if (!opts.client.cert.empty()) {
    SSL_CTX_use_certificate_chain_file(ctx, opts.client.cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx, opts.client.key.c_str(), SSL_FILETYPE_PEM);
  }
  if (!opts.alpn.empty()) {
    std::string wire;
    for (const auto& p : opts.alpn) {
      wire.push_back(static_cast<char>(p.size()));
      wire += p;
    }
    SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
  }
  fd_ = connect_to(port, timeout);
  if (fd_ < 0) {
    error_ = "cannot connect";
    return;
  }
  make_blocking(fd_);
  set_timeouts(fd_, timeout);
  ssl_ = SSL_new(ctx);
  SSL_set_fd(ssl_, fd_);
  if (!opts.sni.empty()) SSL_set_tlsext_host_name(ssl_, opts.sni.c_str());
  if (!opts.verify_name.empty()) SSL_set1_host(ssl_, opts.verify_name.c_str());
  if (opts.session) SSL_set_session(ssl_, opts.session.get());
  ERR_clear_error();
  if (SSL_connect(ssl_) != 1) {
    error_ = openssl_error();
    long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) error_ += std::string(" (") + X509_verify_cert_error_string(v) + ")";
    return;
  }
  ok_ = true;
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  if (p) alpn_.assign(reinterpret_cast<const char*>(p), len);
  version_ = SSL_get_version(ssl_);
  resumed_ = SSL_session_reused(ssl_) == 1;
  if (X509* peer = SSL_get1_peer_certificate(ssl_)) {
    peer_names_ = names_of(peer);
    X509_free(peer);
  }
}

TlsClient::~TlsClient() {
  if (ssl_ && ok_ && !eof_) {
    set_timeouts(fd_, 200ms);
    SSL_shutdown(ssl_);  // a session not shut down cleanly would not be resumable
  }
  ERR_clear_error();
  if (ssl_) SSL_free(ssl_);
  if (fd_ >= 0) ::close(fd_);
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

void TlsClient::drop() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  eof_ = true;  // no close_notify from the destructor either
}

SessionPtr TlsClient::session() const {
  if (!ssl_) return nullptr;
  SSL_SESSION* s = SSL_get1_session(ssl_);
  if (!s) return nullptr;
  return SessionPtr(s, SSL_SESSION_free);
}

bool TlsClient::send(std::string_view bytes, Millis timeout) {
  if (!ok_) return false;
  set_timeouts(fd_, timeout);
  while (!bytes.empty()) {
    std::size_t n = 0;
    if (SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n) != 1) return false;
    bytes.remove_prefix(n);
  }
  return true;
}

bool TlsClient::fill(Clock::time_point deadline) {
  Millis l = left(deadline);
  if (l.count() <= 0) return false;
  set_timeouts(fd_, l);
  char buf[16384];
  std::size_t n = 0;
  ERR_clear_error();
  if (SSL_read_ex(ssl_, buf, sizeof buf, &n) == 1) {
    buf_.append(buf, n);
    return true;
  }
  int err = SSL_get_error(ssl_, 0);
  ERR_clear_error();
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Clock::now() < deadline;
  close_notify_ = err == SSL_ERROR_ZERO_RETURN;
  eof_ = true;
  return true;
}

std::optional<Response> TlsClient::read_response(Millis timeout, bool head_request) {
  if (!ok_) return std::nullopt;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    Response r;
    std::size_t consumed = 0;
    Parse p = parse_response(buf_, eof_, head_request, r, consumed);
    if (p == Parse::Done) {
      buf_.erase(0, consumed);
      if (r.status >= 100 && r.status < 200 && r.status != 101) continue;
      return r;
    }
    if (p == Parse::Invalid || eof_) return std::nullopt;
    if (!fill(deadline)) return std::nullopt;
  }
}

bool TlsClient::wait_for(std::string_view needle, Millis timeout) {
  if (!ok_) return false;
  auto deadline = Clock::now() + timeout;
  while (buf_.find(needle) == std::string::npos) {
    if (eof_ || !fill(deadline)) return false;
  }
  return true;
}

bool TlsClient::wait_closed(Millis timeout) {
  if (!ok_) return true;
  auto deadline = Clock::now() + timeout;
  while (!eof_)
    if (!fill(deadline)) return false;
  return true;
}

Response tls_get(int port, std::string_view target, const TlsOptions& opts, const Headers& extra, std::string* error) {
  TlsClient c(port, opts);
  if (!c.ok()) {
    if (error) *error = c.error();
    return {};
  }
  if (!c.send(make_request("GET", target, extra))) {
    if (error) *error = "send failed";
    return {};
  }
  auto r = c.read_response();
  if (!r) {
    if (error) *error = "no response";
    return {};
  }
  return *r;
}

// ---- TlsUpstream ------------------------------------------------------------------------------

TlsUpstream::TlsUpstream(int backend_port, CertFiles cert, std::string client_ca) : backend_(backend_port) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  ctx_ = ctx;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, cert.key.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("TlsUpstream: " + openssl_error());
  if (!client_ca.empty()) {
    SSL_CTX_load_verify_locations(ctx, client_ca.c_str(), nullptr);
    SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(client_ca.c_str()));
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 128) != 0)
    throw std::runtime_error("TlsUpstream: cannot listen");
  socklen_t len = sizeof a;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TlsUpstream::~TlsUpstream() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& t : conns_)
    if (t.joinable()) t.join();
  SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

std::vector<std::string> TlsUpstream::client_subjects() const {
  std::lock_guard lock(mu_);
  return subjects_;
}

std::string TlsUpstream::last_sni() const {
  std::lock_guard lock(mu_);
  return last_sni_;
}

void TlsUpstream::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    conns_.emplace_back([this, fd] { serve(fd); });
  }
}

void TlsUpstream::serve(int fd) {
  set_timeouts(fd, 3s);
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(ctx_));
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) != 1) {
    ++failed_;
    ERR_clear_error();
    SSL_free(ssl);
    ::close(fd);
    return;
  }
  ++handshakes_;
  {
    std::lock_guard lock(mu_);
    const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    last_sni_ = sni ? sni : "";
    if (X509* peer = SSL_get1_peer_certificate(ssl)) {
      char cn[256] = {0};
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
      subjects_.emplace_back(cn);
      X509_free(peer);
    }
  }
  int back = connect_to(backend_, 2s);
  if (back < 0) {
    SSL_free(ssl);
    ::close(fd);
    return;
  }
  make_blocking(back);
  set_timeouts(fd, 20ms);  // SSL_read below returns WANT_READ when nothing came in time
  char buf[16384];
  bool open = true;
  while (open && !stopping_) {
    // Client to service: whatever OpenSSL has or can read now.
    for (;;) {
      std::size_t n = 0;
      if (SSL_read_ex(ssl, buf, sizeof buf, &n) == 1) {
        if (::send(back, buf, n, MSG_NOSIGNAL) < 0) open = false;
        continue;
      }
      int err = SSL_get_error(ssl, 0);
      ERR_clear_error();
      if (err != SSL_ERROR_WANT_READ) open = false;
      break;
    }
    if (!open) break;
    // Service to client.
    pollfd p{back, POLLIN, 0};
    if (::poll(&p, 1, 5) > 0) {
      ssize_t n = ::recv(back, buf, sizeof buf, 0);
      if (n <= 0) break;
      std::size_t w = 0;
      if (SSL_write_ex(ssl, buf, static_cast<std::size_t>(n), &w) != 1) break;
    }
  }
  SSL_shutdown(ssl);
  SSL_free(ssl);
  ::close(back);
  ::close(fd);
}

}  // namespace gh::integ
