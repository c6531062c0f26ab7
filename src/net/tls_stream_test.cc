// net::Stream over TLS on a real loopback connection: a server-side Stream under test, and a
// blocking OpenSSL client whose records the test sends itself, cut where it chooses. The reads
// receive ciphertext through the event loop and lend it to OpenSSL (net/tls.h); these tests
// pin what that must keep: every byte in order however the records arrive, received bytes
// that make the stream readable, and the peer's end as EOF.
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "net/receive_count_test.h"
#include "net/stream.h"
#include "net/tls.h"

namespace gh::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// A self-signed P-256 certificate for "localhost", written to a temporary directory.
struct SelfSigned {
  std::string dir, cert, key;
  SelfSigned() {
    char tmpl[] = "/tmp/gh-tls-stream-XXXXXX";
    dir = ::mkdtemp(tmpl);
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, pkey, EVP_sha256());
    FILE* f = std::fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
  }
  ~SelfSigned() {
    ::unlink(cert.c_str());
    ::unlink(key.c_str());
    ::rmdir(dir.c_str());
  }
};

// A handshaken pair: `stream` (TLS server) and a blocking client. After the handshake the
// client's records go to a memory BIO; send() puts them on the wire in the cuts a test asks for.
struct TlsPair {
  SelfSigned files;
  asio::io_context io{1};
  Stream stream{io.get_executor()};
  tcp::socket peer{io};
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  SSL* client = nullptr;
  BIO* records = nullptr;  // the client's output after the handshake

  TlsPair() {
    std::string error;
    TlsServerOptions opts;
    opts.certificates.push_back({files.cert, files.key});
    auto ctx = TlsServerContext::load(opts, error);
    EXPECT_TRUE(ctx) << error;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    peer.connect(acceptor.local_endpoint());
    acceptor.accept(stream.socket());
    stream.start_tls(ctx->new_session(stream.socket().native_handle()));

    client = SSL_new(client_ctx);
    SSL_set_fd(client, static_cast<int>(peer.native_handle()));
    std::thread handshake([this] { EXPECT_EQ(SSL_connect(client), 1); });
    error_code hec = asio::error::would_block;
    stream.async_handshake([&](error_code ec) { hec = ec; });
    io.run_for(std::chrono::seconds(5));
    handshake.join();
    EXPECT_FALSE(hec) << hec.message();
    records = BIO_new(BIO_s_mem());
    SSL_set0_wbio(client, records);  // the socket BIO stays the client's read side
  }
  ~TlsPair() {
    SSL_free(client);
    SSL_CTX_free(client_ctx);
  }

  // The client's records for `plaintext`, in records of at most `record` bytes of it.
  std::string seal(const std::string& plaintext, std::size_t record = 16384) {
    for (std::size_t at = 0; at < plaintext.size(); at += record) {
      std::size_t n = std::min(record, plaintext.size() - at);
      EXPECT_EQ(SSL_write(client, plaintext.data() + at, static_cast<int>(n)), static_cast<int>(n));
    }
    std::string wire;
    char buf[4096];
    int n;
    while ((n = BIO_read(records, buf, sizeof buf)) > 0) wire.append(buf, static_cast<std::size_t>(n));
    return wire;
  }

  // Reads `want` bytes with reads of `chunk` bytes, while `feed` sends on another thread.
  std::string read(std::size_t want, std::size_t chunk, const std::function<void()>& feed) {
    std::string got;
    error_code last;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      std::string buf(chunk, '\0');
      while (got.size() < want) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), use_nothrow);
        if (ec) {
          last = ec;
          co_return;
        }
        got.append(buf.data(), n);
      }
    }, asio::detached);
    std::thread sender(feed);
    io.restart();
    io.run_for(std::chrono::seconds(10));
    sender.join();
    EXPECT_FALSE(last) << last.message();
    return got;
  }
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

TEST(TlsStream, ReadsRecordsCutAtEveryByte) {
  TlsPair p;
  const std::string text = pattern(300);
  const std::string wire = p.seal(text, 100);  // three records
  std::string got = p.read(text.size(), 64, [&] {
    for (char c : wire) {
      asio::write(p.peer, asio::buffer(&c, 1));
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  EXPECT_EQ(got, text);
}

TEST(TlsStream, ReadsABurstOfManyRecordsInOrder) {
  // Far more than one receive takes: what OpenSSL does not take at once is kept for later
  // reads, in order, with reads both smaller and larger than a record (below 1 KiB, OpenSSL
  // receives for itself).
  for (std::size_t chunk : {std::size_t{100}, std::size_t{1024}, std::size_t{4096}, std::size_t{16384}, std::size_t{65536}}) {
    TlsPair p;
    const std::string text = pattern(400 * 1024);
    const std::string wire = p.seal(text, chunk == 100 ? 1000 : 16384);
    std::string got = p.read(text.size(), chunk, [&] { asio::write(p.peer, asio::buffer(wire)); });
    EXPECT_EQ(got.size(), text.size()) << "reads of " << chunk;
    EXPECT_TRUE(got == text) << "reads of " << chunk;
  }
}

TEST(TlsStream, BytesAlreadyReceivedMakeItReadable) {
  TlsPair p;
  std::string wire = p.seal("first");
  wire += p.seal("second");
  asio::write(p.peer, asio::buffer(wire));  // both records arrive together
  EXPECT_EQ(p.read(5, 5, [] {}), "first");
  // "second" was received with "first": the wait completes though the socket has nothing new.
  bool readable = false;
  p.stream.async_wait(tcp::socket::wait_read, [&](error_code ec) { readable = !ec; });
  p.io.restart();
  p.io.run_for(std::chrono::seconds(2));
  EXPECT_TRUE(readable);
  EXPECT_EQ(p.read(6, 64, [] {}), "second");
}

TEST(TlsStream, ThePeersEndIsEofWithOrWithoutCloseNotify) {
  for (bool notify : {true, false}) {
    TlsPair p;
    std::string wire = p.seal("last words");
    if (notify) {
      SSL_shutdown(p.client);
      char buf[256];
      int n;
      while ((n = BIO_read(p.records, buf, sizeof buf)) > 0) wire.append(buf, static_cast<std::size_t>(n));
    }
    asio::write(p.peer, asio::buffer(wire));
    p.peer.shutdown(tcp::socket::shutdown_send);
    EXPECT_EQ(p.read(10, 64, [] {}), "last words");
    error_code end;
    asio::co_spawn(p.io, [&]() -> asio::awaitable<void> {
      char buf[16];
      auto [ec, n] = co_await p.stream.async_read_some(asio::buffer(buf), use_nothrow);
      end = ec;
    }, asio::detached);
    p.io.restart();
    p.io.run_for(std::chrono::seconds(5));
    EXPECT_EQ(end, asio::error::eof) << "close_notify " << notify << ": " << end.message();
  }
}

// The receive counts below are what the epoll reactor promises; io_uring receives its own way.
#if defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
constexpr int kEpoll = 1;
#else
constexpr int kEpoll = 0;
#endif

// A head read (async_read_head) of 4 KiB on the TLS pair, run until it completes or `limit`.
struct HeadRead {
  std::string buf = std::string(4096, '\0');
  std::optional<error_code> ec;
  std::string got;
  void start(Stream& s) {
    s.async_read_head(asio::buffer(buf), [this](error_code e, std::size_t n) {
      ec = e;
      got.assign(buf.data(), n);
    });
  }
  bool wait(asio::io_context& io, std::chrono::milliseconds limit) {
    io.restart();
    io.run_for(limit);
    return ec.has_value();
  }
};

TEST(TlsStream, AfterWholeRecordsTheNextHeadReadWaitsWithoutAnEmptyReceive) {
  TlsPair p;
  ReceiveCount count(static_cast<int>(p.stream.socket().native_handle()));
  asio::write(p.peer, asio::buffer(p.seal("GET /1 HTTP/1.1\r\n\r\n")));
  HeadRead first;
  first.start(p.stream);
  ASSERT_TRUE(first.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_EQ(first.got, "GET /1 HTTP/1.1\r\n\r\n");

  count.reset();
  HeadRead next;
  next.start(p.stream);
  EXPECT_FALSE(next.wait(p.io, std::chrono::milliseconds(100))) << "nothing was sent";
  EXPECT_EQ(count.all(), 0) << "a receive was tried on a socket known drained";
  asio::write(p.peer, asio::buffer(p.seal("GET /2 HTTP/1.1\r\n\r\n")));
  ASSERT_TRUE(next.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_FALSE(*next.ec) << next.ec->message();
  EXPECT_EQ(next.got, "GET /2 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(count.empty(), 0);

  // A record cut short says nothing of what follows: the read for its rest tries at once.
  const std::string wire = p.seal("GET /3 HTTP/1.1\r\n\r\n");
  count.reset();
  asio::write(p.peer, asio::buffer(wire.data(), 10));
  HeadRead cut;
  cut.start(p.stream);
  EXPECT_FALSE(cut.wait(p.io, std::chrono::milliseconds(100)));
  EXPECT_GE(count.empty(), kEpoll) << "the read for the record's rest tries the socket first";
  asio::write(p.peer, asio::buffer(wire.data() + 10, wire.size() - 10));
  ASSERT_TRUE(cut.wait(p.io, std::chrono::milliseconds(2000)));
  EXPECT_EQ(cut.got, "GET /3 HTTP/1.1\r\n\r\n");
}

TEST(TlsStream, APartOfARecordThenTheEndIsEofAtOnce) {
  TlsPair p;
  const std::string wire = p.seal("GET / HTTP/1.1\r\n\r\n");
  asio::write(p.peer, asio::buffer(wire.data(), wire.size() - 3));
  p.peer.shutdown(tcp::socket::shutdown_send);
  asio::steady_timer settle(p.io, std::chrono::milliseconds(20));  // the loop notices the bytes
  settle.async_wait([](error_code) {});                              // and the end first
  p.io.restart();
  p.io.run();
  HeadRead read;
  read.start(p.stream);
  ASSERT_TRUE(read.wait(p.io, std::chrono::milliseconds(2000))) << "the peer's end was missed";
  EXPECT_TRUE(*read.ec) << "a cut record read as data";
}

TEST(TlsStream, CloseAbortsAReadWaitingForCiphertext) {
  // A buffer large enough to receive for OpenSSL: the read waits in the event loop, and
  // closing the stream ends it with operation_aborted without touching the dropped session.
  TlsPair p;
  std::optional<error_code> result;
  std::string buf(4096, '\0');
  p.stream.async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t) { result = ec; });
  p.io.restart();
  p.io.poll();
  ASSERT_FALSE(result) << "completed with nothing sent";
  p.stream.close();
  p.io.run_for(std::chrono::seconds(2));
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, asio::error::operation_aborted);
}

}  // namespace
}  // namespace gh::net
