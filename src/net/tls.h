// TLS for net::Stream (SPEC §7): the per-connection TlsSession, and the contexts sessions are
// made from — TlsServerContext for a listener (certificates chosen by SNI, Mozilla's
// intermediate profile, ALPN, client certificates, session tickets shared by every worker) and
// TlsClientContext for connections to services (verification against the system's CAs or a
// given bundle, host name checks, client certificates).
// A session drives OpenSSL on the connection's non-blocking socket through a BIO of its own
// (no BIO pair, no buffers of our own), with SSL_MODE_RELEASE_BUFFERS, so an idle TLS
// connection holds only OpenSSL's SSL object. OpenSSL reads ahead: one receive takes every
// record that has arrived, not a header and then a body.
// Thread: a context is immutable once loaded and shared by every worker (OpenSSL's SSL_CTX is
// safe for that); a session belongs to its Stream's thread. The ticket keys are process-wide,
// behind a mutex taken once per ticket issued or opened.
// Failure: load() returns null and says why (naming the file); handshake and I/O errors come
// back as error_codes of tls_category() whose message is OpenSSL's reason.
#pragma once

#include <boost/system/error_code.hpp>

#include <openssl/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gh::net {

// Errors from OpenSSL: the value is OpenSSL's packed error code (ERR_get_error), the message
// its reason string.
const boost::system::error_category& tls_category() noexcept;

// One connection's TLS state. Owns the SSL object; keeps the context it was made from alive.
class TlsSession {
 public:
  // Takes `ssl` and puts it over socket `fd`; ok() is false if OpenSSL could not.
  TlsSession(SSL* ssl, int fd, std::shared_ptr<const void> context) noexcept;
  ~TlsSession();
  bool ok() const noexcept { return bio_ok_; }
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  SSL* ssl() const noexcept { return ssl_; }
  // After the handshake: the protocol ALPN chose ("" when the client offered none).
  std::string_view alpn() const noexcept;
  // After the handshake: whether it resumed an earlier session (a ticket).
  bool resumed() const noexcept;
  // After a failed client handshake: why the peer's certificate was refused ("" when it was not).
  std::string verify_error() const;
  // Whether the handshake failed because the peer spoke plain HTTP (`err`: its error).
  static bool is_plain_http(const boost::system::error_code& err) noexcept;

  // Where OpenSSL's reads come from. By default it receives from the socket itself. A Stream
  // that waits for data through its event loop (a read there, where waiting for readability
  // re-arms the descriptor each time) receives ciphertext itself and lends it: lend(), then
  // the OpenSSL call, then keep_rest(). While
  // direct_reads(false), OpenSSL reads only what was lent or kept and asks for more
  // (SSL_ERROR_WANT_READ) when that is used up.
  static constexpr std::size_t kMaxLend = 16384;
  void direct_reads(bool on) noexcept { direct_ = on; }
  // Lends `n` <= kMaxLend received bytes (copied: the caller's buffer may receive the
  // plaintext); a zero-length lend says the peer closed its side.
  void lend(const char* p, std::size_t n) noexcept;
  // Keeps what OpenSSL did not take of the lent bytes for its next read.
  void keep_rest();
  // Whether received bytes wait to be read: decrypted or not, OpenSSL's or kept.
  bool has_input() const noexcept;
  // Whether a read can only ask for more bytes: the handshake is done, nothing received waits
  // and the peer has not closed its side.
  bool awaits_bytes() const noexcept;

 private:
  friend struct TlsBio;
  SSL* ssl_;
  std::shared_ptr<const void> context_;
  int fd_;
  bool bio_ok_ = false;
  bool direct_ = true;
  bool eof_ = false;           // the peer closed its side: reads return EOF
  const char* lent_ = nullptr;  // lent bytes not yet taken by OpenSSL
  std::size_t lent_len_ = 0;
  std::string rest_;           // lent bytes OpenSSL did not take, from rest_at_
  std::size_t rest_at_ = 0;
};

enum class TlsClientAuth { None, Optional, Required };

struct TlsServerOptions {
  struct Certificate {
    std::string cert;  // PEM: the certificate, then its chain
    std::string key;   // PEM private key
  };
  std::vector<Certificate> certificates;  // the first is the default
  int min_version = 12;                   // 12: TLS 1.2, 13: TLS 1.3
  std::vector<std::string> alpn = {"http/1.1"};  // what the gateway speaks, in preference order
  bool sni_strict = false;
  std::string client_ca;
  TlsClientAuth client_auth = TlsClientAuth::None;
  bool session_tickets = true;
};

// A listener's certificates and settings, loaded once (a renewal loads a new one).
class TlsServerContext : public std::enable_shared_from_this<TlsServerContext> {
 public:
  // Loads every certificate and key (and client_ca). Null when any fails, with `error` naming
  // the file and OpenSSL's reason (e.g. "key.pem does not match cert.pem").
  static std::shared_ptr<const TlsServerContext> load(const TlsServerOptions& opts, std::string& error);
  ~TlsServerContext();

  // A session for an accepted socket, in the server role (handshake not started).
  std::unique_ptr<TlsSession> new_session(int fd) const;

  // The certificate a server name picks: exact SAN match first, then a one-label wildcard;
  // -1 when none does (the default then serves, unless sni_strict refuses).
  int pick(std::string_view server_name) const;
  // Each certificate's DNS names (SAN, or the CN without SANs), lower case.
  const std::vector<std::vector<std::string>>& names() const noexcept { return names_; }
  bool sni_strict() const noexcept { return sni_strict_; }
  const std::vector<std::string>& alpn() const noexcept { return alpn_; }

  // For the OpenSSL callbacks (tls.cc).
  SSL_CTX* ctx(std::size_t i) const noexcept { return ctxs_[i]; }

 private:
  TlsServerContext() = default;
  std::vector<SSL_CTX*> ctxs_;  // one per certificate, configured alike
  std::vector<std::vector<std::string>> names_;
  std::vector<std::string> alpn_;
  std::string alpn_wire_;  // alpn_ as ALPN's length-prefixed list
  bool sni_strict_ = false;
  friend struct TlsServerCallbacks;
};

struct TlsClientOptions {
  std::string ca;           // PEM bundle; empty: the system's CAs
  bool verify = true;       // chain and host name
  std::string client_cert;  // both or neither
  std::string client_key;
  std::vector<std::string> alpn;  // offered; empty: no ALPN
};

// How the gateway connects to TLS services.
class TlsClientContext : public std::enable_shared_from_this<TlsClientContext> {
 public:
  static std::shared_ptr<const TlsClientContext> load(const TlsClientOptions& opts, std::string& error);
  // Verifies against the system's CAs, no client certificate: JWKS and rediss:// without more
  // settings. Loaded once; null if the system's CA store cannot be read (`error` says why).
  static std::shared_ptr<const TlsClientContext> system(std::string& error);
  ~TlsClientContext();

  // A session for a socket connected to `host` (a DNS name or an IP literal), in the client
  // role: SNI is `server_name` or else the host when it is a name (never an IP); the
  // certificate must be valid for `server_name` or else `host`.
  std::unique_ptr<TlsSession> new_session(int fd, std::string_view host, std::string_view server_name = {}) const;
  bool verify() const noexcept { return verify_; }

 private:
  TlsClientContext() = default;
  SSL_CTX* ctx_ = nullptr;
  bool verify_ = true;
};

// The ticket keys every listener's sessions share (so resumption works whichever worker a
// client reaches), rotated every `kTicketKeyLifetime`; a ticket made with the previous key is
// still accepted (and renewed).
inline constexpr std::chrono::seconds kTicketKeyLifetime{3600};

// For tests: forces a rotation of the ticket keys now.
void rotate_ticket_keys_for_test();

// The host name in a ClientHello's server_name extension body (RFC 6066 §3), or "" when there
// is none or the bytes are malformed. Reads only within [p, p + len).
std::string_view parse_server_name(const unsigned char* p, std::size_t len) noexcept;

// Whether `name` matches `pattern` (exact, or "*.rest" matching
// exactly one more label).
bool tls_name_matches(std::string_view pattern, std::string_view name) noexcept;

}  // namespace gh::net
