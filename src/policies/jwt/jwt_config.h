// JwtConfig: the options of a `type: jwt` entry, parsed and validated (SPEC §2).
// Thread: plain data. parse_jwt runs on the control thread at load time; it may read
// `public_key_file` from disk (never on a worker).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace gh::policies {

// The JWS algorithms gatehouse verifies. `none` is never one of them.
enum class JwtAlg { HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA };

std::string_view alg_name(JwtAlg a) noexcept;
std::optional<JwtAlg> parse_alg(std::string_view name) noexcept;
bool is_hmac(JwtAlg a) noexcept;

// What kind of key verifies the tokens; decides the default algorithms.
enum class JwtKeyKind { None, Secret, Rsa, RsaPss, EcP256, EcP384, EcP521, Ed25519, Jwks };

// One place a token may come from (`token_from`): `header` (Authorization: Bearer),
// `query:NAME` or `cookie:NAME`.
struct TokenSource {
  enum class Kind { Header, Query, Cookie };
  Kind kind = Kind::Header;
  std::string name;  // the query parameter's (decoded) name or the cookie's; empty for Header
  bool operator==(const TokenSource&) const = default;
};

// How a source is written in the config: "header", "query:access_token", "cookie:session".
std::string describe(const TokenSource& s);

struct JwtConfig {
  JwtKeyKind key_kind = JwtKeyKind::None;
  std::string secret;          // `secret`: the HMAC key, as bytes
  std::string public_key_pem;  // `public_key`, or the contents of `public_key_file`
  std::string public_key_file;
  std::string jwks_url;
  std::vector<JwtAlg> algorithms;      // never empty after a successful parse
  std::optional<std::string> issuer;
  std::vector<std::string> audience;   // any one of them must be in `aud`; empty = not checked
  std::chrono::milliseconds leeway = std::chrono::seconds(30);
  bool require_exp = true;
  std::vector<std::pair<std::string, std::string>> forward_claims;  // claim -> header name
  std::chrono::milliseconds jwks_refresh = std::chrono::minutes(5);
  // Where the token is looked for, in order; never empty after a successful parse.
  std::vector<TokenSource> token_from = {TokenSource{}};
  // Not configurable from YAML (SPEC §2 fixes it at 30s); tests shorten it.
  std::chrono::milliseconds jwks_min_refetch = std::chrono::seconds(30);
  // How long a request whose kid is unknown waits for the refetch it triggered.
  std::chrono::milliseconds jwks_wait = std::chrono::seconds(2);
};

// Owns one parsed OpenSSL public key.
struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* p) const noexcept;
};
using PublicKey = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

// Parses a PEM public key (SubjectPublicKeyInfo, PKCS#1 RSA public key, or a certificate).
// On failure returns null and sets `error` to OpenSSL's reason.
PublicKey load_public_key(std::string_view pem, std::string& error);
// The kind of a loaded key, or None when gatehouse cannot verify with it (`error` says why).
JwtKeyKind key_kind_of(const EVP_PKEY* key, std::string& error);

// The algorithms a key kind verifies: the default of `algorithms`.
std::vector<JwtAlg> default_algorithms(JwtKeyKind kind);
// Whether `alg` can be verified with a key of `kind`.
bool alg_fits_key(JwtAlg alg, JwtKeyKind kind) noexcept;

// Parses one entry; every problem goes to `diag` at its field path (`policies.NAME.secret`).
// The result is usable only when no error was added.
JwtConfig parse_jwt(const config::PolicyConfig& entry, config::Diagnostics& diag);

}  // namespace gh::policies
