#include "policies/jwt/jwt_config.h"

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <optional>

#include "config/reader.h"
#include "core/strings.h"
#include "policies/jwt/jwks.h"

namespace gh::policies {

namespace {

struct AlgInfo {
  JwtAlg alg;
  std::string_view name;
};
constexpr std::array<AlgInfo, 13> kAlgs = {{
    {JwtAlg::HS256, "HS256"}, {JwtAlg::HS384, "HS384"}, {JwtAlg::HS512, "HS512"},
    {JwtAlg::RS256, "RS256"}, {JwtAlg::RS384, "RS384"}, {JwtAlg::RS512, "RS512"},
    {JwtAlg::PS256, "PS256"}, {JwtAlg::PS384, "PS384"}, {JwtAlg::PS512, "PS512"},
    {JwtAlg::ES256, "ES256"}, {JwtAlg::ES384, "ES384"}, {JwtAlg::ES512, "ES512"},
    {JwtAlg::EdDSA, "EdDSA"},
}};

std::string openssl_reason() {
  unsigned long last = 0;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) last = e;
  if (last == 0) return "no key found";
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

// As the loader describes a value (config/reader.h's dialect).
std::string describe(const YAML::Node& n) { return config::describe_value(n); }

std::string kind_name(JwtKeyKind k) {
  switch (k) {
    case JwtKeyKind::Secret: return "an HMAC secret";
    case JwtKeyKind::Rsa: return "an RSA key";
    case JwtKeyKind::RsaPss: return "an RSA-PSS key";
    case JwtKeyKind::EcP256: return "a P-256 key";
    case JwtKeyKind::EcP384: return "a P-384 key";
    case JwtKeyKind::EcP521: return "a P-521 key";
    case JwtKeyKind::Ed25519: return "an Ed25519 key";
    case JwtKeyKind::Jwks: return "a JWKS";
    case JwtKeyKind::None: break;
  }
  return "no key";
}

bool valid_field_name(std::string_view s) { return is_token(s); }

// Fields the proxy itself owns or that change the message's framing: never set from a claim.
bool reserved_header(std::string_view name) {
  for (std::string_view r : {"host", "content-length", "transfer-encoding", "connection", "keep-alive",
                             "proxy-connection", "te", "trailer", "upgrade", "authorization"})
    if (iequals(name, r)) return true;
  return false;
}

// A PEM public key or certificate takes a few KiB.
constexpr std::size_t kMaxKeyFileBytes = 1024 * 1024;

// Reads `public_key_file`. Only a regular file of at most kMaxKeyFileBytes: reading /dev/zero
// would never end, and opening a FIFO would block until someone writes to it.
std::optional<std::string> read_key_file(const std::string& file, std::string& out) {
  const std::string quoted = "\"" + file + "\"";
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(file, ec);
  if (ec || !std::filesystem::exists(st)) return "cannot read " + quoted;
  if (!std::filesystem::is_regular_file(st)) return quoted + " is not a regular file";
  std::ifstream f(file, std::ios::binary);
  if (!f) return "cannot read " + quoted;
  out.resize(kMaxKeyFileBytes + 1);
  f.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<std::size_t>(f.gcount()));
  if (f.bad()) return "cannot read " + quoted;
  if (out.size() > kMaxKeyFileBytes) return quoted + " is larger than 1 MiB; expected a PEM public key";
  if (out.empty()) return quoted + " is empty";
  return std::nullopt;
}

// A query parameter's name: printable, and none of the characters that delimit it.
bool valid_query_name(std::string_view s) {
  for (unsigned char c : s)
    if (c <= 0x20 || c == 0x7f || c == '&' || c == '=' || c == '#') return false;
  return !s.empty();
}

// `token_from`: a list of `header`, `query:NAME`, `cookie:NAME` (a single one may be given
// without the list). On any error `out` keeps its default.
void parse_token_from(const YAML::Node& v, const std::string& path, config::Diagnostics& diag,
                      std::vector<TokenSource>& out) {
  std::vector<YAML::Node> items;
  if (v.IsScalar()) {
    items.push_back(v);
  } else if (v.IsSequence() && v.size() > 0) {
    for (const auto& it : v) items.push_back(it);
  } else {
    diag.error(v, path, "expected a non-empty list of token sources like [header, query:access_token], got " +
                            describe(v));
    return;
  }
  std::vector<TokenSource> parsed;
  bool ok = true;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const YAML::Node& it = items[i];
    const std::string ipath = v.IsSequence() ? path + "[" + std::to_string(i) + "]" : path;
    const std::string text = it.IsScalar() ? it.Scalar() : "";
    const std::size_t colon = text.find(':');
    const std::string kind = text.substr(0, colon);
    const std::string name = colon == std::string::npos ? "" : text.substr(colon + 1);
    TokenSource s;
    std::optional<std::string> problem;
    if (kind == "header") {
      if (colon != std::string::npos)
        problem = "header takes no name: the token is read from Authorization: Bearer, got " + describe(it);
    } else if (kind == "query" || kind == "cookie") {
      s.kind = kind == "query" ? TokenSource::Kind::Query : TokenSource::Kind::Cookie;
      s.name = name;
      const char* example = kind == "query" ? "query:access_token" : "cookie:access_token";
      if (colon == std::string::npos || name.empty())
        problem = kind + " needs a name, e.g. " + example + ", got " + describe(it);
      else if (s.kind == TokenSource::Kind::Query && !valid_query_name(name))
        problem = "a query parameter name cannot hold spaces, control characters, &, = or #, got " + describe(it);
      else if (s.kind == TokenSource::Kind::Cookie && !is_token(name))
        problem = "a cookie name is a token (letters, digits and !#$%&'*+-.^_`|~), got " + describe(it);
    } else {
      std::string hint = it.IsScalar() ? suggest(kind, {"header", "query", "cookie"}) : "";
      problem = "unknown token source " + describe(it) + "; expected header, query:NAME or cookie:NAME" +
                (hint.empty() || hint == kind ? "" : " (did you mean \"" + hint + "\"?)");
    }
    if (!problem) {
      for (const auto& prev : parsed)
        if (prev == s) problem = describe(s) + " is listed twice";
    }
    if (problem) {
      diag.error(it, ipath, *problem);
      ok = false;
      continue;
    }
    parsed.push_back(std::move(s));
  }
  if (ok) out = std::move(parsed);
}

}  // namespace

std::string describe(const TokenSource& s) {
  switch (s.kind) {
    case TokenSource::Kind::Header: return "header";
    case TokenSource::Kind::Query: return "query:" + s.name;
    case TokenSource::Kind::Cookie: return "cookie:" + s.name;
  }
  return "?";
}

std::string_view alg_name(JwtAlg a) noexcept {
  for (const auto& i : kAlgs)
    if (i.alg == a) return i.name;
  return "?";
}

std::optional<JwtAlg> parse_alg(std::string_view name) noexcept {
  for (const auto& i : kAlgs)
    if (i.name == name) return i.alg;
  return std::nullopt;
}

bool is_hmac(JwtAlg a) noexcept { return a == JwtAlg::HS256 || a == JwtAlg::HS384 || a == JwtAlg::HS512; }

void EvpPkeyDeleter::operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }

PublicKey load_public_key(std::string_view pem, std::string& error) {
  ERR_clear_error();
  EVP_PKEY* pkey = nullptr;
  // SubjectPublicKeyInfo ("PUBLIC KEY") and PKCS#1 ("RSA PUBLIC KEY").
  OSSL_DECODER_CTX* dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", nullptr, nullptr, EVP_PKEY_PUBLIC_KEY,
                                                         nullptr, nullptr);
  if (dctx != nullptr) {
    const auto* data = reinterpret_cast<const unsigned char*>(pem.data());
    std::size_t len = pem.size();
    if (OSSL_DECODER_from_data(dctx, &data, &len) != 1) pkey = nullptr;
    OSSL_DECODER_CTX_free(dctx);
  }
  if (pkey != nullptr) {
    ERR_clear_error();
    return PublicKey(pkey);
  }
  std::string reason = openssl_reason();
  // A certificate: its subject public key.
  if (pem.find("-----BEGIN CERTIFICATE-----") != std::string_view::npos) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* cert = bio ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    if (cert != nullptr) {
      pkey = X509_get_pubkey(cert);
      X509_free(cert);
      if (pkey != nullptr) {
        ERR_clear_error();
        return PublicKey(pkey);
      }
    }
    reason = openssl_reason();
  }
  error = reason;
  return nullptr;
}

JwtKeyKind key_kind_of(const EVP_PKEY* key, std::string& error) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS: {
      int bits = EVP_PKEY_get_bits(key);
      if (bits < 2048) {
        error = "RSA key of " + std::to_string(bits) + " bits is too small; expected at least 2048 bits";
        return JwtKeyKind::None;
      }
      return EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? JwtKeyKind::Rsa : JwtKeyKind::RsaPss;
    }
    case EVP_PKEY_EC: {
      char group[64] = {};
      std::size_t len = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1) {
        error = "EC key without a named curve";
        return JwtKeyKind::None;
      }
      std::string_view g(group, len);
      if (g == "prime256v1" || g == "P-256") return JwtKeyKind::EcP256;
      if (g == "secp384r1" || g == "P-384") return JwtKeyKind::EcP384;
      if (g == "secp521r1" || g == "P-521") return JwtKeyKind::EcP521;
      error = "EC curve " + std::string(g) + " is not supported; expected P-256, P-384 or P-521";
      return JwtKeyKind::None;
    }
    case EVP_PKEY_ED25519: return JwtKeyKind::Ed25519;
    default: break;
  }
  error = "unsupported key type; expected an RSA, EC (P-256, P-384, P-521) or Ed25519 public key";
  return JwtKeyKind::None;
}

std::vector<JwtAlg> default_algorithms(JwtKeyKind kind) {
  using A = JwtAlg;
  switch (kind) {
    case JwtKeyKind::Secret: return {A::HS256, A::HS384, A::HS512};
    case JwtKeyKind::Rsa: return {A::RS256, A::RS384, A::RS512, A::PS256, A::PS384, A::PS512};
    case JwtKeyKind::RsaPss: return {A::PS256, A::PS384, A::PS512};
    case JwtKeyKind::EcP256: return {A::ES256};
    case JwtKeyKind::EcP384: return {A::ES384};
    case JwtKeyKind::EcP521: return {A::ES512};
    case JwtKeyKind::Ed25519: return {A::EdDSA};
    case JwtKeyKind::Jwks:
      return {A::RS256, A::RS384, A::RS512, A::PS256, A::PS384, A::PS512, A::ES256, A::ES384, A::ES512, A::EdDSA};
    case JwtKeyKind::None: break;
  }
  return {};
}

bool alg_fits_key(JwtAlg alg, JwtKeyKind kind) noexcept {
  using A = JwtAlg;
  switch (kind) {
    case JwtKeyKind::Secret: return is_hmac(alg);
    case JwtKeyKind::Rsa:
      return alg == A::RS256 || alg == A::RS384 || alg == A::RS512 || alg == A::PS256 || alg == A::PS384 ||
             alg == A::PS512;
    case JwtKeyKind::RsaPss: return alg == A::PS256 || alg == A::PS384 || alg == A::PS512;
    case JwtKeyKind::EcP256: return alg == A::ES256;
    case JwtKeyKind::EcP384: return alg == A::ES384;
    case JwtKeyKind::EcP521: return alg == A::ES512;
    case JwtKeyKind::Ed25519: return alg == A::EdDSA;
    case JwtKeyKind::Jwks: return !is_hmac(alg);
    case JwtKeyKind::None: break;
  }
  return false;
}

JwtConfig parse_jwt(const config::PolicyConfig& entry, config::Diagnostics& diag) {
  JwtConfig out;
  const YAML::Node& n = entry.options;
  if (!n || !n.IsMap()) {
    diag.error(n, entry.path, "expected a mapping with type: jwt and a key (secret, public_key, public_key_file or jwks_url)");
    return out;
  }
  static const std::vector<std::string> kKeys = {"type",     "secret",      "public_key",     "public_key_file",
                                                 "jwks_url", "jwks_refresh", "algorithms",     "issuer",
                                                 "audience", "leeway",      "require_exp",    "forward_claims",
                                                 "token_from"};
  auto path_of = [&](std::string_view key) { return entry.path + "." + std::string(key); };
  // Every option is read with the config's own readers (config/reader.h).
  config::OptionReader r(entry, diag);
  auto string_value = [&](const config::Val& v, std::string& dst) {
    auto s = r.nonempty_text(v, "a non-empty string");
    if (s) dst = std::move(*s);
    return s.has_value();
  };
  auto duration_value = [&](const config::Val& v, bool allow_zero, std::chrono::milliseconds& dst) {
    if (auto d = r.duration(v, allow_zero)) dst = *d;
  };

  // The key: exactly one of four options.
  std::vector<std::string> key_options;
  YAML::Node algorithms_node;
  bool have_algorithms = false;
  bool have_refresh = false;
  YAML::Node refresh_node;
  for (const auto& kv : n) {
    std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    std::string path = path_of(key);
    const config::Val val{v, config::mark_of(v), path};
    if (key == "type") continue;
    if (key == "secret") {
      key_options.push_back(key);
      string_value(val, out.secret);
    } else if (key == "public_key") {
      key_options.push_back(key);
      string_value(val, out.public_key_pem);
    } else if (key == "public_key_file") {
      key_options.push_back(key);
      if (string_value(val, out.public_key_file)) {
        if (auto problem = read_key_file(out.public_key_file, out.public_key_pem)) diag.error(v, path, *problem);
      }
    } else if (key == "jwks_url") {
      key_options.push_back(key);
      if (string_value(val, out.jwks_url)) {
        std::string error;
        if (!parse_http_url(out.jwks_url, error)) {
          diag.error(v, path, error + ", got " + describe(v));
          out.jwks_url.clear();
        }
      }
    } else if (key == "jwks_refresh") {
      have_refresh = true;
      refresh_node = v;
      duration_value(val, false, out.jwks_refresh);
    } else if (key == "algorithms") {
      algorithms_node = v;
      have_algorithms = true;
    } else if (key == "issuer") {
      std::string s;
      if (string_value(val, s)) out.issuer = s;
    } else if (key == "audience") {
      if (v.IsScalar() && !v.Scalar().empty()) {
        out.audience.push_back(v.Scalar());
      } else if (v.IsSequence() && v.size() > 0) {
        for (std::size_t i = 0; i < v.size(); ++i) {
          std::string s;
          if (string_value(config::Val{v[i], config::mark_of(v[i]), path + "[" + std::to_string(i) + "]"}, s))
            out.audience.push_back(s);
        }
      } else {
        diag.error(v, path, "expected an audience string or a non-empty list of them, got " + describe(v));
      }
    } else if (key == "leeway") {
      duration_value(val, true, out.leeway);
    } else if (key == "require_exp") {
      if (auto b = r.boolean(val)) out.require_exp = *b;
    } else if (key == "forward_claims") {
      if (!v.IsMap()) {
        diag.error(v, path, "expected a mapping of claim name to header name, got " + describe(v));
        continue;
      }
      for (const auto& c : v) {
        std::string claim = c.first.as<std::string>();
        std::string cpath = path + "." + claim;
        std::string header;
        if (claim.empty()) {
          diag.error(c.first, cpath, "expected a claim name");
        } else if (!c.second.IsScalar() || !valid_field_name(c.second.Scalar())) {
          diag.error(c.second, cpath, "expected a header name like X-User-Id, got " + describe(c.second));
        } else if (reserved_header(c.second.Scalar())) {
          diag.error(c.second, cpath, "cannot forward a claim as " + c.second.Scalar());
        } else {
          out.forward_claims.emplace_back(claim, c.second.Scalar());
        }
      }
    } else if (key == "token_from") {
      parse_token_from(v, path, diag, out.token_from);
    } else {
      r.unknown_option(kv.first, key, kKeys);
    }
  }

  if (key_options.empty()) {
    diag.error(n, entry.path, "missing key; expected one of secret, public_key, public_key_file or jwks_url");
  } else if (key_options.size() > 1) {
    diag.error(n[key_options[1]], path_of(key_options[1]),
               "only one of secret, public_key, public_key_file or jwks_url may be given; " + key_options[0] +
                   " is already set");
  } else if (key_options[0] == "secret") {
    if (!out.secret.empty()) out.key_kind = JwtKeyKind::Secret;
  } else if (key_options[0] == "jwks_url") {
    if (!out.jwks_url.empty()) out.key_kind = JwtKeyKind::Jwks;
  } else if (!out.public_key_pem.empty()) {
    const std::string& which = key_options[0];
    std::string error;
    PublicKey key = load_public_key(out.public_key_pem, error);
    if (!key) {
      diag.error(n[which], path_of(which), "not a PEM public key (OpenSSL: " + error + ")");
    } else {
      out.key_kind = key_kind_of(key.get(), error);
      if (out.key_kind == JwtKeyKind::None) diag.error(n[which], path_of(which), error);
    }
  }
  if (have_refresh && out.key_kind != JwtKeyKind::Jwks && key_options.size() == 1 && key_options[0] != "jwks_url")
    diag.error(refresh_node, path_of("jwks_refresh"), "jwks_refresh applies only with jwks_url");

  // Algorithms: default from the key; an explicit list must fit the key.
  if (have_algorithms) {
    const std::string path = path_of("algorithms");
    std::vector<YAML::Node> items;
    if (algorithms_node.IsScalar()) items.push_back(algorithms_node);
    else if (algorithms_node.IsSequence() && algorithms_node.size() > 0)
      for (const auto& it : algorithms_node) items.push_back(it);
    else
      diag.error(algorithms_node, path, "expected a non-empty list of algorithms like [RS256, ES256], got " +
                                            describe(algorithms_node));
    static const std::vector<std::string> kNames = [] {
      std::vector<std::string> v;
      for (const auto& i : kAlgs) v.emplace_back(i.name);
      return v;
    }();
    for (std::size_t i = 0; i < items.size(); ++i) {
      const YAML::Node& it = items[i];
      std::string ipath = algorithms_node.IsSequence() ? path + "[" + std::to_string(i) + "]" : path;
      std::string name = it.IsScalar() ? it.Scalar() : "";
      if (iequals(name, "none")) {
        diag.error(it, ipath, "the \"none\" algorithm is never accepted");
        continue;
      }
      auto alg = parse_alg(name);
      if (!alg) {
        std::string hint = suggest(name, kNames);
        diag.error(it, ipath,
                   "unknown algorithm " + describe(it) +
                       (hint.empty() ? "; expected one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, "
                                       "PS512, ES256, ES384, ES512, EdDSA"
                                     : "; did you mean \"" + hint + "\"?"));
        continue;
      }
      if (out.key_kind != JwtKeyKind::None && !alg_fits_key(*alg, out.key_kind)) {
        if (is_hmac(*alg))
          diag.error(it, ipath,
                     std::string(alg_name(*alg)) + " cannot be used with " + kind_name(out.key_kind) +
                         ": an HMAC algorithm with a public key would let anyone who has the key sign tokens");
        else
          diag.error(it, ipath, std::string(alg_name(*alg)) + " cannot be verified with " + kind_name(out.key_kind));
        continue;
      }
      bool dup = false;
      for (JwtAlg a : out.algorithms) dup |= a == *alg;
      if (!dup) out.algorithms.push_back(*alg);
    }
  } else {
    out.algorithms = default_algorithms(out.key_kind);
  }
  return out;
}

}  // namespace gh::policies
