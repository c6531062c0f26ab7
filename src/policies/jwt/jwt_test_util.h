// Test helpers for the jwt policy: key generation and token signing with OpenSSL, a request
// context on a throwaway worker, and running on_request to completion on a local io_context.
// Thread: test code only.
#pragma once

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policies/jwt/jwt.h"
#include "proxy/request_context.h"
#include "proxy/worker.h"

namespace gh::policies::jwt_test {

inline std::string b64url(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

struct Key {
  std::shared_ptr<EVP_PKEY> pkey;
  std::string public_pem;
};

inline Key generate(const char* type, const char* param = nullptr, std::size_t bits = 2048) {
  EVP_PKEY* k = nullptr;
  if (std::string_view(type) == "RSA") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits);
  else if (std::string_view(type) == "EC") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", param);
  else k = EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  Key out{std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free), {}};
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, k);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  out.public_pem.assign(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return out;
}

inline const Key& rsa_key() {
  static const Key k = generate("RSA");
  return k;
}
inline const Key& p256_key() {
  static const Key k = generate("EC", "P-256");
  return k;
}
inline const Key& p384_key() {
  static const Key k = generate("EC", "P-384");
  return k;
}
inline const Key& ed25519_key() {
  static const Key k = generate("ED25519");
  return k;
}

inline const EVP_MD* md_of(std::string_view alg) {
  if (alg.ends_with("384")) return EVP_sha384();
  if (alg.ends_with("512")) return EVP_sha512();
  return EVP_sha256();
}

// The JOSE signature of `input` with alg (HS* use `secret`, the others `key`).
inline std::string sign(std::string_view alg, std::string_view input, const std::string& secret, EVP_PKEY* key) {
  auto in = reinterpret_cast<const unsigned char*>(input.data());
  if (alg.starts_with("HS")) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(md_of(alg), secret.data(), static_cast<int>(secret.size()), in, input.size(), mac, &len);
    return std::string(reinterpret_cast<char*>(mac), len);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EVP_DigestSignInit(ctx, &pctx, alg == "EdDSA" ? nullptr : md_of(alg), nullptr, key);
  if (alg.starts_with("PS")) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  std::size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, in, input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, in, input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (alg.starts_with("ES")) {  // DER -> r||s
    std::size_t coord = alg == "ES256" ? 32 : alg == "ES384" ? 48 : 66;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    std::string raw(2 * coord, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(coord));
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + coord, static_cast<int>(coord));
    ECDSA_SIG_free(es);
    return raw;
  }
  return sig;
}

// header_json.payload_json signed with alg.
inline std::string mint(std::string_view alg, const std::string& header_json, const std::string& payload_json,
                        const std::string& secret = {}, EVP_PKEY* key = nullptr) {
  std::string input = b64url(header_json) + "." + b64url(payload_json);
  return input + "." + b64url(sign(alg, input, secret, key));
}

// One request through a policy on a throwaway worker.
struct Harness {
  proxy::GatewayShared shared;
  proxy::Worker worker;
  http::RequestHead req;
  std::vector<std::string> storage;
  std::unique_ptr<proxy::RequestContext> ctx;

  explicit Harness(unsigned worker_id = 0) : worker(worker_id, shared, nullptr) { reset(); }
  void reset() {
    req.reset();
    storage.clear();
    storage.reserve(64);
    ctx = std::make_unique<proxy::RequestContext>(worker, nullptr, req);
  }
  Harness& header(std::string name, std::string value) {
    storage.push_back(std::move(name));
    std::string_view n = storage.back();
    storage.push_back(std::move(value));
    req.fields.add(n, storage.back());
    return *this;
  }
  Harness& bearer(const std::string& token) { return header("Authorization", "Bearer " + token); }
  // The request's target; its query is what follows '?'.
  Harness& target(std::string t) {
    storage.push_back(std::move(t));
    req.target = storage.back();
    const std::size_t q = req.target.find('?');
    req.query = q == std::string_view::npos ? std::string_view{} : req.target.substr(q + 1);
    return *this;
  }
  // The request's query (without '?').
  Harness& query(std::string q) {
    storage.push_back(std::move(q));
    req.query = storage.back();
    return *this;
  }

  // As the exchange does: the decision at once when the policy can take it, else awaited.
  proxy::Verdict run(proxy::Policy& p) {
    if (auto now = p.decide_now(*ctx)) return std::move(*now);
    return run_async(p);
  }
  proxy::Verdict run_async(proxy::Policy& p) {
    boost::asio::io_context io;
    std::optional<proxy::Verdict> out;
    boost::asio::co_spawn(io, p.on_request(*ctx), [&](std::exception_ptr e, proxy::Verdict v) {
      if (e) std::rethrow_exception(e);
      out = std::move(v);
    });
    io.run();
    return *out;
  }
};

}  // namespace gh::policies::jwt_test
