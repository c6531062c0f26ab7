// libFuzzer target for what a TLS client sends first (src/net/tls.h): the bytes are fed to a
// server session of a real TlsServerContext — two certificates chosen by SNI, sni_strict off,
// ALPN http/1.1 — through a memory BIO, so OpenSSL's record and ClientHello parsing and
// gatehouse's callbacks (the server_name extension parser, the certificate choice, ALPN) all
// see them. Also checks parse_server_name directly: what it returns lies inside the input.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "fuzz_check.h"
#include "net/tls.h"

namespace {

// Writes a self-signed certificate for `name` and its key into files under `dir`.
gh::net::TlsServerOptions::Certificate make_cert(const std::string& dir, const std::string& name) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_set_pubkey(x, key);
  X509_sign(x, key, EVP_sha256());
  gh::net::TlsServerOptions::Certificate c{dir + "/" + name + ".pem", dir + "/" + name + ".key"};
  FILE* f = std::fopen(c.cert.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(c.key.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
  return c;
}

std::shared_ptr<const gh::net::TlsServerContext> context() {
  static std::shared_ptr<const gh::net::TlsServerContext> ctx = [] {
    char dir[] = "/tmp/gh-tls-fuzz-XXXXXX";
    FUZZ_CHECK(::mkdtemp(dir) != nullptr);
    gh::net::TlsServerOptions o;
    o.certificates = {make_cert(dir, "default.test"), make_cert(dir, "api.test")};
    std::string error;
    auto c = gh::net::TlsServerContext::load(o, error);
    if (!c) std::fprintf(stderr, "tls_hello_fuzz: %s\n", error.c_str());
    FUZZ_CHECK(c != nullptr);
    return c;
  }();
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view name = gh::net::parse_server_name(data, size);
  if (!name.empty()) {
    auto* at = reinterpret_cast<const std::uint8_t*>(name.data());
    FUZZ_CHECK(at >= data && at + name.size() <= data + size);
  }

  auto ctx = context();
  SSL* ssl = SSL_new(ctx->ctx(0));
  FUZZ_CHECK(ssl != nullptr);
  BIO* in = BIO_new_mem_buf(data, static_cast<int>(size));
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_accept_state(ssl);
  SSL_do_handshake(ssl);  // fails or waits for more: either is fine, a crash is not
  SSL_free(ssl);
  return 0;
}
