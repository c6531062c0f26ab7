// JWKS for the jwt policy (SPEC §2 `jwks_url`, RFC 7517, RFC 7518 §6): an immutable KeySet parsed
// from a JWK Set document, and a JwksSource that fetches it over plain HTTP/1.1 and keeps it fresh.
//
// Thread: every fetch runs on the executor given at construction: the control io_context (the
// main thread's loop), never a thread of its own, and never a worker, so a gateway worker never
// waits on the network. The current KeySet is published as a
// std::atomic<std::shared_ptr<const KeySet>>: readers (any worker) load it, the fetch stores a
// whole new set; nobody mutates a published set. request_refresh() may be called from any
// thread; it never blocks. The source may be destroyed on any thread (the last snapshot that
// holds it may die on a worker): it posts its own stop to the control executor, and the fetch
// coroutines keep the shared state they use alive until they end.
// Time: the refetch rate limit reads the Clock given at construction (a FakeClock in tests);
// the periodic refresh and the fetch deadline are timers on the control loop.
// Failure: a failed or malformed fetch keeps the previous key set and logs one line.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "policies/jwt/jwt_config.h"

namespace gh::policies {

// Strict base64url (RFC 7515 §2): URL-safe alphabet, no padding, unused low bits zero.
bool base64url_decode(std::string_view in, std::string& out);

// `http[s]://host[:port][/path[?query]]`, split. https is fetched over TLS verified against the
// system's CAs (clients/http1 fetch).
struct HttpUrl {
  std::string host;      // without brackets for an IPv6 literal
  std::string port = "80";
  std::string target = "/";  // path and query, as sent in the request line
  std::string host_header;   // host[:port] as given, for the Host field
};
// On failure returns nullopt and sets `error` (e.g. "the URL has a fragment").
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

// What one key source fetches and how often. Two policies with equal options share a source.
struct JwksOptions {
  std::string url;
  std::chrono::milliseconds refresh = std::chrono::minutes(5);
  std::chrono::milliseconds min_refetch = std::chrono::seconds(30);  // between fetches for unknown kids
  std::chrono::milliseconds timeout = std::chrono::seconds(5);       // connect + request + response
  std::size_t max_bytes = 1024 * 1024;                               // response body cap
  bool operator==(const JwksOptions&) const = default;
};

class JwksSource {
 public:
  using Options = JwksOptions;

  // Spawns the refresher on `control`: the first fetch starts when that loop runs, then one
  // every `refresh`. REQUIRES: parse_http_url(options.url) succeeds; `clock` outlives every
  // fetch (the process clock, or a test's FakeClock).
  JwksSource(Options options, boost::asio::any_io_executor control, const core::Clock& clock = core::Clock::real());
  // Stops the refresher (posted to the control executor); a fetch in flight ends by its deadline
  // and publishes nothing. REQUIRES: the control io_context is still alive.
  ~JwksSource();
  JwksSource(const JwksSource&) = delete;
  JwksSource& operator=(const JwksSource&) = delete;

  const Options& options() const noexcept;
  // The latest key set; null until the first successful fetch. Never blocks on a fetch.
  std::shared_ptr<const KeySet> current() const;

  // Asks for a refetch because a token named a kid that the set lacks. Single-flight and rate
  // limited: starts a fetch only when none is running and none started within min_refetch.
  // Returns true when a fetch is running (new or already in flight) whose end is worth waiting
  // for; false when the rate limit refused.
  bool request_refresh();

  std::uint64_t fetches_started() const noexcept;
  // Fetches that ended, successfully or not; a waiter compares it before and after.
  std::uint64_t fetches_finished() const noexcept;

 private:
  struct State;  // shared with the fetch coroutines, which may outlive this object
  std::shared_ptr<State> state_;
};

}  // namespace gh::policies
