// Config: the gateway's YAML file as plain structs, with every problem reported at once.
// Thread: plain data, built once per load and never mutated after; shared read-only.
// Builds no runtime objects: routing/, upstream/ and policies/ compile these into their own.
#pragma once

#include <yaml-cpp/yaml.h>

#include <any>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/log.h"

namespace gh::config {

using Duration = std::chrono::milliseconds;

// Where a value stood in the file: 1-based line and column; 0 when unknown.
struct Mark {
  int line = 0;
  int col = 0;
};

// One problem: printed as `FILE:LINE:COL: PATH: message`.
struct Diagnostic {
  std::string file;
  Mark mark;
  std::string path;  // e.g. routes[2].service
  std::string message;
  std::string to_string() const;
};

// Collects diagnostics during a load; policies use it to validate their own options.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file = {}) : file_(std::move(file)) {}
  void error(Mark m, std::string path, std::string message);
  void error(const YAML::Node& at, std::string path, std::string message);
  bool empty() const { return list_.empty(); }
  const std::vector<Diagnostic>& list() const { return list_; }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<Diagnostic> list_;
};

Mark mark_of(const YAML::Node& n);

// How a value reads in a "got ..." message: "nothing", "a list", "a mapping", plain numbers and
// booleans bare, other text quoted.
std::string describe_value(const YAML::Node& n);

// One certificate of a TLS listener: PEM files (the cert file may hold the chain after it).
struct CertificateConfig {
  std::string cert;
  std::string key;
  Mark mark;
};

enum class ClientAuth { None, Optional, Required };

// A listener's `tls:` (SPEC §7). `{cert, key}` is shorthand for one certificate.
struct TlsConfig {
  std::vector<CertificateConfig> certificates;  // SNI picks by names; the first is the default
  int min_version = 12;                         // 12 = TLS 1.2, 13 = TLS 1.3
  std::vector<std::string> alpn;  // in preference order; the loader fills in [h2, http/1.1]
  bool sni_strict = false;       // an unknown or absent server name fails the handshake
  std::string client_ca;         // PEM bundle that client certificates are verified against
  ClientAuth client_auth = ClientAuth::None;
  bool session_tickets = true;
  Duration handshake_timeout = std::chrono::seconds(10);
  Duration reload_check = std::chrono::seconds(30);  // 0 = certificate files re-read only on reload
  Mark mark;
};

struct ListenerConfig {
  std::string host;  // empty = all interfaces
  std::uint16_t port = 3000;
  std::optional<TlsConfig> tls;
  bool h2c = false;  // HTTP/2 with prior knowledge beside HTTP/1.1
  Mark mark;
};

struct AdminConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string token;
  Mark mark;
};

// What happens to a request field whose name holds '_' (many frameworks read it as '-').
enum class Underscores { Drop, Reject, Pass };

// limits.http2: what one HTTP/2 client connection may hold (SPEC §7).
struct Http2Limits {
  std::uint64_t max_concurrent_streams = 100;  // beyond: REFUSED_STREAM
  std::uint64_t stream_window = 64 * 1024;     // refilled only as bytes reach the service
  std::uint64_t connection_window = 1024 * 1024;
  Duration idle_timeout = std::chrono::seconds(60);  // without open streams: GOAWAY and close
};

struct Limits {
  std::uint64_t max_uri_bytes = 8 * 1024;
  std::uint64_t max_header_bytes = 16 * 1024;
  std::uint64_t max_headers = 100;
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;
  Duration header_timeout = std::chrono::seconds(10);
  Duration body_timeout = std::chrono::seconds(10);
  std::uint64_t min_body_rate = 1024;  // bytes per second
  Duration idle_timeout = std::chrono::seconds(60);
  Duration drain_timeout = std::chrono::seconds(30);
  std::uint64_t max_connections = 0;  // 0 = unlimited
  Underscores underscores = Underscores::Drop;
  Duration websocket_idle_timeout = std::chrono::minutes(5);
  Http2Limits http2;
};

struct InstanceConfig {
  std::string url;   // as written, e.g. http://127.0.0.1:3001
  std::string host;  // parsed from url
  std::uint16_t port = 80;  // default 80, or 443 for https
  std::uint32_t weight = 1;
  bool tls = false;  // https://
  bool h2c = false;  // h2c://: cleartext HTTP/2
  Mark mark;
};

// Parses one instance URL (`http://`, `https://` or `h2c://host[:port]`, no user, path or
// query) into url, host, port, tls and h2c; h2c:// defaults to port 80. Not Ok: `why` says what
// is wrong, in words an error message can quote.
enum class InstanceUrl { Ok, Invalid, HasPath };
InstanceUrl parse_instance(std::string_view text, InstanceConfig& inst, std::string& why);

enum class Balance { RoundRobin, Weighted, LeastRequest, Random, Hash };

struct HashOn {
  enum class Kind { ClientIp, Header, Cookie, Claim } kind = Kind::ClientIp;
  std::string name;  // header, cookie or claim name
};

// An inclusive range of HTTP status codes, e.g. 200-299.
struct StatusRange {
  int lo = 200;
  int hi = 399;
  bool contains(int status) const noexcept { return status >= lo && status <= hi; }
  bool operator==(const StatusRange&) const = default;
};

struct HealthCheckConfig {
  std::string path = "/health";
  std::vector<StatusRange> expected_status = {StatusRange{200, 399}};  // a probe's healthy answers
  Duration interval = std::chrono::seconds(5);
  Duration timeout = std::chrono::seconds(2);
  int healthy_after = 2;
  int unhealthy_after = 3;
};

struct RetryConfig {
  int attempts = 1;                  // retries after the first try
  bool on_connect_failure = true;
  std::vector<int> on_status;        // e.g. 502, 503, 504
};

// A service's `tls:`, for its https:// instances (SPEC §2, §7).
struct UpstreamTlsConfig {
  std::string ca;           // PEM bundle; empty = the system's CAs
  bool verify = true;       // chain and host name
  std::string server_name;  // SNI and the name checked; empty = each instance's host
  std::string client_cert;  // mutual TLS: PEM files, both or neither
  std::string client_key;
  Mark mark;
};

// What the gateway speaks to a service's instances.
enum class UpstreamProtocol { Http1, H2, H2c };

struct ServiceConfig {
  std::string name;
  std::vector<InstanceConfig> instances;
  Balance load_balancing = Balance::RoundRobin;
  std::optional<HashOn> hash_on;     // required with Balance::Hash
  std::optional<HealthCheckConfig> health_check;
  Duration connect_timeout = std::chrono::seconds(2);
  Duration response_timeout = std::chrono::seconds(30);
  Duration idle_timeout = std::chrono::minutes(5);  // timeouts.idle: silence inside a streaming body
  RetryConfig retries;
  UpstreamProtocol protocol = UpstreamProtocol::Http1;
  UpstreamTlsConfig tls;  // defaults when the file has no `tls:`
  bool preserve_host = false;
  std::uint64_t max_in_flight = 0;   // 0 = unlimited
  Duration dns_refresh = std::chrono::seconds(30);  // how often instance host names are resolved again
  Mark mark;
};

// Whether the gateway speaks HTTP/2 to this instance of this service: the service's protocol is
// h2 (over TLS, ALPN h2) or h2c (cleartext, prior knowledge), or the instance is written
// h2c://host:port (cleartext HTTP/2 whatever the protocol says). Otherwise HTTP/1.1.
bool speaks_http2(const ServiceConfig& s, const InstanceConfig& inst);

// Why `inst` cannot serve `s` as its protocol stands (h2 needs https:// instances; h2c needs
// http:// or h2c:// ones), in words an error message can quote; empty when it can. The config
// file and the admin API's registrations check the same.
std::string instance_protocol_error(const ServiceConfig& s, const InstanceConfig& inst);

// A named entry under `policies:`. Options stay YAML: the policy's own module parses them.
struct PolicyConfig {
  std::string name;
  std::string type;
  YAML::Node options;  // the whole mapping, `type` included
  std::string path;    // "policies.per-ip", for diagnostics
  Mark mark;
  // What the catalog's validator built from `options` (the policy's typed config, usually a
  // std::shared_ptr<const XConfig>), so that the entry is parsed once; empty when the type
  // has no validator.
  std::any built;
};

enum class MatchKind { Prefix, Exact, Regex };

struct HeaderMatch {
  std::string name;
  std::string value;   // exact value, or an RE2 pattern when regex
  bool regex = false;
};

struct RouteConfig {
  std::string name;            // default: the match string
  MatchKind kind = MatchKind::Prefix;
  std::string pattern;         // the path prefix, exact path or regex
  std::vector<std::string> methods;  // upper case; empty = any
  std::string host;            // exact, or "*.example.com"; empty = any
  std::vector<HeaderMatch> headers;
  bool strip_prefix = false;
  std::string service;
  std::vector<std::string> policies;  // the route's own, run after defaults.policies
  bool websocket = true;       // WebSocket upgrades allowed; default false when the service speaks HTTP/2
  std::optional<Duration> websocket_idle_timeout;  // default: limits.websocket_idle_timeout
  Mark mark;
};

// `log:`, the error log (core/log.h).
struct LogConfig {
  log::Level level = log::Level::Info;
  log::Format format = log::Format::Text;
};

struct Config {
  std::string file;
  std::vector<ListenerConfig> listeners;
  std::optional<AdminConfig> admin;
  unsigned workers = 0;  // 0 = one per core
  std::string redis;     // empty = in-process store
  std::vector<std::string> trusted_proxies;  // CIDRs
  Limits limits;
  std::optional<std::string> health_endpoint = std::string("/health");
  std::string access_log = "stdout";
  LogConfig log;
  std::vector<ServiceConfig> services;  // in file order
  std::vector<PolicyConfig> policies;   // in file order
  std::vector<std::string> default_policies;
  std::vector<RouteConfig> routes;
  // The file as parsed, after ${VAR} substitution: what the admin API's GET /config shows (with
  // its secrets masked). Read on the control thread only.
  YAML::Node document;

  const ServiceConfig* find_service(std::string_view name) const;
  const PolicyConfig* find_policy(std::string_view name) const;
};

// Parses and validates one policy entry's options; adds diagnostics at the entry's path and
// returns the built config, which the loader keeps in PolicyConfig::built.
using PolicyValidator = std::function<std::any(const PolicyConfig&, Diagnostics&)>;

// What policy types the binary knows. `planned` types are refused as "not yet supported".
struct PolicyCatalog {
  std::map<std::string, PolicyValidator> supported;
  std::set<std::string> planned;
};

struct LoadResult {
  std::optional<Config> config;        // set only when there is no error
  std::vector<Diagnostic> errors;
};

// Why `inst` cannot join service `s` of `c` while it runs (the admin API's registrations): it
// cannot speak the service's protocol (instance_protocol_error), or it speaks HTTP/2 while a
// route lets WebSocket upgrades through to the service. Empty when it can.
std::string registration_error(const Config& c, const ServiceConfig& s, const InstanceConfig& inst);

// Substitutes ${VAR} and ${VAR:-default} from the environment, parses and validates.
LoadResult load_string(const std::string& text, const std::string& file_name, const PolicyCatalog& catalog);
LoadResult load_file(const std::string& path, const PolicyCatalog& catalog);

}  // namespace gh::config
