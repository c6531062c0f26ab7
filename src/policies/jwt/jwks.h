// JWKS for the jwt policy (SPEC §2 `jwks_url`, RFC 7517, RFC 7518 §6): an immutable KeySet parsed
// from a JWK Set document, and a JwksSource that fetches it over plain HTTP/1.1 and keeps it fresh.
//
// Thread: a JwksSource owns one io_context and one background thread; every fetch runs there, so
// a gateway worker never waits on the network. The current KeySet is published as a
// std::atomic<std::shared_ptr<const KeySet>>: readers (any worker) load it, the fetch thread
// stores a whole new set; nobody mutates a published set. request_refresh() may be called from
// any thread; it never blocks.
// Failure: a failed or malformed fetch keeps the previous key set and logs one line.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "policies/jwt/jwt_config.h"

namespace gh::policies {

// Strict base64url (RFC 7515 §2): URL-safe alphabet, no padding, unused low bits zero.
bool base64url_decode(std::string_view in, std::string& out);

// `http://host[:port][/path[?query]]`, split. Only plain http is fetched.
struct HttpUrl {
  std::string host;      // without brackets for an IPv6 literal
  std::string port = "80";
  std::string target = "/";  // path and query, as sent in the request line
  std::string host_header;   // host[:port] as given, for the Host field
};
// On failure returns nullopt and sets `error` (e.g. "https JWKS URLs are not yet supported").
std::optional<HttpUrl> parse_http_url(std::string_view url, std::string& error);

// One usable verification key of a JWK Set.
struct Jwk {
  std::string kid;
  JwtKeyKind kind = JwtKeyKind::None;
  PublicKey key;
  std::vector<JwtAlg> algorithms;  // the JWK's `alg` when given, else every algorithm of its kind
  bool allows(JwtAlg a) const noexcept;
};

// An immutable key set: kid -> key. Built once, then shared read-only.
class KeySet {
 public:
  static constexpr std::size_t kMaxKeys = 100;
  // Parses a JWK Set document. Keys gatehouse cannot use (oct, unknown kty or crv, `use` other
  // than sig, an `alg` that does not fit, RSA under 2048 bits, bad coordinates) are skipped and
  // listed in `skipped`. Returns null when the document is not a JWK Set at all (`error` says why).
  static std::shared_ptr<const KeySet> parse(std::string_view json_text, std::uint64_t generation,
                                             std::string& error, std::vector<std::string>* skipped = nullptr);

  // The key named `kid`, or null. A token without a kid (empty) matches only a set with a single key.
  const Jwk* find(std::string_view kid) const;
  std::size_t size() const noexcept { return keys_.size(); }
  std::uint64_t generation() const noexcept { return generation_; }

 private:
  std::vector<Jwk> keys_;
  std::unordered_map<std::string_view, std::size_t> by_kid_;  // views into keys_[i].kid
  std::uint64_t generation_ = 0;
};

class JwksSource {
 public:
  struct Options {
    std::string url;
    std::chrono::milliseconds refresh = std::chrono::minutes(5);
    std::chrono::milliseconds min_refetch = std::chrono::seconds(30);  // between fetches for unknown kids
    std::chrono::milliseconds timeout = std::chrono::seconds(5);       // connect + request + response
    std::size_t max_bytes = 1024 * 1024;                               // response body cap
  };

  // Starts the background thread and the first fetch. REQUIRES: parse_http_url(options.url) succeeds.
  explicit JwksSource(Options options);
  ~JwksSource();  // cancels any fetch and joins the thread
  JwksSource(const JwksSource&) = delete;
  JwksSource& operator=(const JwksSource&) = delete;

  // The latest key set; null until the first successful fetch. Never blocks on a fetch.
  std::shared_ptr<const KeySet> current() const { return current_.load(std::memory_order_acquire); }

  // Asks for a refetch because a token named a kid that the set lacks. Single-flight and rate
  // limited: starts a fetch only when none is running and none started within min_refetch.
  // Returns true when a fetch is running (new or already in flight) whose end is worth waiting
  // for; false when the rate limit refused.
  bool request_refresh();

  std::uint64_t fetches_started() const noexcept { return started_.load(std::memory_order_relaxed); }
  // Fetches that ended, successfully or not; a waiter compares it before and after.
  std::uint64_t fetches_finished() const noexcept { return finished_.load(std::memory_order_acquire); }

 private:
  struct Impl;
  Options opt_;
  HttpUrl url_;
  std::atomic<std::shared_ptr<const KeySet>> current_;
  std::atomic<bool> in_flight_{false};
  std::atomic<std::int64_t> last_start_ns_{0};  // steady_clock, of the latest fetch start
  std::atomic<std::uint64_t> started_{0};
  std::atomic<std::uint64_t> finished_{0};
  std::unique_ptr<Impl> impl_;  // io_context, timer, last body: touched only by the thread
  std::thread thread_;
};

}  // namespace gh::policies
