// Loader: YAML text -> Config, validating every field and collecting every problem at once.
// Thread: each load builds its own state; nothing is shared between loads.
// Failure: yaml-cpp may throw inside this file; every throw is caught here and becomes a
// Diagnostic. A caller only ever sees a LoadResult.

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <re2/re2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>
#include <tuple>

#include "config/config.h"
#include "config/env.h"
#include "config/reader.h"
#include "core/cidr.h"
#include "core/url.h"
#include "core/strings.h"

namespace gh::config {

namespace {

constexpr std::string_view kSecurityHeaders = "security_headers";
constexpr std::string_view kInstanceExpected = "a URL like http://10.0.0.5:3001 or https://api.internal";
constexpr std::string_view kListenExpected = "an address like \":3000\" or \"0.0.0.0:3000\"";

std::string describe(const YAML::Node& n) { return describe_value(n); }

// ---- small syntax checks ------------------------------------------------------------------

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

bool is_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

bool is_hostname(std::string_view s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
  });
}

bool is_ipv6(std::string_view s) {
  in6_addr a{};
  return inet_pton(AF_INET6, std::string(s).c_str(), &a) == 1;
}

bool is_ip_literal(std::string_view s) {
  in_addr a{};
  return is_ipv6(s) || inet_pton(AF_INET, std::string(s).c_str(), &a) == 1;
}

std::optional<std::uint16_t> parse_port(std::string_view s, bool allow_zero) {
  if (!all_digits(s) || s.size() > 5) return std::nullopt;
  unsigned v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  if (v > 65535 || (v == 0 && !allow_zero)) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

struct HostPort {
  std::string host;
  std::optional<std::uint16_t> port;
};

// "host", "host:port", "[v6]", "[v6]:port", and with allow_empty_host ":port". Port 0..65535
// only where allow_zero_port (a listener on port 0 takes any free port).
std::optional<HostPort> parse_authority(std::string_view s, bool allow_empty_host, bool allow_zero_port) {
  HostPort hp;
  std::string_view rest;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || !is_ipv6(s.substr(1, close - 1))) return std::nullopt;
    hp.host = std::string(s.substr(1, close - 1));
    rest = s.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') return std::nullopt;
  } else {
    auto colon = s.rfind(':');
    std::string_view host = s.substr(0, colon);
    if (colon != std::string_view::npos && host.find(':') != std::string_view::npos) return std::nullopt;
    if (host.empty() ? !allow_empty_host : !is_hostname(host)) return std::nullopt;
    hp.host = std::string(host);
    if (colon != std::string_view::npos) rest = s.substr(colon);
  }
  if (!rest.empty()) {
    hp.port = parse_port(rest.substr(1), allow_zero_port);
    if (!hp.port) return std::nullopt;
  }
  return hp;
}

// A path to match or serve: starts with "/", no query, fragment, blanks or control characters.
bool valid_path(std::string_view s) {
  if (s.empty() || s[0] != '/') return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    return c == '?' || c == '#' || c == ' ' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

// Why `file` cannot be read now, or nullopt when it can: it must be a regular file (a symlink
// to one counts) that this process may open. Never reads it, and never blocks (a FIFO is
// refused before it is opened).
std::optional<std::string> unreadable(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::error_code(errno, std::system_category()).message();
  if (S_ISDIR(st.st_mode)) return "it is a directory";
  if (!S_ISREG(st.st_mode)) return "it is not a regular file";
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return std::error_code(errno, std::system_category()).message();
  ::close(fd);
  return std::nullopt;
}

// ---- the loader -----------------------------------------------------------------------------

class Loader : Reader {
 public:
  Loader(Diagnostics& d, const PolicyCatalog& catalog) : Reader(d), catalog_(catalog) {}

  Config load(const YAML::Node& root, std::string file) {
    Config c;
    c.file = std::move(file);
    Val top{root, mark_of(root), ""};
    if (top.mark.line == 0) top.mark = Mark{1, 1};
    if (!root.IsMap()) {
      error(top, fmt::format("expected a mapping with services and routes at the top level, got {}",
                             root.IsNull() ? std::string("an empty document") : describe(root)));
      return c;
    }
    Fields f(d_, top,
             {"listen", "admin", "workers", "redis", "trusted_proxies", "limits", "health_endpoint", "access_log",
              "log", "services", "policies", "defaults", "routes"});
    load_listen(f.get("listen"), c);
    if (f.has("admin")) c.admin = load_admin(f.get("admin"));
    load_workers(f.get("workers"), c);
    load_redis(f.get("redis"), c);
    load_trusted_proxies(f.get("trusted_proxies"), c);
    load_limits(f.get("limits"), c.limits);
    load_health_endpoint(f.get("health_endpoint"), c);
    load_access_log(f.get("access_log"), c);
    load_log(f.get("log"), c.log);
    load_services(f.get("services"), c);
    load_policies(f.get("policies"), c);
    load_defaults(f.get("defaults"), c);
    load_routes(f.get("routes"), c);
    synthesize_builtins(c);
    return c;
  }

 private:
  // ---- top level ------------------------------------------------------------------------------

  std::optional<ListenerConfig> listener_address(const Val& v, bool allow_zero_port = true) {
    if (v.node.IsScalar()) {
      std::string s = v.node.Scalar();
      if (all_digits(s)) s = ":" + s;  // `listen: 3000`
      auto hp = parse_authority(s, true, allow_zero_port);
      if (hp && hp->port) {
        ListenerConfig l;
        l.host = hp->host;
        l.port = *hp->port;
        l.mark = v.mark;
        return l;
      }
    }
    expected(v, kListenExpected);
    return std::nullopt;
  }

  std::optional<ListenerConfig> listener(const Val& v) {
    if (!v.node.IsMap()) return listener_address(v);
    Fields f(d_, v, {"address", "tls", "h2c"});
    Val address = f.get("address");
    std::optional<ListenerConfig> l;
    if (!address.present()) missing(address, kListenExpected);
    else l = listener_address(address);
    std::optional<TlsConfig> tls;
    if (f.has("tls")) tls = listener_tls(f.get("tls"));
    if (Val h = f.get("h2c"); h.present()) {
      if (auto b = boolean(h); b && *b) {
        if (f.has("tls")) error(h, "h2c applies only to plain listeners; a TLS listener offers HTTP/2 through alpn");
        else if (l) l->h2c = true;
      }
    }
    if (l) {
      l->tls = std::move(tls);
      l->mark = v.mark;
    }
    return l;
  }

  // A listener's `tls:`: `{cert, key, ...}` or `{certificates: [{cert, key}, ...], ...}`.
  std::optional<TlsConfig> listener_tls(const Val& v) {
    if (!want_map(v, "a mapping like {cert: server.pem, key: server.key} or {certificates: [{cert, key}, ...]}"))
      return std::nullopt;
    std::size_t errors_before = d_.list().size();
    Fields f(d_, v,
             {"cert", "key", "certificates", "min_version", "alpn", "sni_strict", "client_ca", "client_auth",
              "session_tickets", "handshake_timeout", "reload_check"});
    TlsConfig t;
    t.mark = v.mark;

    if (f.has("certificates")) {
      // Reported once, at the first of the two.
      Val cert = f.get("cert"), key = f.get("key");
      const char* which = cert.present() && key.present() ? "cert and key" : cert.present() ? "cert" : "key";
      if (cert.present() || key.present())
        error(cert.present() ? cert : key,
              fmt::format("{} beside certificates: give either the shorthand {{cert, key}} or certificates, not both",
                          which));
      Val list = f.get("certificates");
      if (want_list(list, "a list of {cert, key}")) {
        if (list.node.size() == 0) error(list, "expected at least one certificate, got an empty list");
        for (const Val& item : items(list)) {
          if (!want_map(item, "a certificate {cert, key}")) continue;
          Fields cf(d_, item, {"cert", "key"});
          if (auto c = certificate(cf, item)) t.certificates.push_back(std::move(*c));
        }
      }
    } else if (!f.has("cert") && !f.has("key")) {
      error(v, "missing cert and key; expected {cert, key} file paths or certificates: [{cert, key}, ...]");
    } else if (auto c = certificate(f, v)) {
      t.certificates.push_back(std::move(*c));
    }

    if (Val x = f.get("min_version"); x.present()) {
      const std::string s = x.node.IsScalar() ? x.node.Scalar() : std::string();
      if (s == "1.2") t.min_version = 12;
      else if (s == "1.3") t.min_version = 13;
      else if (s == "1.0" || s == "1.1" || s == "1")
        error(x, fmt::format("TLS {} is never offered; expected \"1.2\" or \"1.3\"", s == "1.1" ? "1.1" : "1.0"));
      else expected(x, "\"1.2\" or \"1.3\"");
    }

    static const std::vector<std::string> kAlpn = {"h2", "http/1.1"};
    t.alpn = kAlpn;
    if (Val x = f.get("alpn"); x.present() && want_list(x, "a list of h2 and http/1.1, like [h2, http/1.1]")) {
      std::vector<std::string> alpn;
      if (x.node.size() == 0) error(x, "expected at least one of h2 and http/1.1, got an empty list");
      for (const Val& item : items(x)) {
        auto s = text(item, "h2 or http/1.1");
        if (!s) continue;
        if (std::find(kAlpn.begin(), kAlpn.end(), *s) == kAlpn.end())
          error(item, unknown_name("ALPN protocol", *s, kAlpn));
        else if (std::find(alpn.begin(), alpn.end(), *s) != alpn.end())
          error(item, fmt::format("{} is listed twice", quote(*s)));
        else
          alpn.push_back(*s);
      }
      t.alpn = std::move(alpn);
    }

    if (Val x = f.get("sni_strict"); x.present())
      if (auto b = boolean(x)) t.sni_strict = *b;
    if (Val x = f.get("session_tickets"); x.present())
      if (auto b = boolean(x)) t.session_tickets = *b;
    if (Val x = f.get("handshake_timeout"); x.present())
      if (auto d = duration(x)) t.handshake_timeout = *d;
    if (Val x = f.get("reload_check"); x.present())
      if (auto d = duration(x, true)) t.reload_check = *d;

    Val auth = f.get("client_auth");
    bool auth_ok = true;
    if (auth.present()) {
      static const std::vector<std::string> kAuth = {"none", "optional", "required"};
      if (auto a = choice(auth, "client_auth", kAuth))
        t.client_auth = *a == "none" ? ClientAuth::None : *a == "optional" ? ClientAuth::Optional : ClientAuth::Required;
      else auth_ok = false;
    }
    Val ca = f.get("client_ca");
    if (ca.present()) {
      if (auto s = file_path(ca, "a PEM file of the CAs that sign client certificates")) t.client_ca = *s;
      if (auth_ok && t.client_auth == ClientAuth::None)
        error(ca, "client_ca is only used with client_auth optional or required");
    } else if (t.client_auth != ClientAuth::None) {
      missing(ca, fmt::format("a PEM file of the CAs that sign client certificates (client_auth: {} needs it)",
                              auth.node.Scalar()));
    }

    if (d_.list().size() != errors_before) return std::nullopt;
    return t;
  }

  // One certificate: `cert` and `key` of the mapping `at` (a certificates entry, or the tls
  // mapping itself in the shorthand).
  std::optional<CertificateConfig> certificate(const Fields& f, const Val& at) {
    CertificateConfig c;
    c.mark = at.mark;
    bool ok = true;
    for (auto [key, out, what] : {std::tuple{"cert", &c.cert, "a PEM certificate file (the chain may follow it)"},
                                  std::tuple{"key", &c.key, "a PEM private key file"}}) {
      Val file = f.get(key);
      if (!file.present()) {
        missing(file, what);
        ok = false;
      } else if (auto s = file_path(file, what)) {
        *out = *s;
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return c;
  }

  // A path to a file the gateway reads (certificates, keys, CA bundles): it must exist and be
  // readable now; what it holds is checked by whoever loads it.
  std::optional<std::string> file_path(const Val& v, std::string_view what) {
    auto s = nonempty_text(v, what);
    if (!s) return std::nullopt;
    if (auto why = unreadable(*s)) {
      error(v, fmt::format("cannot read {}: {}", quote(*s), *why));
      return std::nullopt;
    }
    return s;
  }

  void load_listen(const Val& v, Config& c) {
    if (!v.present()) {
      c.listeners.push_back(ListenerConfig{});
      return;
    }
    std::vector<Val> entries;
    if (v.node.IsSequence()) {
      if (v.node.size() == 0) error(v, "expected at least one listener, got an empty list");
      entries = items(v);
    } else if (v.node.IsScalar() || v.node.IsMap()) {
      entries.push_back(v);
    } else {
      expected(v, fmt::format("{}, a list of them, or {{address, tls}}", kListenExpected));
      return;
    }
    for (const Val& entry : entries) {
      auto l = listener(entry);
      if (!l) continue;
      bool duplicate = std::any_of(c.listeners.begin(), c.listeners.end(), [&](const ListenerConfig& o) {
        return o.host == l->host && o.port == l->port && o.port != 0;
      });
      if (duplicate) error(entry, fmt::format("duplicate listener on {}:{}", l->host, l->port));
      else c.listeners.push_back(std::move(*l));
    }
  }

  std::optional<AdminConfig> load_admin(const Val& v) {
    if (!want_map(v, "{address, token}")) return std::nullopt;
    Fields f(d_, v, {"address", "token"});
    AdminConfig a;
    a.mark = v.mark;
    Val address = f.get("address");
    if (!address.present()) missing(address, "an address like \"127.0.0.1:9901\"");
    else if (auto l = listener_address(address)) a.host = l->host, a.port = l->port;
    Val token = f.get("token");
    if (!token.present()) missing(token, "the admin API's bearer token, e.g. \"${ADMIN_TOKEN}\"");
    else if (auto t = nonempty_text(token, "a non-empty token")) a.token = *t;
    return a;
  }

  void load_workers(const Val& v, Config& c) {
    if (!v.present() || (v.node.IsScalar() && v.node.Scalar() == "auto")) return;
    if (auto n = integer(v, 1, "auto or a number of threads from 1 to 1024"); n) {
      if (*n > 1024) expected(v, "auto or a number of threads from 1 to 1024");
      else c.workers = static_cast<unsigned>(*n);
    }
  }

  void load_redis(const Val& v, Config& c) {
    if (!v.present()) return;
    constexpr std::string_view kRedis =
        "a URL like redis://127.0.0.1:6379 or redis://user:pass@host:6379/0 (rediss:// for TLS)";
    std::string why;
    if (v.node.IsScalar() && parse_redis_url(v.node.Scalar(), &why)) c.redis = v.node.Scalar();
    else if (v.node.IsScalar() &&
             (v.node.Scalar().starts_with("redis://") || v.node.Scalar().starts_with("rediss://")))
      error(v, fmt::format("expected {}, got {}: {}", kRedis, describe(v.node), why));
    else expected(v, kRedis);
  }

  void load_trusted_proxies(const Val& v, Config& c) {
    if (!v.present() || !want_list(v, "a list of CIDRs like 10.0.0.0/8")) return;
    for (const Val& item : items(v)) {
      constexpr std::string_view kCidr = "a CIDR like 10.0.0.0/8, 192.168.1.7 or fd00::/8";
      std::string why;
      if (item.node.IsScalar() && Cidr::parse(item.node.Scalar(), &why)) c.trusted_proxies.push_back(item.node.Scalar());
      else if (item.node.IsScalar()) error(item, fmt::format("expected {}, got {}: {}", kCidr, describe(item.node), why));
      else expected(item, kCidr);
    }
  }

  void load_limits(const Val& v, Limits& l) {
    if (!v.present() || !want_map(v, "a mapping of limits")) return;
    Fields f(d_, v,
             {"max_uri_bytes", "max_header_bytes", "max_headers", "max_body_bytes", "header_timeout", "body_timeout",
              "min_body_rate", "idle_timeout", "drain_timeout", "max_connections", "underscores_in_headers",
              "websocket_idle_timeout", "http2"});
    auto set_size = [&](const char* key, std::uint64_t& out) {
      if (Val x = f.get(key); x.present())
        if (auto n = size(x)) out = *n;
    };
    auto set_duration = [&](const char* key, Duration& out, bool allow_zero) {
      if (Val x = f.get(key); x.present())
        if (auto d = duration(x, allow_zero)) out = *d;
    };
    set_size("max_uri_bytes", l.max_uri_bytes);
    set_size("max_header_bytes", l.max_header_bytes);
    set_size("max_body_bytes", l.max_body_bytes);
    if (Val x = f.get("max_headers"); x.present())
      if (auto n = positive(x)) l.max_headers = *n;
    if (Val x = f.get("min_body_rate"); x.present())
      if (auto n = size(x, true, "/s")) l.min_body_rate = *n;
    set_duration("header_timeout", l.header_timeout, false);
    set_duration("body_timeout", l.body_timeout, false);
    set_duration("idle_timeout", l.idle_timeout, false);
    set_duration("drain_timeout", l.drain_timeout, true);
    if (Val x = f.get("max_connections"); x.present())
      if (auto n = integer(x, 0, "a number of connections (0 = unlimited)")) l.max_connections = *n;
    if (Val x = f.get("underscores_in_headers"); x.present())
      if (auto c = choice(x, "underscores_in_headers", {"drop", "reject", "pass"}))
        l.underscores = *c == "drop" ? Underscores::Drop : *c == "reject" ? Underscores::Reject : Underscores::Pass;
    set_duration("websocket_idle_timeout", l.websocket_idle_timeout, false);
    load_http2_limits(f.get("http2"), l.http2);
  }

  // limits.http2. The windows are HTTP/2's own bounds: at most 2^31-1 bytes, and a stream
  // window of at least 1 (a zero window would stall every request body).
  void load_http2_limits(const Val& v, Http2Limits& h) {
    if (!v.present() || !want_map(v, "a mapping of HTTP/2 limits")) return;
    Fields f(d_, v, {"max_concurrent_streams", "stream_window", "connection_window", "idle_timeout"});
    constexpr std::uint64_t kMaxWindow = (1ull << 31) - 1;
    if (Val x = f.get("max_concurrent_streams"); x.present())
      if (auto n = positive(x)) {
        if (*n > 100000) error(x, fmt::format("expected at most 100000 streams, got {}", *n));
        else h.max_concurrent_streams = *n;
      }
    auto window = [&](const char* key, std::uint64_t& out, std::uint64_t least) {
      if (Val x = f.get(key); x.present())
        if (auto n = size(x)) {
          if (*n < least || *n > kMaxWindow)
            error(x, fmt::format("expected a window of {} to 2GiB-1 bytes, got {}", least == 65535 ? "64KiB-1" : "1",
                                 *n));
          else out = *n;
        }
    };
    window("stream_window", h.stream_window, 1);
    // The connection window starts at 65535 (RFC 9113 §6.9.2) and is only ever raised.
    window("connection_window", h.connection_window, 65535);
    if (Val x = f.get("idle_timeout"); x.present())
      if (auto d = duration(x, false)) h.idle_timeout = *d;
  }

  void load_health_endpoint(const Val& v, Config& c) {
    if (!v.present()) return;
    if (v.node.IsScalar() && v.node.Tag() == "?" && v.node.Scalar() == "false") {
      c.health_endpoint.reset();
      return;
    }
    if (v.node.IsScalar() && valid_path(v.node.Scalar())) c.health_endpoint = v.node.Scalar();
    else expected(v, "a path starting with / or false");
  }

  void load_access_log(const Val& v, Config& c) {
    if (!v.present()) return;
    if (v.node.IsScalar() && v.node.Tag() == "?" && v.node.Scalar() == "false") c.access_log = "off";
    else if (auto s = nonempty_text(v, "stdout, stderr, off or a file path")) c.access_log = *s;
  }

  void load_log(const Val& v, LogConfig& l) {
    if (!v.present() || !want_map(v, "a mapping like {level: info, format: text}")) return;
    Fields f(d_, v, {"level", "format"});
    if (Val x = f.get("level"); x.present()) {
      static const std::vector<std::string> kLevels{"debug", "info", "warn", "error"};
      if (!x.node.IsScalar()) expected(x, "one of debug, info, warn, error");
      else if (auto level = log::parse_level(x.node.Scalar())) l.level = *level;
      else error(x, unknown_name("log level", x.node.Scalar(), kLevels));
    }
    if (Val x = f.get("format"); x.present()) {
      static const std::vector<std::string> kFormats{"text", "json"};
      if (!x.node.IsScalar()) expected(x, "text or json");
      else if (auto format = log::parse_format(x.node.Scalar())) l.format = *format;
      else error(x, unknown_name("log format", x.node.Scalar(), kFormats));
    }
  }

  // ---- services -------------------------------------------------------------------------------

  void load_services(const Val& v, Config& c) {
    constexpr std::string_view kWhat = "a mapping of service name to {instances: [...]}";
    if (!v.present()) return missing(v, kWhat);
    if (!want_map(v, kWhat)) return;
    if (v.node.size() == 0) return error(v, "expected at least one service, got an empty mapping");
    for (auto& [name, sv] : named_entries(d_, v)) {
      if (!is_name(name)) {
        error(sv, fmt::format("expected a service name of letters, digits, \"_\", \"-\" or \".\", got {}",
                              quote(name)));
        continue;
      }
      if (auto s = load_service(name, sv)) c.services.push_back(std::move(*s));
      else service_names_.push_back(name);  // known, so routes naming it get no second error
    }
    for (const auto& s : c.services) service_names_.push_back(s.name);
  }

  std::optional<ServiceConfig> load_service(const std::string& name, const Val& v) {
    if (!want_map(v, "a mapping with instances")) return std::nullopt;
    std::size_t errors_before = d_.list().size();
    ServiceConfig s;
    s.name = name;
    s.mark = v.mark;
    Fields f(d_, v,
             {"instances", "load_balancing", "hash_on", "health_check", "timeouts", "retries", "protocol", "tls",
              "preserve_host", "max_in_flight", "dns_refresh"});
    std::vector<Val> instance_urls = load_instances(f.get("instances"), s);

    Val lb = f.get("load_balancing");
    bool lb_ok = true;
    if (lb.present()) {
      static const std::vector<std::string> kBalances = {"round_robin", "weighted", "least_request", "random", "hash"};
      if (auto b = choice(lb, "load_balancing", kBalances)) {
        auto i = std::find(kBalances.begin(), kBalances.end(), *b) - kBalances.begin();
        s.load_balancing = static_cast<Balance>(i);
      } else {
        lb_ok = false;
      }
    }
    Val hash_on = f.get("hash_on");
    constexpr std::string_view kHashOn = "client_ip, header:NAME, cookie:NAME or claim:NAME";
    if (hash_on.present()) {
      if (auto h = parse_hash_on(hash_on)) s.hash_on = h;
      if (lb_ok && s.load_balancing != Balance::Hash)
        error(hash_on, "hash_on applies only with load_balancing: hash");
    } else if (s.load_balancing == Balance::Hash) {
      missing(hash_on, fmt::format("{} (load_balancing: hash needs it)", kHashOn));
    }

    if (Val hc = f.get("health_check"); hc.present()) s.health_check = load_health_check(hc);
    if (Val t = f.get("timeouts"); t.present() && want_map(t, "{connect, response, idle}")) {
      Fields tf(d_, t, {"connect", "response", "idle"});
      if (Val x = tf.get("connect"); x.present())
        if (auto d = duration(x)) s.connect_timeout = *d;
      if (Val x = tf.get("response"); x.present())
        if (auto d = duration(x)) s.response_timeout = *d;
      if (Val x = tf.get("idle"); x.present())
        if (auto d = duration(x)) s.idle_timeout = *d;
    }
    if (Val r = f.get("retries"); r.present()) load_retries(r, s.retries);
    if (Val x = f.get("protocol"); x.present()) {
      if (auto p = choice(x, "protocol", {"http1", "h2", "h2c"})) {
        s.protocol = *p == "http1" ? UpstreamProtocol::Http1 : *p == "h2" ? UpstreamProtocol::H2 : UpstreamProtocol::H2c;
        for (std::size_t i = 0; i < s.instances.size(); ++i)
          if (std::string why = instance_protocol_error(s, s.instances[i]); !why.empty()) error(instance_urls[i], why);
      }
    }
    if (Val x = f.get("tls"); x.present()) load_upstream_tls(x, s.tls);
    if (Val x = f.get("preserve_host"); x.present())
      if (auto b = boolean(x)) s.preserve_host = *b;
    if (Val x = f.get("max_in_flight"); x.present())
      if (auto n = positive(x)) s.max_in_flight = *n;
    if (Val x = f.get("dns_refresh"); x.present()) {
      auto d = duration(x);
      if (d && *d < std::chrono::seconds(1)) expected(x, "a duration of 1s or more, like 30s or 5m");
      else if (d) s.dns_refresh = *d;
    }
    if (d_.list().size() != errors_before) return std::nullopt;
    return s;
  }

  // A service's `tls:`, used by its https:// instances (a service without one may still gain
  // one through the admin API).
  void load_upstream_tls(const Val& v, UpstreamTlsConfig& t) {
    if (!want_map(v, "a mapping like {ca, verify, server_name, client_cert, client_key}")) return;
    Fields f(d_, v, {"ca", "verify", "server_name", "client_cert", "client_key"});
    t.mark = v.mark;
    if (Val x = f.get("ca"); x.present())
      if (auto s = file_path(x, "a PEM file of the CAs that sign the service's certificates")) t.ca = *s;
    if (Val x = f.get("verify"); x.present())
      if (auto b = boolean(x)) t.verify = *b;
    if (Val x = f.get("server_name"); x.present()) {
      // SNI carries DNS names only; an instance written as an IP address is checked against
      // the address itself when server_name is left out.
      if (x.node.IsScalar() && is_hostname(x.node.Scalar()) && !is_ip_literal(x.node.Scalar()) &&
          x.node.Scalar().find('_') == std::string::npos)
        t.server_name = x.node.Scalar();
      else expected(x, "a DNS name like billing.internal");
    }
    Val cert = f.get("client_cert");
    Val key = f.get("client_key");
    if (cert.present())
      if (auto s = file_path(cert, "a PEM certificate file")) t.client_cert = *s;
    if (key.present())
      if (auto s = file_path(key, "a PEM private key file")) t.client_key = *s;
    if (cert.present() && !key.present()) missing(key, "a PEM private key file (client_cert needs its key)");
    if (key.present() && !cert.present()) missing(cert, "a PEM certificate file (client_key needs its certificate)");
  }

  // Fills s.instances; returns where each one's URL stands, in the same order.
  std::vector<Val> load_instances(const Val& v, ServiceConfig& s) {
    constexpr std::string_view kWhat = "a list of URLs like http://10.0.0.5:3001 or https://api.internal";
    std::vector<Val> urls;
    if (!v.present()) {
      missing(v, kWhat);
      return urls;
    }
    if (!want_list(v, kWhat)) return urls;
    if (v.node.size() == 0) {
      error(v, "expected at least one instance, got an empty list");
      return urls;
    }
    for (const Val& item : items(v)) {
      InstanceConfig inst;
      inst.mark = item.mark;
      Val url = item;
      if (item.node.IsMap()) {
        Fields f(d_, item, {"url", "weight"});
        url = f.get("url");
        if (!url.present()) {
          missing(url, kInstanceExpected);
          continue;
        }
        if (Val w = f.get("weight"); w.present()) {
          auto n = integer(w, 1, "a positive integer weight");
          if (n && *n > 1'000'000) expected(w, "a weight from 1 to 1000000");
          else if (n) inst.weight = static_cast<std::uint32_t>(*n);
        }
      }
      if (!url.node.IsScalar()) {
        expected(url, fmt::format("{} or {{url, weight}}", kInstanceExpected));
        continue;
      }
      if (!parse_instance_url(url, inst)) continue;
      bool duplicate = std::any_of(s.instances.begin(), s.instances.end(), [&](const InstanceConfig& o) {
        return o.host == inst.host && o.port == inst.port;
      });
      if (duplicate) {
        error(url, fmt::format("duplicate instance {}; use weight to send it a larger share", quote(inst.url)));
        continue;
      }
      s.instances.push_back(std::move(inst));
      urls.push_back(url);
    }
    return urls;
  }

  bool parse_instance_url(const Val& v, InstanceConfig& inst) {
    const std::string& text = v.node.Scalar();
    std::string why;
    switch (parse_instance(text, inst, why)) {
      case InstanceUrl::Ok: return true;
      case InstanceUrl::HasPath: error(v, why); return false;
      case InstanceUrl::Invalid: break;
    }
    if (text.find("://") == std::string::npos) expected(v, kInstanceExpected);
    else error(v, fmt::format("expected {}, got {}: {}", kInstanceExpected, describe(v.node), why));
    return false;
  }

  std::optional<HashOn> parse_hash_on(const Val& v) {
    constexpr std::string_view kWhat = "client_ip, header:NAME, cookie:NAME or claim:NAME";
    if (v.node.IsScalar()) {
      std::string_view s = v.node.Scalar();
      if (s == "client_ip") return HashOn{HashOn::Kind::ClientIp, ""};
      auto colon = s.find(':');
      std::string_view kind = s.substr(0, colon);
      std::string_view name = colon == std::string_view::npos ? std::string_view() : s.substr(colon + 1);
      static const std::vector<std::pair<std::string_view, HashOn::Kind>> kKinds = {
          {"header", HashOn::Kind::Header}, {"cookie", HashOn::Kind::Cookie}, {"claim", HashOn::Kind::Claim}};
      for (auto [word, k] : kKinds)
        if (kind == word && !name.empty() && (k != HashOn::Kind::Header || is_token(name)))
          return HashOn{k, std::string(name)};
    }
    expected(v, kWhat);
    return std::nullopt;
  }

  std::optional<HealthCheckConfig> load_health_check(const Val& v) {
    if (!want_map(v, "{path, interval, timeout, healthy_after, unhealthy_after, expected_status}")) return std::nullopt;
    Fields f(d_, v, {"path", "interval", "timeout", "healthy_after", "unhealthy_after", "expected_status"});
    HealthCheckConfig hc;
    if (Val x = f.get("path"); x.present()) {
      if (x.node.IsScalar() && valid_path(x.node.Scalar())) hc.path = x.node.Scalar();
      else expected(x, "a path starting with /");
    }
    if (Val x = f.get("interval"); x.present())
      if (auto d = duration(x)) hc.interval = *d;
    if (Val x = f.get("timeout"); x.present())
      if (auto d = duration(x)) hc.timeout = *d;
    for (auto [key, out] :
         {std::pair{"healthy_after", &hc.healthy_after}, std::pair{"unhealthy_after", &hc.unhealthy_after}}) {
      if (Val x = f.get(key); x.present()) {
        auto n = integer(x, 1, "a positive number of checks");
        if (n && *n > 1000) expected(x, "a number of checks from 1 to 1000");
        else if (n) *out = static_cast<int>(*n);
      }
    }
    if (Val x = f.get("expected_status"); x.present()) {
      if (auto ranges = expected_status(x)) hc.expected_status = std::move(*ranges);
    }
    return hc;
  }

  // `200`, `"200-299"`, or a non-empty list of them; each status from 100 to 599.
  std::optional<std::vector<StatusRange>> expected_status(const Val& v) {
    constexpr std::string_view kWhat = "a status like 200, a range like \"200-299\", or a list of them";
    auto status = [](std::string_view s) -> std::optional<int> {
      if (s.size() != 3 || !all_digits(s)) return std::nullopt;
      int n = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
      if (n < 100 || n > 599) return std::nullopt;
      return n;
    };
    auto one = [&](const Val& item) -> std::optional<StatusRange> {
      if (!item.node.IsScalar()) {
        expected(item, kWhat);
        return std::nullopt;
      }
      std::string_view s = item.node.Scalar();
      auto dash = s.find('-');
      auto lo = status(s.substr(0, dash));
      auto hi = dash == std::string_view::npos ? lo : status(s.substr(dash + 1));
      if (!lo || !hi) {
        expected(item, fmt::format("{} (statuses from 100 to 599)", kWhat));
        return std::nullopt;
      }
      if (*lo > *hi) {
        error(item, fmt::format("expected a range from low to high like \"200-299\", got {}", describe(item.node)));
        return std::nullopt;
      }
      return StatusRange{*lo, *hi};
    };
    std::vector<StatusRange> out;
    if (v.node.IsSequence()) {
      if (v.node.size() == 0) {
        error(v, fmt::format("expected {}, got an empty list", kWhat));
        return std::nullopt;
      }
      bool ok = true;
      for (const Val& item : items(v)) {
        if (auto r = one(item)) out.push_back(*r);
        else ok = false;
      }
      if (!ok) return std::nullopt;
      return out;
    }
    if (auto r = one(v)) return std::vector<StatusRange>{*r};
    return std::nullopt;
  }

  void load_retries(const Val& v, RetryConfig& r) {
    if (!want_map(v, "{attempts, retry_on}")) return;
    Fields f(d_, v, {"attempts", "retry_on"});
    if (Val x = f.get("attempts"); x.present()) {
      auto n = integer(x, 0, "a number of retries (0 or more)");
      if (n && *n > 100) expected(x, "a number of retries from 0 to 100");
      else if (n) r.attempts = static_cast<int>(*n);
    }
    Val on = f.get("retry_on");
    if (!on.present() || !want_list(on, "a list of connect_failure and 5xx status codes")) return;
    r.on_connect_failure = false;
    r.on_status.clear();
    for (const Val& item : items(on)) {
      if (item.node.IsScalar()) {
        const std::string& s = item.node.Scalar();
        if (s == "connect_failure") {
          r.on_connect_failure = true;
          continue;
        }
        if (all_digits(s) && s.size() == 3 && s[0] == '5') {
          int code = std::stoi(s);
          if (std::find(r.on_status.begin(), r.on_status.end(), code) == r.on_status.end()) r.on_status.push_back(code);
          continue;
        }
        if (closest(s, {"connect_failure"}) == "connect_failure") {
          error(item, unknown_name("retry condition", s, {"connect_failure"}));
          continue;
        }
      }
      expected(item, "connect_failure or a 5xx status code like 502");
    }
  }

  // ---- policies -------------------------------------------------------------------------------

  std::vector<std::string> known_types() const {
    std::vector<std::string> out;
    for (const auto& [type, validator] : catalog_.supported) out.push_back(type);
    for (const auto& type : catalog_.planned) out.push_back(type);
    if (std::find(out.begin(), out.end(), kSecurityHeaders) == out.end()) out.emplace_back(kSecurityHeaders);
    return out;
  }

  void load_policies(const Val& v, Config& c) {
    if (!v.present() || !want_map(v, "a mapping of policy name to {type, ...}")) return;
    for (auto& [name, pv] : named_entries(d_, v)) {
      policy_names_.push_back(name);
      if (!is_name(name)) {
        error(pv, fmt::format("expected a policy name of letters, digits, \"_\", \"-\" or \".\", got {}", quote(name)));
        continue;
      }
      if (!want_map(pv, "a mapping with a type")) continue;
      Val type = Fields(d_, pv, {}, true).get("type");
      if (!type.present()) {
        missing(type, fmt::format("a policy type: {}", join(known_types())));
        continue;
      }
      auto t = nonempty_text(type, "a policy type");
      if (!t) continue;
      PolicyConfig p{name, *t, pv.node, pv.path, pv.mark, {}};
      if (auto it = catalog_.supported.find(*t); it != catalog_.supported.end()) {
        p.built = run_validator(it->second, p);
      } else if (catalog_.planned.count(*t)) {
        error(type, fmt::format("policy type {} is not yet supported", quote(*t)));
        continue;
      } else if (*t != kSecurityHeaders) {
        error(type, unknown_name("policy type", *t, known_types()));
        continue;
      }
      c.policies.push_back(std::move(p));
    }
  }

  std::any run_validator(const PolicyValidator& validate, const PolicyConfig& p) {
    if (!validate) return {};
    try {
      return validate(p, d_);
    } catch (const YAML::Exception& e) {
      Mark m = e.mark.is_null() ? p.mark : Mark{e.mark.line + 1, e.mark.column + 1};
      d_.error(m, p.path, fmt::format("invalid options: {}", e.msg));
    } catch (const std::exception& e) {
      d_.error(p.mark, p.path, fmt::format("invalid options: {}", e.what()));
    }
    return {};
  }

  // Checks a list of policy names; `chain` holds the names already run before this list.
  std::vector<std::string> policy_list(const Val& v, std::vector<std::string> chain, std::string_view chain_from) {
    std::vector<std::string> out;
    if (!want_list(v, "a list of policy names")) return out;
    std::vector<std::string> candidates = policy_names_;
    if (std::find(candidates.begin(), candidates.end(), kSecurityHeaders) == candidates.end())
      candidates.emplace_back(kSecurityHeaders);
    for (const Val& item : items(v)) {
      auto name = nonempty_text(item, "a policy name");
      if (!name) continue;
      if (std::find(candidates.begin(), candidates.end(), *name) == candidates.end()) {
        error(item, unknown_name("policy", *name, candidates));
        continue;
      }
      if (std::find(out.begin(), out.end(), *name) != out.end()) {
        error(item, fmt::format("policy {} is listed twice", quote(*name)));
        continue;
      }
      if (std::find(chain.begin(), chain.end(), *name) != chain.end()) {
        error(item, fmt::format("policy {} already runs on every route (from {})", quote(*name), chain_from));
        continue;
      }
      if (*name == kSecurityHeaders) uses_security_headers_ = true;
      out.push_back(*name);
    }
    return out;
  }

  void load_defaults(const Val& v, Config& c) {
    if (!v.present() || !want_map(v, "{policies: [...]}")) return;
    Fields f(d_, v, {"policies"});
    if (Val p = f.get("policies"); p.present()) c.default_policies = policy_list(p, {}, "");
  }

  // A route or defaults list may name security_headers without an entry under `policies:`.
  void synthesize_builtins(Config& c) {
    if (!uses_security_headers_ || c.find_policy(kSecurityHeaders)) return;
    if (std::find(policy_names_.begin(), policy_names_.end(), kSecurityHeaders) != policy_names_.end()) return;
    PolicyConfig p{std::string(kSecurityHeaders), std::string(kSecurityHeaders), YAML::Node(YAML::NodeType::Map),
                   join_path("policies", kSecurityHeaders), Mark{}, {}};
    if (auto it = catalog_.supported.find(std::string(kSecurityHeaders)); it != catalog_.supported.end())
      p.built = run_validator(it->second, p);
    c.policies.push_back(std::move(p));
  }

  // ---- routes ---------------------------------------------------------------------------------

  void load_routes(const Val& v, Config& c) {
    constexpr std::string_view kWhat = "a list of routes like {path: /api/users, service: user}";
    if (!v.present()) return missing(v, kWhat);
    if (!want_list(v, kWhat)) return;
    if (v.node.size() == 0) return error(v, "expected at least one route, got an empty list");
    std::vector<std::pair<std::string, std::string>> names;  // name -> path of the route holding it
    for (const Val& item : items(v)) {
      auto r = load_route(item, c);
      if (!r) continue;
      // Default names (the match string) may repeat, e.g. one path split by methods; a name
      // written in the file must be unique, since logs and metrics tell routes apart by it.
      auto same = std::find_if(names.begin(), names.end(), [&](const auto& n) { return n.first == r->config.name; });
      if (same != names.end() && r->name_given) {
        d_.error(r->name_mark, r->name_path,
                 fmt::format("duplicate route name {} (also {}){}", quote(r->config.name), same->second,
                             r->name_given ? "" : "; add a name to tell the routes apart"));
        continue;
      }
      if (r->name_given) names.emplace_back(r->config.name, item.path);
      c.routes.push_back(std::move(r->config));
    }
  }

  // A route and where its name came from, for the duplicate-name check.
  struct LoadedRoute {
    RouteConfig config;
    bool name_given = false;
    Mark name_mark;
    std::string name_path;
  };

  std::optional<LoadedRoute> load_route(const Val& v, const Config& c) {
    if (!want_map(v, "a route like {path: /api/users, service: user}")) return std::nullopt;
    std::size_t errors_before = d_.list().size();
    Fields f(d_, v,
             {"name", "path", "exact", "regex", "methods", "host", "headers", "strip_prefix", "service", "policies",
              "websocket", "websocket_idle_timeout"});
    LoadedRoute lr;
    RouteConfig& r = lr.config;
    r.mark = v.mark;

    // The match keys in file order: a second one is the one reported.
    std::vector<std::pair<Val, MatchKind>> matches;
    for (auto [key, kind] : {std::pair{"path", MatchKind::Prefix}, std::pair{"exact", MatchKind::Exact},
                             std::pair{"regex", MatchKind::Regex}})
      if (Val m = f.get(key); m.present()) matches.emplace_back(m, kind);
    std::stable_sort(matches.begin(), matches.end(), [](const auto& a, const auto& b) {
      return std::pair(a.first.mark.line, a.first.mark.col) < std::pair(b.first.mark.line, b.first.mark.col);
    });
    std::optional<Val> match;
    for (const auto& [m, kind] : matches) {
      if (match) {
        error(m, fmt::format("only one of path, exact or regex may be given; this route already has {}",
                             match->path.substr(match->path.rfind('.') + 1)));
        continue;
      }
      match = m;
      r.kind = kind;
      if (kind == MatchKind::Regex) {
        auto s = nonempty_text(m, "an RE2 regular expression");
        if (!s) continue;
        RE2 re(*s, RE2::Quiet);
        if (!re.ok()) error(m, fmt::format("invalid regular expression {}: {}", quote(*s), re.error()));
        else r.pattern = *s;
      } else if (m.node.IsScalar() && valid_path(m.node.Scalar())) {
        r.pattern = m.node.Scalar();
      } else {
        expected(m, "a path starting with /, like /api/users");
      }
    }
    if (!match) error(v, "expected one of path, exact or regex");

    lr.name_mark = match ? match->mark : v.mark;
    lr.name_path = match ? match->path : v.path;
    if (Val n = f.get("name"); n.present()) {
      if (auto s = nonempty_text(n, "a route name")) {
        r.name = *s;
        lr.name_given = true;
        lr.name_mark = n.mark;
        lr.name_path = n.path;
      }
    } else {
      r.name = r.pattern;
    }

    if (Val m = f.get("methods"); m.present() && want_list(m, "a list of methods like [GET, POST]")) {
      static const std::vector<std::string> kStandard = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                         "CONNECT", "OPTIONS", "TRACE", "PATCH"};
      for (const Val& item : items(m)) {
        auto s = text(item, "an HTTP method like GET");
        if (!s) continue;
        std::string upper = *s;
        for (char& ch : upper) ch = (ch >= 'a' && ch <= 'z') ? char(ch - 32) : ch;
        if (!is_token(upper)) {
          expected(item, "an HTTP method like GET");
        } else if (std::find(kStandard.begin(), kStandard.end(), upper) == kStandard.end() &&
                   !closest(upper, kStandard).empty()) {
          error(item, unknown_name("method", *s, kStandard));
        } else if (std::find(r.methods.begin(), r.methods.end(), upper) == r.methods.end()) {
          r.methods.push_back(upper);
        }
      }
    }

    if (Val h = f.get("host"); h.present()) {
      bool ok = false;
      if (h.node.IsScalar()) {
        std::string_view s = h.node.Scalar();
        std::string_view host = s.substr(0, s.rfind(':') == std::string_view::npos ? s.size() : s.rfind(':'));
        bool port_ok = host.size() == s.size() || parse_port(s.substr(host.size() + 1), false).has_value();
        if (host.substr(0, 2) == "*.") host.remove_prefix(2);
        ok = port_ok && is_hostname(host) && host.find('*') == std::string_view::npos;
      }
      if (ok) r.host = to_lower(h.node.Scalar());
      else expected(h, "a host name like api.example.com or *.example.com");
    }

    if (Val h = f.get("headers"); h.present() && want_map(h, "a mapping of header name to value or {regex: ...}")) {
      for (auto& [name, hv] : named_entries(d_, h)) {
        if (!is_token(name)) {
          error(hv, fmt::format("expected a header name, got {}", quote(name)));
          continue;
        }
        HeaderMatch hm{name, "", false};
        if (hv.node.IsMap()) {
          Fields hf(d_, hv, {"regex"});
          Val re_v = hf.get("regex");
          if (!re_v.present()) {
            missing(re_v, "an RE2 regular expression");
            continue;
          }
          auto s = text(re_v, "an RE2 regular expression");
          if (!s) continue;
          RE2 re(*s, RE2::Quiet);
          if (!re.ok()) {
            error(re_v, fmt::format("invalid regular expression {}: {}", quote(*s), re.error()));
            continue;
          }
          hm.value = *s;
          hm.regex = true;
        } else if (hv.node.IsScalar()) {
          hm.value = hv.node.Scalar();
        } else {
          expected(hv, "a header value or {regex: ...}");
          continue;
        }
        r.headers.push_back(std::move(hm));
      }
    }

    if (Val s = f.get("strip_prefix"); s.present()) {
      if (auto b = boolean(s)) {
        if (*b && match && r.kind != MatchKind::Prefix)
          error(s, "strip_prefix applies only to path routes");
        else
          r.strip_prefix = *b;
      }
    }

    Val ws = f.get("websocket");
    if (ws.present())
      if (auto b = boolean(ws)) r.websocket = *b;
    if (Val w = f.get("websocket_idle_timeout"); w.present())
      if (auto d = duration(w, false)) r.websocket_idle_timeout = *d;

    Val svc = f.get("service");
    if (!svc.present()) {
      missing(svc, "the name of a service");
    } else if (auto name = nonempty_text(svc, "the name of a service")) {
      if (std::find(service_names_.begin(), service_names_.end(), *name) == service_names_.end())
        error(svc, unknown_name("service", *name, service_names_));
      else
        r.service = *name;
    }
    // A WebSocket upgrade needs HTTP/1.1 to the service: off by default when the service speaks
    // HTTP/2 to any of its instances, an error when asked for.
    if (const ServiceConfig* s = c.find_service(r.service)) {
      auto h2 = std::find_if(s->instances.begin(), s->instances.end(),
                             [&](const InstanceConfig& i) { return speaks_http2(*s, i); });
      if (h2 != s->instances.end()) {
        if (ws.present() && r.websocket)
          error(ws, fmt::format("WebSocket needs HTTP/1.1 to the service, and service {} speaks HTTP/2 ({}); "
                                "write websocket: false or leave it out",
                                quote(s->name),
                                s->protocol == UpstreamProtocol::Http1 ? fmt::format("instance {}", quote(h2->url))
                                : s->protocol == UpstreamProtocol::H2  ? std::string("protocol h2")
                                                                       : std::string("protocol h2c")));
        r.websocket = false;
      }
    }

    if (Val p = f.get("policies"); p.present()) r.policies = policy_list(p, c.default_policies, "defaults.policies");

    if (d_.list().size() != errors_before) return std::nullopt;
    return lr;
  }

  const PolicyCatalog& catalog_;
  std::vector<std::string> service_names_;  // every service defined, valid or not
  std::vector<std::string> policy_names_;   // every policy entry defined, valid or not
  bool uses_security_headers_ = false;
};

}  // namespace

InstanceUrl parse_instance(std::string_view text, InstanceConfig& inst, std::string& why) {
  auto url = Url::parse(text, &why);
  if (!url) return InstanceUrl::Invalid;
  if (url->scheme != "http" && url->scheme != "https" && url->scheme != "h2c") {
    why = "the scheme is not http://, https:// or h2c://";
    return InstanceUrl::Invalid;
  }
  if (url->has_userinfo) {
    why = "an instance URL has no user or password";
    return InstanceUrl::Invalid;
  }
  if (url->path.size() > 1 || url->query || url->has_fragment) {
    why = fmt::format("expected {} with no path, got {}", kInstanceExpected, quote(text));
    return InstanceUrl::HasPath;
  }
  inst.url = std::string(text);
  inst.host = url->host;
  inst.tls = url->scheme == "https";
  inst.h2c = url->scheme == "h2c";
  inst.port = url->port.value_or(inst.tls ? 443 : 80);
  return InstanceUrl::Ok;
}

bool speaks_http2(const ServiceConfig& s, const InstanceConfig& inst) {
  return s.protocol != UpstreamProtocol::Http1 || inst.h2c;
}

std::string instance_protocol_error(const ServiceConfig& s, const InstanceConfig& inst) {
  switch (s.protocol) {
    case UpstreamProtocol::Http1: return {};  // each instance speaks what its scheme says
    case UpstreamProtocol::H2:
      if (inst.tls) return {};
      return fmt::format("{} is {}, but protocol h2 is HTTP/2 over TLS (ALPN h2) and needs https:// instances; "
                         "for cleartext HTTP/2 write protocol: h2c",
                         quote(inst.url), inst.h2c ? "cleartext HTTP/2" : "a cleartext http:// instance");
    case UpstreamProtocol::H2c:
      if (!inst.tls) return {};
      return fmt::format("{} is an https:// instance, but protocol h2c is cleartext HTTP/2 and needs http:// or "
                         "h2c:// instances; for HTTP/2 over TLS write protocol: h2",
                         quote(inst.url));
  }
  return {};
}

std::string registration_error(const Config& c, const ServiceConfig& s, const InstanceConfig& inst) {
  if (std::string why = instance_protocol_error(s, inst); !why.empty()) return why;
  if (speaks_http2(s, inst))
    for (const RouteConfig& r : c.routes)
      if (r.service == s.name && r.websocket)
        return fmt::format("{} speaks HTTP/2, and route {} lets WebSocket upgrades through to {} (they need "
                           "HTTP/1.1); set websocket: false on the route first",
                           inst.url, quote(r.name), quote(s.name));
  return {};
}

LoadResult load_string(const std::string& text, const std::string& file_name, const PolicyCatalog& catalog) {
  SubstitutedText sub = substitute_env(text);
  Diagnostics d(file_name);
  Config config;
  try {
    YAML::Node root = YAML::Load(sub.text);
    config = Loader(d, catalog).load(root, file_name);
    config.document = root;
  } catch (const YAML::Exception& e) {
    Mark m = e.mark.is_null() ? Mark{} : Mark{e.mark.line + 1, e.mark.column + 1};
    d.error(m, "(yaml)", e.msg.empty() ? std::string(e.what()) : e.msg);
  }

  LoadResult result;
  for (const EnvError& e : sub.errors) result.errors.push_back(Diagnostic{file_name, e.mark, e.field.empty() ? "(env)" : e.field, e.message});
  for (Diagnostic diag : d.list()) {
    if (sub.caused_by_error(diag.mark)) continue;
    diag.mark = sub.positions.to_original(diag.mark);
    result.errors.push_back(std::move(diag));
  }
  std::stable_sort(result.errors.begin(), result.errors.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::pair(a.mark.line, a.mark.col) < std::pair(b.mark.line, b.mark.col);
  });
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

LoadResult load_file(const std::string& path, const PolicyCatalog& catalog) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return LoadResult{std::nullopt, {Diagnostic{path, {}, "(file)", "cannot read the file: it is a directory"}}};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::string why = std::strerror(errno);
    return LoadResult{std::nullopt, {Diagnostic{path, {}, "(file)", fmt::format("cannot read the file: {}", why)}}};
  }
  // Read at most kMaxConfigBytes (+1 to tell): a device such as /dev/zero must not make a
  // check read until memory runs out.
  constexpr std::size_t kMaxConfigBytes = 16 * 1024 * 1024;
  std::string text;
  char chunk[65536];
  while (in && text.size() <= kMaxConfigBytes) {
    in.read(chunk, sizeof chunk);
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) {
    return LoadResult{std::nullopt, {Diagnostic{path, {}, "(file)", "cannot read the file: read error"}}};
  }
  if (text.size() > kMaxConfigBytes) {
    return LoadResult{std::nullopt, {Diagnostic{path, {}, "(file)", "cannot read the file: larger than 16 MiB"}}};
  }
  return load_string(text, path, catalog);
}

}  // namespace gh::config
