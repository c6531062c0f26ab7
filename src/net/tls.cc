#include "net/tls.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

namespace gh::net {

namespace {

// Mozilla's "intermediate" profile for TLS 1.2: ECDHE key exchange and AEAD ciphers only;
// TLS 1.3 keeps OpenSSL's suites.
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";
constexpr unsigned char kSessionIdContext[] = "gatehouse";

class TlsCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int ev) const override {
    char buf[256];
    ERR_error_string_n(static_cast<unsigned long>(static_cast<unsigned>(ev)), buf, sizeof buf);
    // "error:0A000086:SSL routines::certificate verify failed": keep the reason.
    std::string_view s(buf);
    if (auto p = s.rfind(':'); p != std::string_view::npos && p + 1 < s.size()) return std::string(s.substr(p + 1));
    return std::string(s);
  }
};

// OpenSSL's most recent error as text, clearing the queue: "" when there is none.
std::string openssl_reason() {
  unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return {};
  return tls_category().message(static_cast<int>(e));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_ip_literal(std::string_view host) {
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned char buf[16];
  return ::inet_pton(AF_INET, h.c_str(), buf) == 1 || ::inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

// ---- ticket keys --------------------------------------------------------------------------------

struct TicketKey {
  std::array<unsigned char, 16> name{};
  std::array<unsigned char, 32> aes{};
  std::array<unsigned char, 32> hmac{};
};

class TicketKeys {
 public:
  // Fills `out` with the key to encrypt with now (rotating when due).
  void current(TicketKey& out) {
    std::lock_guard lock(mu_);
    rotate_if_due();
    out = current_;
  }
  // The key a ticket names: 1 = the current one, 2 = the previous one (renew the ticket), 0 = none.
  int find(const unsigned char* name, TicketKey& out) {
    std::lock_guard lock(mu_);
    rotate_if_due();
    if (std::memcmp(name, current_.name.data(), current_.name.size()) == 0) {
      out = current_;
      return 1;
    }
    if (has_previous_ && std::memcmp(name, previous_.name.data(), previous_.name.size()) == 0) {
      out = previous_;
      return 2;
    }
    return 0;
  }
  void rotate_now() {
    std::lock_guard lock(mu_);
    rotate();
  }

 private:
  void rotate_if_due() {
    auto now = std::chrono::steady_clock::now();
    if (!made_ || now - made_at_ >= kTicketKeyLifetime) rotate();
  }
  void rotate() {
    if (made_) {
      previous_ = current_;
      has_previous_ = true;
    }
    RAND_bytes(current_.name.data(), static_cast<int>(current_.name.size()));
    RAND_bytes(current_.aes.data(), static_cast<int>(current_.aes.size()));
    RAND_bytes(current_.hmac.data(), static_cast<int>(current_.hmac.size()));
    made_ = true;
    made_at_ = std::chrono::steady_clock::now();
  }

  std::mutex mu_;
  TicketKey current_, previous_;
  bool made_ = false;
  bool has_previous_ = false;
  std::chrono::steady_clock::time_point made_at_;
};

TicketKeys& ticket_keys() {
  static TicketKeys keys;
  return keys;
}

bool init_ticket_mac(EVP_MAC_CTX* hctx, TicketKey& key) {
  char digest[] = "sha256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
                         OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

// The ticket cipher, fetched from the provider once: a legacy EVP_aes_256_cbc() would be looked
// up by name again on every ticket made or opened.
const EVP_CIPHER* ticket_cipher() {
  static const EVP_CIPHER* cipher = [] {
    const EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
    return c ? c : EVP_aes_256_cbc();
  }();
  return cipher;
}

int ticket_key_cb(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cctx, EVP_MAC_CTX* hctx,
                  int enc) {
  TicketKey key;
  if (enc) {
    ticket_keys().current(key);
    std::memcpy(key_name, key.name.data(), key.name.size());
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(ticket_cipher())) != 1) return -1;
    if (EVP_EncryptInit_ex(cctx, ticket_cipher(), nullptr, key.aes.data(), iv) != 1) return -1;
    return init_ticket_mac(hctx, key) ? 1 : -1;
  }
  int found = ticket_keys().find(key_name, key);
  if (found == 0) return 0;  // unknown or expired key: a full handshake
  if (EVP_DecryptInit_ex(cctx, ticket_cipher(), nullptr, key.aes.data(), iv) != 1) return -1;
  if (!init_ticket_mac(hctx, key)) return -1;
  // 2 = renew: a ticket made with the previous key, and every TLS 1.3 resumption (clients use
  // a TLS 1.3 ticket once, RFC 8446 appendix C.4, so each resumption must leave them a new one).
  return SSL_version(ssl) == TLS1_3_VERSION ? 2 : found;
}

// ---- certificates -------------------------------------------------------------------------------

std::vector<std::string> certificate_names(X509* x) {
  std::vector<std::string> out;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type != GEN_DNS) continue;
      const ASN1_STRING* s = g->d.dNSName;
      out.push_back(lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                           static_cast<std::size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (out.empty()) {  // no DNS SAN: the subject's CN, as older certificates carry it
    X509_NAME* subject = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
      const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
      out.push_back(lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                           static_cast<std::size_t>(ASN1_STRING_length(s)))));
    }
  }
  return out;
}

// The server name a ClientHello carries, from its server_name extension ("" when absent).
std::string_view hello_server_name(SSL* s) {
  const unsigned char* p = nullptr;
  std::size_t len = 0;
  if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_server_name, &p, &len) != 1) return {};
  return parse_server_name(p, len);
}

}  // namespace

std::string_view parse_server_name(const unsigned char* p, std::size_t len) noexcept {
  if (p == nullptr || len < 5) return {};
  // ServerNameList: u16 length, then entries of u8 type, u16 length, name (RFC 6066 §3).
  std::size_t list = (std::size_t(p[0]) << 8) | p[1];
  if (list + 2 != len) return {};
  p += 2;
  len -= 2;
  while (len >= 3) {
    unsigned type = p[0];
    std::size_t n = (std::size_t(p[1]) << 8) | p[2];
    if (n + 3 > len) return {};
    if (type == 0 /* host_name */) {
      std::string_view name(reinterpret_cast<const char*>(p + 3), n);
      // A host name is printable ASCII without NUL; anything else picks no certificate.
      for (char c : name)
        if (c <= 0x20 || c >= 0x7f) return {};
      return name;
    }
    p += n + 3;
    len -= n + 3;
  }
  return {};
}

const boost::system::error_category& tls_category() noexcept {
  static const TlsCategory category;
  return category;
}

bool tls_name_matches(std::string_view pattern, std::string_view name) noexcept {
  auto eq = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      char x = a[i], y = b[i];
      if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
      if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
      if (x != y) return false;
    }
    return true;
  };
  if (pattern.starts_with("*.")) {
    std::string_view rest = pattern.substr(1);  // ".example.com"
    auto dot = name.find('.');
    if (dot == std::string_view::npos || dot == 0) return false;  // "*" stands for exactly one label
    return eq(name.substr(dot), rest);
  }
  return eq(pattern, name);
}

void rotate_ticket_keys_for_test() { ticket_keys().rotate_now(); }

// ---- session --------------------------------------------------------------------------------------

// The BIO under every session: reads serve what the Stream lent or kept, then (when allowed)
// receive from the socket; writes send at once. Like OpenSSL's socket BIO otherwise: a would-
// block is a retry, EOF is remembered for BIO_eof (which SSL_OP_IGNORE_UNEXPECTED_EOF reads).
struct TlsBio {
  static TlsSession& of(BIO* b) { return *static_cast<TlsSession*>(BIO_get_data(b)); }

  static int read(BIO* b, char* out, std::size_t len, std::size_t* got) {
    TlsSession& s = of(b);
    BIO_clear_retry_flags(b);
    *got = 0;
    if (s.rest_at_ < s.rest_.size()) {
      std::size_t n = std::min(len, s.rest_.size() - s.rest_at_);
      std::memcpy(out, s.rest_.data() + s.rest_at_, n);
      s.rest_at_ += n;
      if (s.rest_at_ == s.rest_.size()) {
        s.rest_ = std::string();  // no capacity kept while idle
        s.rest_at_ = 0;
      }
      *got = n;
      return 1;
    }
    if (s.lent_len_ > 0) {
      std::size_t n = std::min(len, s.lent_len_);
      std::memcpy(out, s.lent_, n);
      s.lent_ += n;
      s.lent_len_ -= n;
      *got = n;
      return 1;
    }
    if (s.eof_) return 0;
    if (!s.direct_) {
      BIO_set_retry_read(b);
      return 0;
    }
    ssize_t r = ::recv(s.fd_, out, len, 0);
    if (r > 0) {
      *got = static_cast<std::size_t>(r);
      return 1;
    }
    if (r == 0) s.eof_ = true;
    else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(b);
    return 0;
  }

  static int write(BIO* b, const char* in, std::size_t len, std::size_t* put) {
    TlsSession& s = of(b);
    BIO_clear_retry_flags(b);
    *put = 0;
    ssize_t r = ::send(s.fd_, in, len, MSG_NOSIGNAL);
    if (r >= 0) {
      *put = static_cast<std::size_t>(r);
      return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
    return 0;
  }

  static long ctrl(BIO* b, int cmd, long, void* ptr) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_EOF:
        return of(b).eof_ ? 1 : 0;
      case BIO_C_GET_FD:
        if (ptr) *static_cast<int*>(ptr) = of(b).fd_;
        return of(b).fd_;
      default:
        return 0;
    }
  }

  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }

  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "gatehouse socket");
      if (!bm) return bm;
      BIO_meth_set_read_ex(bm, read);
      BIO_meth_set_write_ex(bm, write);
      BIO_meth_set_ctrl(bm, ctrl);
      BIO_meth_set_create(bm, create);
      return bm;
    }();
    return m;
  }
};

TlsSession::TlsSession(SSL* ssl, int fd, std::shared_ptr<const void> context) noexcept
    : ssl_(ssl), context_(std::move(context)), fd_(fd) {
  BIO_METHOD* m = TlsBio::method();
  BIO* bio = m ? BIO_new(m) : nullptr;
  if (!bio) return;
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one reference, owned by the SSL object
  SSL_set_read_ahead(ssl_, 1);
  bio_ok_ = true;
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

void TlsSession::lend(const char* p, std::size_t n) noexcept {
  // The lender's buffer receives the plaintext next, so OpenSSL reads a copy.
  thread_local std::array<char, kMaxLend> copy;
  if (n == 0) {
    eof_ = true;
    return;
  }
  n = std::min(n, copy.size());
  std::memcpy(copy.data(), p, n);
  lent_ = copy.data();
  lent_len_ = n;
}

void TlsSession::keep_rest() {
  if (lent_len_ == 0) return;
  rest_.append(lent_, lent_len_);
  lent_ = nullptr;
  lent_len_ = 0;
}

bool TlsSession::has_input() const noexcept { return rest_at_ < rest_.size() || SSL_has_pending(ssl_) == 1; }

bool TlsSession::awaits_bytes() const noexcept {
  return !eof_ && lent_len_ == 0 && !has_input() && SSL_is_init_finished(ssl_) == 1;
}

std::string_view TlsSession::alpn() const noexcept {
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  return p ? std::string_view(reinterpret_cast<const char*>(p), len) : std::string_view();
}

bool TlsSession::resumed() const noexcept { return SSL_session_reused(ssl_) == 1; }

std::string TlsSession::verify_error() const {
  long r = SSL_get_verify_result(ssl_);
  if (r == X509_V_OK) return {};
  return X509_verify_cert_error_string(r);
}

bool TlsSession::is_plain_http(const boost::system::error_code& err) noexcept {
  if (err.category() != tls_category()) return false;
  unsigned long e = static_cast<unsigned long>(static_cast<unsigned>(err.value()));
  return ERR_GET_LIB(e) == ERR_LIB_SSL &&
         (ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST || ERR_GET_REASON(e) == SSL_R_HTTPS_PROXY_REQUEST);
}

// ---- server context -------------------------------------------------------------------------------

struct TlsServerCallbacks {
  static int client_hello(SSL* s, int* alert, void* arg) {
    const auto* self = static_cast<const TlsServerContext*>(arg);
    std::string_view name = hello_server_name(s);
    int i = name.empty() ? -1 : self->pick(name);
    if (i < 0 && self->sni_strict_) {
      *alert = SSL_AD_UNRECOGNIZED_NAME;
      return SSL_CLIENT_HELLO_ERROR;
    }
    if (i > 0) SSL_set_SSL_CTX(s, self->ctxs_[static_cast<std::size_t>(i)]);
    return SSL_CLIENT_HELLO_SUCCESS;
  }

  static int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                         unsigned inlen, void* arg) {
    const auto* self = static_cast<const TlsServerContext*>(arg);
    unsigned char* chosen = nullptr;
    const auto* ours = reinterpret_cast<const unsigned char*>(self->alpn_wire_.data());
    if (SSL_select_next_proto(&chosen, outlen, ours, static_cast<unsigned>(self->alpn_wire_.size()), in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
      *out = chosen;
      return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
  }
};

TlsServerContext::~TlsServerContext() {
  for (SSL_CTX* c : ctxs_) SSL_CTX_free(c);
}

std::shared_ptr<const TlsServerContext> TlsServerContext::load(const TlsServerOptions& opts, std::string& error) {
  if (opts.certificates.empty()) {
    error = "no certificate";
    return nullptr;
  }
  std::shared_ptr<TlsServerContext> self(new TlsServerContext());
  self->sni_strict_ = opts.sni_strict;
  self->alpn_ = opts.alpn;
  for (const auto& p : opts.alpn) {
    self->alpn_wire_.push_back(static_cast<char>(p.size()));
    self->alpn_wire_ += p;
  }
  ERR_clear_error();
  for (std::size_t i = 0; i < opts.certificates.size(); ++i) {
    const auto& c = opts.certificates[i];
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
      error = "cannot make a TLS context: " + openssl_reason();
      return nullptr;
    }
    self->ctxs_.push_back(ctx);
    SSL_CTX_set_min_proto_version(ctx, opts.min_version >= 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 (opts.session_tickets ? 0 : SSL_OP_NO_TICKET));
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_cipher_list(ctx, kCiphers12) != 1 || SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
      error = "cannot set the TLS ciphers: " + openssl_reason();
      return nullptr;
    }
    // Resumption is by tickets only (stateless, so any worker resumes any session): no cache.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
    SSL_CTX_set_timeout(ctx, static_cast<long>(kTicketKeyLifetime.count()));
    if (opts.session_tickets) {
      SSL_CTX_set_num_tickets(ctx, 1);
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
    } else {
      SSL_CTX_set_num_tickets(ctx, 0);
    }
    SSL_CTX_set_alpn_select_cb(ctx, TlsServerCallbacks::alpn_select, self.get());
    if (opts.client_auth != TlsClientAuth::None) {
      if (SSL_CTX_load_verify_locations(ctx, opts.client_ca.c_str(), nullptr) != 1) {
        error = fmt::format("cannot load client_ca {}: {}", opts.client_ca, openssl_reason());
        return nullptr;
      }
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(opts.client_ca.c_str());
      if (names) SSL_CTX_set_client_CA_list(ctx, names);
      SSL_CTX_set_verify(ctx,
                         SSL_VERIFY_PEER | (opts.client_auth == TlsClientAuth::Required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                         nullptr);
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, c.cert.c_str()) != 1) {
      error = fmt::format("cannot load certificate {}: {}", c.cert, openssl_reason());
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      std::string why = openssl_reason();
      error = why.find("mismatch") != std::string::npos
                  ? fmt::format("key {} does not match certificate {}", c.key, c.cert)
                  : fmt::format("cannot load key {}: {}", c.key, why);
      return nullptr;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      ERR_clear_error();
      error = fmt::format("key {} does not match certificate {}", c.key, c.cert);
      return nullptr;
    }
    self->names_.push_back(certificate_names(SSL_CTX_get0_certificate(ctx)));
  }
  SSL_CTX_set_client_hello_cb(self->ctxs_[0], TlsServerCallbacks::client_hello, self.get());
  return self;
}

int TlsServerContext::pick(std::string_view server_name) const {
  if (server_name.empty()) return -1;
  for (std::size_t i = 0; i < names_.size(); ++i)
    for (const auto& n : names_[i])
      if (!n.starts_with("*.") && tls_name_matches(n, server_name)) return static_cast<int>(i);
  for (std::size_t i = 0; i < names_.size(); ++i)
    for (const auto& n : names_[i])
      if (n.starts_with("*.") && tls_name_matches(n, server_name)) return static_cast<int>(i);
  return -1;
}

std::unique_ptr<TlsSession> TlsServerContext::new_session(int fd) const {
  SSL* ssl = SSL_new(ctxs_[0]);
  if (!ssl) return nullptr;
  auto session = std::make_unique<TlsSession>(ssl, fd, shared_from_this());
  if (!session->ok()) return nullptr;
  SSL_set_accept_state(ssl);
  return session;
}

// ---- client context -------------------------------------------------------------------------------

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

std::shared_ptr<const TlsClientContext> TlsClientContext::load(const TlsClientOptions& opts, std::string& error) {
  std::shared_ptr<TlsClientContext> self(new TlsClientContext());
  ERR_clear_error();
  self->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!self->ctx_) {
    error = "cannot make a TLS context: " + openssl_reason();
    return nullptr;
  }
  SSL_CTX* ctx = self->ctx_;
  self->verify_ = opts.verify;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (opts.verify) {
    int ok = opts.ca.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                             : SSL_CTX_load_verify_locations(ctx, opts.ca.c_str(), nullptr);
    if (ok != 1) {
      error = opts.ca.empty() ? "cannot read the system's CA certificates: " + openssl_reason()
                              : fmt::format("cannot load ca {}: {}", opts.ca, openssl_reason());
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!opts.client_cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, opts.client_cert.c_str()) != 1) {
      error = fmt::format("cannot load client_cert {}: {}", opts.client_cert, openssl_reason());
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, opts.client_key.c_str(), SSL_FILETYPE_PEM) != 1) {
      std::string why = openssl_reason();
      error = why.find("mismatch") != std::string::npos
                  ? fmt::format("client_key {} does not match client_cert {}", opts.client_key, opts.client_cert)
                  : fmt::format("cannot load client_key {}: {}", opts.client_key, why);
      return nullptr;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      ERR_clear_error();
      error = fmt::format("client_key {} does not match client_cert {}", opts.client_key, opts.client_cert);
      return nullptr;
    }
  }
  if (!opts.alpn.empty()) {
    std::string wire;
    for (const auto& p : opts.alpn) {
      wire.push_back(static_cast<char>(p.size()));
      wire += p;
    }
    SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
  }
  return self;
}

std::shared_ptr<const TlsClientContext> TlsClientContext::system(std::string& error) {
  static std::once_flag once;
  static std::shared_ptr<const TlsClientContext> ctx;
  static std::string load_error;
  std::call_once(once, [] { ctx = load(TlsClientOptions{}, load_error); });
  if (!ctx) error = load_error;
  return ctx;
}

std::unique_ptr<TlsSession> TlsClientContext::new_session(int fd, std::string_view host,
                                                          std::string_view server_name) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return nullptr;
  auto session = std::make_unique<TlsSession>(ssl, fd, shared_from_this());
  if (!session->ok()) return nullptr;
  SSL_set_connect_state(ssl);
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const bool ip = is_ip_literal(h);
  std::string name = !server_name.empty() ? std::string(server_name) : ip ? std::string() : h;
  if (!name.empty() && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) return nullptr;
  if (verify_) {
    if (!name.empty()) {
      if (SSL_set1_host(ssl, name.c_str()) != 1) return nullptr;
    } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h.c_str()) != 1) {
      return nullptr;
    }
  }
  return session;
}

}  // namespace gh::net
