// Integration harness, TLS: a private CA that issues certificates for a test (names, validity,
// self-signed), a blocking TLS client with every knob a test turns (SNI, ALPN, versions,
// resumption, client certificates, verification), and a TLS front for an Upstream (a TLS
// service instance that counts its handshakes and sees client certificates). All on OpenSSL.
// Thread: Pki is immutable after construction; a TlsClient belongs to one thread; TlsUpstream's
// public members are thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness/http.h"
#include "harness/net.h"

struct ssl_session_st;
struct ssl_st;

namespace gh::integ {

struct CertSpec {
  std::string cn = "gatehouse test";
  std::vector<std::string> dns;  // subjectAltName DNS entries
  std::vector<std::string> ips;  // subjectAltName IP entries
  int valid_from_days = -1;      // relative to now
  int valid_to_days = 30;
  bool self_signed = false;      // signed by its own key instead of the CA
};

struct CertFiles {
  std::string cert;  // PEM certificate (leaf only)
  std::string key;   // PEM private key (EC P-256)
};

// A private CA writing PEM files into DIR.
class Pki {
 public:
  explicit Pki(std::string dir, std::string name = "ca");
  ~Pki();
  Pki(const Pki&) = delete;
  Pki& operator=(const Pki&) = delete;

  const std::string& ca_file() const { return ca_file_; }
  // Issues a certificate; the files are DIR/NAME.pem and DIR/NAME.key (written atomically,
  // replacing earlier ones of that name).
  CertFiles issue(const std::string& name, const CertSpec& spec) const;

 private:
  std::string dir_;
  std::string ca_file_;
  void* ca_key_ = nullptr;   // EVP_PKEY*
  void* ca_cert_ = nullptr;  // X509*
};

using SessionPtr = std::shared_ptr<ssl_session_st>;

struct TlsOptions {
  std::string sni;                 // empty: none sent
  std::vector<std::string> alpn;   // offered; empty: no ALPN extension
  int min_version = 0;             // e.g. 0x0301 (TLS1_VERSION); 0: OpenSSL's default
  int max_version = 0;
  std::string ca_file;             // verify the server against it (chain and `verify_name`)
  std::string verify_name;
  CertFiles client;                // a client certificate, when set
  SessionPtr session;              // resume this session
};

// One blocking TLS connection to 127.0.0.1:PORT. Every call is bounded by a deadline.
class TlsClient {
 public:
  TlsClient(int port, const TlsOptions& opts, Millis timeout = 3s);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }  // why the handshake failed
  const std::string& alpn() const { return alpn_; }
  const std::string& version() const { return version_; }  // "TLSv1.3"
  bool resumed() const { return resumed_; }
  // The server certificate's subjectAltName DNS names (or CN), lower case.
  const std::vector<std::string>& peer_names() const { return peer_names_; }
  // The session to resume later (after a response was read: TLS 1.3 tickets come after the
  // handshake).
  SessionPtr session() const;

  bool send(std::string_view bytes, Millis timeout = 3s);
  std::optional<Response> read_response(Millis timeout = 5s, bool head_request = false);
  // Closes the connection at once without close_notify, as a client that is killed does.
  void drop();
  // True when the peer closes (close_notify, EOF or reset) within TIMEOUT.
  bool wait_closed(Millis timeout = 3s);
  // True once the bytes received and not consumed contain NEEDLE (waiting up to TIMEOUT).
  bool wait_for(std::string_view needle, Millis timeout = 3s);
  // After a close: whether the peer ended with close_notify (an orderly TLS end).
  bool close_notify() const { return close_notify_; }

 private:
  bool fill(Clock::time_point deadline);
  int fd_ = -1;
  void* ctx_ = nullptr;  // SSL_CTX*
  ssl_st* ssl_ = nullptr;
  bool ok_ = false;
  std::string error_, alpn_, version_;
  bool resumed_ = false;
  std::vector<std::string> peer_names_;
  std::string buf_;
  bool eof_ = false;
  bool close_notify_ = false;
};

// GET over a fresh TLS connection; status 0 when the handshake or the exchange failed (the
// reason in `error` when given).
Response tls_get(int port, std::string_view target, const TlsOptions& opts, const Headers& extra = {},
                 std::string* error = nullptr);

// A TLS listener in front of a plain port (an Upstream's): accepts TLS on 127.0.0.1, relays
// bytes both ways to 127.0.0.1:BACKEND. Counts handshakes, and the subject CN of each client
// certificate it was shown (client certificates are asked for when `client_ca` is given).
class TlsUpstream {
 public:
  TlsUpstream(int backend_port, CertFiles cert, std::string client_ca = {});
  ~TlsUpstream();
  TlsUpstream(const TlsUpstream&) = delete;
  TlsUpstream& operator=(const TlsUpstream&) = delete;

  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  int handshakes() const { return handshakes_; }
  int failed_handshakes() const { return failed_; }
  std::vector<std::string> client_subjects() const;
  // The SNI of the last handshake ("" when none was sent).
  std::string last_sni() const;

 private:
  void accept_loop();
  void serve(int fd);

  int backend_;
  int listen_fd_ = -1;
  int port_ = 0;
  void* ctx_ = nullptr;  // SSL_CTX*
  std::atomic<bool> stopping_{false};
  std::atomic<int> handshakes_{0};
  std::atomic<int> failed_{0};
  mutable std::mutex mu_;
  std::vector<std::string> subjects_;
  std::string last_sni_;
  std::thread acceptor_;
  std::vector<std::thread> conns_;
};

}  // namespace gh::integ
