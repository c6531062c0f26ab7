/* Preloaded into wrk by bench/run.sh --mode handshake (LD_PRELOAD).
 *
 * wrk keeps an SSL object per connection and, on reconnecting, SSL_clear()s
 * it, which keeps the last session: with TLS 1.3 tickets every connection
 * after the first resumes, so "Connection: close" alone measures resumed
 * handshakes. Before each handshake starts this drops that session, so that
 * every connection makes a full handshake (unless WRK_TLS_RESUME=1, which
 * leaves wrk's resumption alone). Either way it counts the handshakes that
 * completed, full and resumed, and writes "full N resumed M" to the file
 * named by WRK_TLS_STATS when wrk exits.
 *
 * Only OpenSSL's public functions are used, declared here so that no
 * development headers are needed: cc -shared -fPIC -o shim.so wrk_tls_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
extern int SSL_set_session(SSL *s, SSL_SESSION *session);
extern int SSL_in_before(const SSL *s);
extern int SSL_session_reused(const SSL *s);

static unsigned long full_handshakes, resumed_handshakes;
static int keep_sessions = -1;

int SSL_connect(SSL *s) {
  static int (*real_connect)(SSL *);
  if (!real_connect) real_connect = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_connect");
  if (keep_sessions < 0) {
    const char *v = getenv("WRK_TLS_RESUME");
    keep_sessions = v && v[0] == '1';
  }
  /* wrk calls SSL_connect again while the handshake wants to read: only the
     first call of a handshake may drop the session. */
  if (!keep_sessions && SSL_in_before(s)) SSL_set_session(s, NULL);
  int r = real_connect(s);
  if (r == 1) {
    if (SSL_session_reused(s))
      __atomic_add_fetch(&resumed_handshakes, 1, __ATOMIC_RELAXED);
    else
      __atomic_add_fetch(&full_handshakes, 1, __ATOMIC_RELAXED);
  }
  return r;
}

__attribute__((destructor)) static void write_stats(void) {
  const char *path = getenv("WRK_TLS_STATS");
  if (!path || !path[0]) return;
  FILE *f = fopen(path, "w");
  if (!f) return;
  fprintf(f, "full %lu resumed %lu\n", full_handshakes, resumed_handshakes);
  fclose(f);
}
