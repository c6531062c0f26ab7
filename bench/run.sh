#!/usr/bin/env bash
# Benchmark of gatehouse against nginx and HAProxy on loopback.
#
# Starts a small nginx upstream, then gatehouse, nginx and HAProxy as reverse
# proxies in front of it (one worker/thread each, keep-alive to the upstream),
# drives each with wrk in interleaved rounds, measures the proxy's CPU time
# per request and its memory per idle keep-alive connection, and prints the
# medians as a table with ratios to nginx and HAProxy. With --mode tls the
# proxies terminate TLS (same certificate and ciphers); with --mode handshake
# every request is a new TLS connection; with --mode h2 they serve HTTP/2 over
# TLS, driven by h2load instead of wrk. See bench/README.md.

set -Eeuo pipefail

usage() {
  cat <<'EOF'
usage: bench/run.sh [options]

  --mode plain|tls|handshake|h2
                            plain: HTTP to the proxies (default); tls: HTTPS
                            with keep-alive, the proxies terminating TLS with
                            the same certificate and ciphers; handshake: HTTPS
                            with "Connection: close", a full TLS handshake per
                            request (no idle-memory measurement); h2: HTTP/2
                            over TLS (ALPN h2, same certificate and ciphers as
                            tls), driven by h2load, HTTP/1.1 to the upstream
                            (no idle-memory measurement)
  --streams N               h2 mode: streams in flight on each connection
                            (h2load -m; default 1)
  --cert ecdsa|rsa          tls, handshake and h2 modes: the certificate the
                            run makes, ECDSA P-256 (default) or RSA 2048
  --resume                  handshake mode: let wrk resume its sessions with
                            the tickets the proxies send (default: every
                            handshake is a full one)
  --workers N               worker processes/threads of each proxy: gatehouse
                            workers, nginx worker_processes, HAProxy nbthread
                            (default 1)
  --wrk-threads N           wrk threads, in h2 mode h2load's (-t) (default 1)
  --duration SECONDS        length of each measured run (default 10; h2load -D)
  --rounds N                interleaved rounds; the table shows medians (default 3)
  --connections N           wrk connections, in h2 mode h2load's (-c) (default 50)
  --only LIST               comma-separated targets to run, from:
                            direct (plain mode only), gatehouse, nginx,
                            haproxy and the NAMEs given with --gatehouse-config
  --skip-memory             skip the idle-connection memory measurement
                            (always skipped in handshake and h2 modes)
  --idle-connections N      idle keep-alive connections for the memory
                            measurement (default 10000)
  --idle-batches N          open them in N equal batches 1.5 s apart, each
                            held idle before the next, as clients arriving
                            over time (default 1: all at once)
  --gatehouse-config NAME=FILE
                            add a row NAME running gatehouse with FILE; in FILE,
                            ${BENCH_LISTEN}, ${BENCH_UPSTREAM} (its HTTP/2 twin
                            ${BENCH_UPSTREAM_H2C}), ${BENCH_WORKERS},
                            ${BENCH_CERT} and ${BENCH_KEY} are replaced by the
                            listen address, the upstream URL, --workers and the
                            certificate and key files (repeatable)
  --gatehouse-binary NAME=PATH
                            row NAME (gatehouse, or a NAME from
                            --gatehouse-config) runs the gatehouse binary PATH
                            instead of $GATEHOUSE, e.g. to compare two builds
                            in one run (repeatable)
  --response-bytes N        the upstream answers every request with N bytes (a
                            file of N bytes) instead of "ok\n"; the nginx proxy
                            streams responses (proxy_buffering off); no
                            idle-memory measurement
  --request-bytes N         every request is a POST with an N-byte body (wrk
                            script); the upstream reads each body whole before
                            answering; the nginx proxy streams uploads
                            (proxy_request_buffering off); no idle-memory
                            measurement. Not in h2 mode
  --path NAME=PATH          request PATH (default /) when benchmarking NAME
  --tokens NAME=FILE        wrk sends NAME a different bearer token from FILE
                            (one a line) on each request, in turn (not in h2 mode)
  --header NAME='Field: value'
                            send this header field to target NAME (repeatable)
  --baseline NAME           the row the extra gatehouse rows are compared with in
                            the second table (default gatehouse: plain proxying)
  --redis                   start a redis-server on a free port for the run; its
                            URL replaces ${BENCH_REDIS_URL} in --gatehouse-config
                            files, and its CPU per request is reported
  --warmup SECONDS          unrecorded run per target before the rounds (default 2)
  --out DIR                 where to write results (default bench/out/TIMESTAMP)
  -h, --help                this text

Environment: GATEHOUSE = the gatehouse binary
(default: build/release/src/app/gatehouse under the repository root).
EOF
}

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
TOOL="$BENCH_DIR/benchtool.py"
LUA="$BENCH_DIR/wrk_report.lua"
SHIM_SRC="$BENCH_DIR/wrk_tls_shim.c"
GATEHOUSE=${GATEHOUSE:-$REPO_ROOT/build/release/src/app/gatehouse}
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

MODE=plain
CERT_KIND=ecdsa
RESUME=0
STREAMS=""
WORKERS=1
WRK_THREADS=1
DURATION=10
ROUNDS=3
CONNECTIONS=50
ONLY=""
SKIP_MEMORY=0
REDIS=0
REDIS_PID=""
IDLE_CONNECTIONS=10000
IDLE_BATCHES=1
WARMUP=2
OUT=""
BASELINE=gatehouse
RESPONSE_BYTES=0
REQUEST_BYTES=0
EXTRA_NAMES=()
declare -A EXTRA_FILE=() TARGET_PATH=() TARGET_HEADERS=() TARGET_TOKENS=() TARGET_BINARY=()

log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 2; }

need_int() {  # name value
  [[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || die "$1 needs a positive integer, got '$2'"
}

# --- options ---------------------------------------------------------------

while (($#)); do
  opt=$1
  if [[ $opt == --*=* ]]; then
    set -- "${opt%%=*}" "${opt#*=}" "${@:2}"
    opt=$1
  fi
  case $opt in
    -h|--help) usage; exit 0 ;;
    --skip-memory) SKIP_MEMORY=1; shift; continue ;;
    --redis) REDIS=1; shift; continue ;;
    --resume) RESUME=1; shift; continue ;;
    --mode|--cert|--workers|--wrk-threads|--streams) ;;
    --duration|--rounds|--connections|--idle-connections|--idle-batches|--warmup|--only|--out) ;;
    --gatehouse-config|--gatehouse-binary|--path|--header|--tokens|--baseline) ;;
    --response-bytes|--request-bytes) ;;
    *) die "unknown option $opt (see --help)" ;;
  esac
  (($# >= 2)) || die "$opt needs a value (see --help)"
  val=$2
  shift 2
  case $opt in
    --mode)
      [[ $val == plain || $val == tls || $val == handshake || $val == h2 ]] ||
        die "--mode wants plain, tls, handshake or h2"
      MODE=$val ;;
    --cert)
      [[ $val == ecdsa || $val == rsa ]] || die "--cert wants ecdsa or rsa"
      CERT_KIND=$val ;;
    --workers) need_int "$opt" "$val"; WORKERS=$val ;;
    --streams) need_int "$opt" "$val"; STREAMS=$val ;;
    --wrk-threads) need_int "$opt" "$val"; WRK_THREADS=$val ;;
    --duration) need_int "$opt" "$val"; DURATION=$val ;;
    --rounds) need_int "$opt" "$val"; ROUNDS=$val ;;
    --connections) need_int "$opt" "$val"; CONNECTIONS=$val ;;
    --idle-connections) need_int "$opt" "$val"; IDLE_CONNECTIONS=$val ;;
    --idle-batches) need_int "$opt" "$val"; IDLE_BATCHES=$val ;;
    --warmup) [[ $val =~ ^[0-9]+$ ]] || die "--warmup needs an integer"; WARMUP=$val ;;
    --only) ONLY=$val ;;
    --response-bytes) need_int "$opt" "$val"; RESPONSE_BYTES=$val ;;
    --request-bytes) need_int "$opt" "$val"; REQUEST_BYTES=$val ;;
    --out) OUT=$val ;;
    --baseline) BASELINE=$val ;;
    --gatehouse-config)
      name=${val%%=*} file=${val#*=}
      [[ $val == *=* && $name =~ ^[A-Za-z0-9._-]+$ ]] || die "--gatehouse-config wants NAME=FILE"
      [[ -f $file ]] || die "--gatehouse-config $name: no file $file"
      case $name in direct|gatehouse|nginx|haproxy) die "--gatehouse-config: $name is taken" ;; esac
      [[ -v EXTRA_FILE[$name] ]] || EXTRA_NAMES+=("$name")
      EXTRA_FILE[$name]=$(cd "$(dirname "$file")" && pwd)/$(basename "$file") ;;
    --gatehouse-binary)
      name=${val%%=*} file=${val#*=}
      [[ $val == *=?* && -n $name ]] || die "--gatehouse-binary wants NAME=PATH"
      [[ -f $file && -x $file ]] || die "--gatehouse-binary $name: no executable file $file"
      TARGET_BINARY[$name]=$(realpath "$file") ;;
    --path)
      [[ $val == *=/* ]] || die "--path wants NAME=/PATH"
      TARGET_PATH[${val%%=*}]=${val#*=} ;;
    --header)
      [[ $val == *=*:* ]] || die "--header wants NAME='Field: value'"
      TARGET_HEADERS[${val%%=*}]+="${val#*=}"$'\n' ;;
    --tokens)
      [[ $val == *=* && -f ${val#*=} ]] || die "--tokens wants NAME=FILE (one bearer token a line)"
      TARGET_TOKENS[${val%%=*}]="$(realpath "${val#*=}")" ;;
  esac
done

if ((RESUME)) && [[ $MODE != handshake ]]; then
  die "--resume is for --mode handshake"
fi
if [[ -n $STREAMS && $MODE != h2 ]]; then
  die "--streams is for --mode h2"
fi
STREAMS=${STREAMS:-1}
if [[ $MODE == handshake || $MODE == h2 ]]; then
  SKIP_MEMORY=1  # idle TLS connections are the tls mode's measurement
fi
if ((RESPONSE_BYTES || REQUEST_BYTES)); then
  SKIP_MEMORY=1  # idle connections are measured with small answers (the client keeps each one)
fi
if [[ $MODE == h2 ]] && ((REQUEST_BYTES)); then
  die "--request-bytes needs wrk: not in --mode h2"
fi
if [[ $MODE == h2 ]] && ((${#TARGET_TOKENS[@]})); then
  die "--tokens needs wrk: not in --mode h2 (h2load sends the same header fields on every request)"
fi
((WRK_THREADS <= CONNECTIONS)) || die "--wrk-threads: more threads than connections"
if [[ $MODE == plain ]]; then
  ALL_TARGETS=(direct gatehouse "${EXTRA_NAMES[@]}" nginx haproxy)
  SCHEME=http
else
  # direct would be wrk against the plain upstream: no TLS, nothing to compare
  ALL_TARGETS=(gatehouse "${EXTRA_NAMES[@]}" nginx haproxy)
  SCHEME=https
fi
for name in "${!TARGET_BINARY[@]}"; do
  [[ $name == gatehouse || -v EXTRA_FILE[$name] ]] ||
    die "--gatehouse-binary: '$name' is not a gatehouse row (gatehouse, or a NAME from --gatehouse-config)"
done
[[ " ${ALL_TARGETS[*]} " == *" $BASELINE "* ]] || die "--baseline: unknown target '$BASELINE' (known: ${ALL_TARGETS[*]})"
if [[ -n $ONLY ]]; then
  IFS=, read -r -a wanted <<<"$ONLY"
  for w in "${wanted[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $w "* ]] || die "--only: unknown target '$w' (known: ${ALL_TARGETS[*]})"
  done
  SELECTED=()
  for t in "${ALL_TARGETS[@]}"; do
    [[ ",$ONLY," == *",$t,"* ]] && SELECTED+=("$t")
  done
else
  SELECTED=("${ALL_TARGETS[@]}")
fi

# --- tools -----------------------------------------------------------------

ensure_tools() {
  local missing=() pkgs=()
  command -v nginx >/dev/null || { missing+=(nginx); pkgs+=(nginx-light); }
  command -v haproxy >/dev/null || { missing+=(haproxy); pkgs+=(haproxy); }
  if [[ $MODE == h2 ]]; then
    command -v h2load >/dev/null || { missing+=(h2load); pkgs+=(nghttp2-client); }
  else
    command -v wrk >/dev/null || { missing+=(wrk); pkgs+=(wrk); }
  fi
  command -v python3 >/dev/null || { missing+=(python3); pkgs+=(python3); }
  if ((REDIS)); then
    command -v redis-server >/dev/null || { missing+=(redis-server); pkgs+=(redis-server); }
  fi
  if [[ $MODE != plain ]]; then
    command -v openssl >/dev/null || { missing+=(openssl); pkgs+=(openssl); }
  fi
  if [[ $MODE == tls || $MODE == handshake ]]; then  # the wrk shim
    command -v cc >/dev/null || { missing+=(cc); pkgs+=(gcc); }
  fi
  ((${#missing[@]})) || return 0
  log "missing: ${missing[*]}"
  if ((EUID != 0)); then
    die "run as root to install them, or: sudo apt-get install -y ${pkgs[*]}"
  fi
  log "installing ${pkgs[*]} with apt-get"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${pkgs[@]}"
  hash -r
}
ensure_tools
if ! command -v timeout >/dev/null || ! command -v setsid >/dev/null; then
  die "needs timeout and setsid (coreutils, util-linux)"
fi

# File descriptors: each proxy needs one per idle client connection plus its
# upstream connections, and so does the client that holds them. HAProxy sizes
# its table for two per connection, so ask for that where the hard limit allows.
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=1048576
want=$((2 * IDLE_CONNECTIONS + 4096))
((want > hard)) && want=$hard
ulimit -n "$want" 2>/dev/null || true
NOFILE=$(ulimit -n)
if ((SKIP_MEMORY == 0 && NOFILE < IDLE_CONNECTIONS + 256)); then
  IDLE_CONNECTIONS=$((NOFILE - 256))
  log "note: open-file limit is $NOFILE; holding $IDLE_CONNECTIONS idle connections instead"
fi
MAXCONN=$((IDLE_CONNECTIONS + 512))
# nginx starts closing idle keep-alive connections once fewer than 1/16 of
# its worker_connections are free, so give it a quarter more than it holds.
NGINX_CONNECTIONS=$((IDLE_CONNECTIONS * 5 / 4 + 1024))
# Requests in flight at once: one per connection, or --streams per connection
# in h2 mode (each proxy forwards them over as many HTTP/1.1 connections).
IN_FLIGHT=$((CONNECTIONS * STREAMS))
# nginx keeps at most this many idle upstream connections and closes the rest
# when a request ends: with fewer than the requests in flight, it would open a
# new upstream connection for a good share of the requests.
NGINX_UPSTREAM_KEEPALIVE=$((IN_FLIGHT > 32 ? IN_FLIGHT : 32))

# --- work and output directories, cleanup ----------------------------------

WORK=""
STARTED=()   # pids of the process groups started here

alive() {  # pid: running (not gone, not a zombie)
  local s
  s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $s != Z && $s != X ]]
}

stop_group() {  # pid: stop the process group led by pid, then reap it
  local pid=$1 i
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Runs a command with a time limit, in the background so that a signal to
# this script interrupts the wait at once (bash runs a trap only after a
# foreground command ends); cleanup stops it.
CURRENT=""
run_bounded() {  # seconds cmd...
  local limit=$1 rc=0
  shift
  timeout -k 5 "$limit" "$@" &
  CURRENT=$!
  wait "$CURRENT" || rc=$?
  CURRENT=""
  return "$rc"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  local pid
  if [[ -n $CURRENT ]]; then
    stop_group "$CURRENT"
  fi
  for pid in "${STARTED[@]}"; do
    stop_group "$pid"
  done
  if [[ -n $WORK && -d $WORK ]]; then
    mkdir -p "$OUT/logs"
    (cd "$WORK" && find . -name '*.log' -size +0 -print0 |
      while IFS= read -r -d '' f; do
        d=${f#./}; cp "$f" "$OUT/logs/${d//\//_}"
      done) 2>/dev/null || true
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [[ -z $OUT ]]; then
  OUT="$BENCH_DIR/out/$(date +%Y%m%d-%H%M%S)"
fi
CLIENT=wrk
[[ $MODE == h2 ]] && CLIENT=h2load
mkdir -p "$OUT/$CLIENT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")

# --- TLS: one certificate for every proxy, the wrk shim ----------------------

CERT_FILE="" KEY_FILE="" SHIM="" TLS_ARG=()
GATEHOUSE_TEMPLATE="$BENCH_DIR/gatehouse-proxy.yaml"
if [[ $MODE != plain ]]; then
  GATEHOUSE_TEMPLATE="$BENCH_DIR/gatehouse-tls.yaml"
  TLS_ARG=(--tls)
  mkdir -p "$WORK/tls"
  CERT_FILE="$WORK/tls/cert.pem" KEY_FILE="$WORK/tls/key.pem"
  if [[ $CERT_KIND == rsa ]]; then
    newkey=(-newkey rsa:2048)
  else
    newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
  fi
  openssl req -x509 "${newkey[@]}" -sha256 -nodes -days 30 -subj "/CN=localhost" \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$KEY_FILE" -out "$CERT_FILE" >"$WORK/tls/openssl.log" 2>&1 ||
    { cat "$WORK/tls/openssl.log" >&2; die "openssl req could not make the certificate"; }
  cat "$CERT_FILE" "$KEY_FILE" >"$WORK/tls/haproxy.pem"
  cat >"$WORK/tls/openssl-one-ticket.cnf" <<'EOF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
NumTickets = 1
EOF
  if [[ $MODE != h2 ]]; then
    SHIM="$WORK/tls/wrk_tls_shim.so"
    cc -O2 -shared -fPIC -o "$SHIM" "$SHIM_SRC" -ldl 2>"$WORK/tls/cc.log" ||
      { cat "$WORK/tls/cc.log" >&2; die "cannot compile $SHIM_SRC (needs a C compiler)"; }
  fi
fi

# --- servers ---------------------------------------------------------------

declare -A PORT=() PID=()
SKIPPED=()

read -r -a ports <<<"$(python3 "$TOOL" free-ports $((${#SELECTED[@]} + 3)))"
UPSTREAM_PORT=${ports[0]}
UPSTREAM_URL="http://127.0.0.1:$UPSTREAM_PORT"
# The same upstream in cleartext HTTP/2 (prior knowledge), for rows that speak HTTP/2 to it.
UPSTREAM_H2C_PORT=${ports[$((${#SELECTED[@]} + 2))]}
UPSTREAM_H2C_URL="h2c://127.0.0.1:$UPSTREAM_H2C_PORT"
next_port=1

# The probes before the rounds send what wrk will send (a POST with a body of --request-bytes)
# and check that the answer's body has the size the upstream serves.
BODY_PROBE_ARGS=()
if ((REQUEST_BYTES || RESPONSE_BYTES)); then
  BODY_PROBE_ARGS=(--body-bytes "$REQUEST_BYTES" --expect-bytes "$( ((RESPONSE_BYTES)) && echo "$RESPONSE_BYTES" || echo 3)")
fi

spawn() {  # dir cmd...: start cmd in its own process group; sets SPAWNED
  local dir=$1
  shift
  setsid "$@" >"$dir/stdout.log" 2>&1 </dev/null &
  SPAWNED=$!
  STARTED+=("$SPAWNED")
}

nginx_common() {  # dir [workers]: directives shared by both nginx instances
  local d=$1 workers=${2:-1}
  cat <<EOF
daemon off;
master_process on;
worker_processes $workers;
worker_rlimit_nofile $NOFILE;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $NGINX_CONNECTIONS; }
EOF
}

nginx_http_common() {  # dir
  local d=$1
  cat <<EOF
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
EOF
}

start_nginx() {  # dir conf-file
  local d=$1
  mkdir -p "$d/tmp"
  spawn "$d" nginx -p "$d" -c "$2" -e "$d/error.log"
}

# The upstream's answer on every path: 200 "ok\n", or with --response-bytes or --request-bytes
# the file www/body (N bytes, or "ok\n"). With --request-bytes it reads each request's body
# whole (into memory) before answering, as an application would: the mirror module reads the
# body (its subrequest answers 204 and is dropped); the static module refuses POST with 405,
# which error_page turns into the file (a redirect as GET, the body already read).
upstream_location() {  # dir
  local d=$1
  if ((RESPONSE_BYTES == 0 && REQUEST_BYTES == 0)); then
    cat <<EOF
    location / {
      default_type text/plain;
      return 200 "ok\n";
    }
EOF
    return 0
  fi
  cat <<EOF
    sendfile on;
    client_max_body_size 0;
    client_body_buffer_size $((REQUEST_BYTES > 16384 ? REQUEST_BYTES : 16384));
    location / {
      root $d/www;
      try_files /body =500;
      default_type application/octet-stream;
EOF
  if ((REQUEST_BYTES)); then
    cat <<EOF
      mirror /bench-read-body;
      mirror_request_body on;
      error_page 405 =200 /bench-body;
EOF
  fi
  cat <<EOF
    }
    location = /bench-body {
      internal;
      default_type application/octet-stream;
      alias $d/www/body;
    }
    location = /bench-read-body {
      internal;
      return 204;
    }
EOF
}

start_upstream() {
  local d="$WORK/upstream"
  mkdir -p "$d/www"
  if ((RESPONSE_BYTES)); then
    head -c "$RESPONSE_BYTES" /dev/zero | tr '\0' x >"$d/www/body"
  else
    printf 'ok\n' >"$d/www/body"
  fi
  # nginx's workers run as another user when it is started as root: let them reach the file
  # (the work directory is mktemp's, private to its owner; its TLS files stay private)
  if ((RESPONSE_BYTES || REQUEST_BYTES)); then
    [[ -d $WORK/tls ]] && chmod go-rwx "$WORK/tls"
    chmod a+x "$WORK" "$d" "$d/www"
    chmod a+r "$d/www/body"
  fi
  {
    nginx_common "$d"
    echo "http {"
    nginx_http_common "$d"
    cat <<EOF
  server {
    listen 127.0.0.1:$UPSTREAM_PORT;
$(upstream_location "$d")
    # connection counters, to check that the proxies reuse their upstream
    # connections (bench/benchtool.py sample)
    location = /bench-status {
      stub_status;
    }
  }
  server {
    listen 127.0.0.1:$UPSTREAM_H2C_PORT http2;
$(upstream_location "$d")
  }
}
EOF
  } >"$d/nginx.conf"
  start_nginx "$d" "$d/nginx.conf"
  UPSTREAM_PID=$SPAWNED
  python3 "$TOOL" wait-http "$UPSTREAM_PORT" --pid "$UPSTREAM_PID" "${BODY_PROBE_ARGS[@]}" ||
    { tail -n 20 "$d"/*.log >&2 || true; die "the upstream nginx did not start"; }
}

# With bodies, the nginx proxy streams both ways as gatehouse and HAProxy do, through one
# 16 KiB buffer each way (gatehouse's body buffers and HAProxy's tune.bufsize are 16 KiB):
# by default it would read a whole upload before passing it on, and buffer responses, both
# spilling to temporary files beyond its in-memory buffers.
nginx_proxy_bodies() {
  ((RESPONSE_BYTES || REQUEST_BYTES)) || return 0
  cat <<EOF
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_buffer_size 16k;
      proxy_busy_buffers_size 16k;
      client_body_buffer_size 16k;
      client_max_body_size 0;
EOF
}

start_nginx_proxy() {  # port dir
  local port=$1 d=$2
  {
    nginx_common "$d" "$WORKERS"
    echo "http {"
    nginx_http_common "$d"
    cat <<EOF
  upstream backend {
    server 127.0.0.1:$UPSTREAM_PORT;
    keepalive $NGINX_UPSTREAM_KEEPALIVE;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:$port$(nginx_listen_flags);
$([[ $MODE == plain ]] || nginx_tls)
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
$(nginx_proxy_bodies)
    }
  }
}
EOF
  } >"$d/nginx.conf"
  start_nginx "$d" "$d/nginx.conf"
}

# TLS as gatehouse does it (src/net/tls.cc): TLS 1.2 and 1.3, Mozilla's
# intermediate ECDHE+AEAD ciphers for 1.2 (OpenSSL's default 1.3 suites), the
# same key-exchange groups; resumption by session tickets only (no session
# cache), one ticket per handshake (OpenSSL's default is two).
TLS_CIPHERS12="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

# HTTP/2: nginx 1.25.1 and later have "http2 on;", older ones (Debian 12's
# 1.22) the listen parameter "http2", deprecated since.
NGINX_HTTP2_ON=0
if [[ $MODE == h2 ]]; then
  nginx_version=$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9][0-9.]*\).*|\1|p')
  if [[ -n $nginx_version && $(printf '%s\n' 1.25.1 "$nginx_version" | sort -V | head -n 1) == 1.25.1 ]]; then
    NGINX_HTTP2_ON=1
  fi
fi

nginx_listen_flags() {
  case $MODE in
    plain) ;;
    h2) ((NGINX_HTTP2_ON)) && echo " ssl" || echo " ssl http2" ;;
    *) echo " ssl" ;;
  esac
}

# h2 mode: h2load offers the TLS 1.3 suites in OpenSSL's default order, as wrk
# and openssl s_client do (its own puts AES-128 first: HAProxy, which picks by
# its own order, would then use another suite than nginx and gatehouse, which
# follow the client's). benchtool.py's wait-h2 uses the same list.
H2LOAD_TLS13_CIPHERS="TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"

nginx_tls() {
  if [[ $MODE == h2 ]] && ((NGINX_HTTP2_ON)); then
    echo "    http2 on;"
  fi
  cat <<EOF
    ssl_certificate $CERT_FILE;
    ssl_certificate_key $KEY_FILE;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers $TLS_CIPHERS12;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    ssl_session_tickets on;
    ssl_session_cache off;
    ssl_conf_command NumTickets 1;
EOF
}

start_haproxy() {  # port dir
  local port=$1 d=$2 bind_tls=""
  if [[ $MODE != plain ]]; then
    bind_tls=" ssl crt $WORK/tls/haproxy.pem ssl-min-ver TLSv1.2 ciphers $TLS_CIPHERS12 curves X25519:P-256:P-384"
    [[ $MODE == h2 ]] && bind_tls+=" alpn h2,http/1.1"
  fi
  cat >"$d/haproxy.cfg" <<EOF
global
  nbthread $WORKERS
  maxconn $MAXCONN
  # HAProxy wants two descriptors per connection; when the hard open-file
  # limit is lower, run anyway (idle client connections need only one).
  no strict-limits$([[ $MODE == plain ]] || printf '\n  %s' \
    "# no session cache (tickets only, as gatehouse and nginx here)" "tune.ssl.cachesize 0")

defaults
  mode http
  maxconn $MAXCONN
  option http-keep-alive
  option forwardfor
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-request 10s
  timeout http-keep-alive 300s

frontend bench
  bind 127.0.0.1:$port$bind_tls
  default_backend upstream

backend upstream
  server upstream 127.0.0.1:$UPSTREAM_PORT
EOF
  if [[ $MODE == plain ]]; then
    spawn "$d" haproxy -db -f "$d/haproxy.cfg"
  else
    # HAProxy has no setting for the number of TLS 1.3 tickets: OpenSSL's
    # configuration file sets it for every context the process makes.
    spawn "$d" env OPENSSL_CONF="$WORK/tls/openssl-one-ticket.cnf" haproxy -db -f "$d/haproxy.cfg"
  fi
}

start_gatehouse() {  # port dir template binary
  local port=$1 d=$2 template=$3 binary=$4
  if [[ ! -x $binary ]]; then
    SKIP_REASON="no gatehouse binary at $binary (build it, or set GATEHOUSE)"
    return 1
  fi
  sed -e "s|\${BENCH_LISTEN}|127.0.0.1:$port|g" \
      -e "s|\${BENCH_UPSTREAM}|$UPSTREAM_URL|g" \
      -e "s|\${BENCH_UPSTREAM_H2C}|$UPSTREAM_H2C_URL|g" \
      -e "s|\${BENCH_WORKERS}|$WORKERS|g" \
      -e "s|\${BENCH_CERT}|$CERT_FILE|g" \
      -e "s|\${BENCH_KEY}|$KEY_FILE|g" "$template" >"$d/gatehouse.yaml"
  spawn "$d" "$binary" run -c "$d/gatehouse.yaml"
}

start_target() {  # name
  local t=$1 port d
  d="$WORK/$t"
  mkdir -p "$d"
  SKIP_REASON=""
  if [[ $t == direct ]]; then
    PORT[$t]=$UPSTREAM_PORT PID[$t]=$UPSTREAM_PID
    return 0
  fi
  port=${ports[next_port]}
  next_port=$((next_port + 1))
  case $t in
    nginx) start_nginx_proxy "$port" "$d" ;;
    haproxy) start_haproxy "$port" "$d" ;;
    gatehouse) start_gatehouse "$port" "$d" "$GATEHOUSE_TEMPLATE" "${TARGET_BINARY[$t]:-$GATEHOUSE}" || return 1 ;;
    *) start_gatehouse "$port" "$d" "${EXTRA_FILE[$t]}" "${TARGET_BINARY[$t]:-$GATEHOUSE}" || return 1 ;;
  esac
  PORT[$t]=$port PID[$t]=$SPAWNED
  local hdr_args=()
  while IFS= read -r h; do
    [[ -n $h ]] && hdr_args+=(--header "$h")
  done <<<"${TARGET_HEADERS[$t]:-}"
  if ! python3 "$TOOL" wait-http "$port" --pid "$SPAWNED" --path "${TARGET_PATH[$t]:-/}" \
      "${hdr_args[@]}" "${TLS_ARG[@]}" "${BODY_PROBE_ARGS[@]}" 2>"$d/wait.err"; then
    SKIP_REASON="did not answer 200 on 127.0.0.1:$port${TARGET_PATH[$t]:-/} ($(tail -n 1 "$d/wait.err"))"
    log "--- $t output:"
    tail -n 20 "$d"/*.log >&2 2>/dev/null || true
    stop_group "$SPAWNED"
    return 1
  fi
  # h2 mode: the row must answer an HTTP/2 request (ALPN h2) before it is measured
  if [[ $MODE == h2 ]] && ! python3 "$TOOL" wait-h2 "$port" --target "$t" --pid "$SPAWNED" \
      --path "${TARGET_PATH[$t]:-/}" "${hdr_args[@]}" >>"$OUT/h2.jsonl" 2>"$d/wait-h2.err"; then
    SKIP_REASON="no HTTP/2 over TLS on 127.0.0.1:$port${TARGET_PATH[$t]:-/} ($(tail -n 1 "$d/wait-h2.err"))"
    stop_group "$SPAWNED"
    return 1
  fi
  [[ $MODE == h2 ]] && cat "$d/wait-h2.err" >&2
  return 0
}

# A private redis-server for rows that keep rate limits in Redis (no persistence).
start_redis() {
  local d="$WORK/redis" port=${ports[${#SELECTED[@]} + 1]}
  mkdir -p "$d"
  spawn "$d" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$d"
  REDIS_PID=$SPAWNED
  export BENCH_REDIS_URL="redis://127.0.0.1:$port"
  local i
  for ((i = 0; i < 50; i++)); do
    python3 "$TOOL" wait-tcp "$port" 2>/dev/null && return 0
    alive "$REDIS_PID" || break
    sleep 0.1
  done
  tail -n 20 "$d"/*.log >&2 || true
  die "redis-server did not start"
}

log "gatehouse bench: ${SELECTED[*]}; ${ROUNDS} round(s) x ${DURATION}s, ${CONNECTIONS} connections$(
  [[ $MODE == h2 ]] && echo " x $STREAMS stream(s)")"
if [[ $MODE != plain ]]; then
  log "mode $MODE: $CERT_KIND certificate, $WORKERS worker(s) per proxy$( ((RESUME)) && echo ", sessions resumed")"
elif ((WORKERS > 1)); then
  log "$WORKERS workers per proxy"
fi
log "results: $OUT"
BUSY=$(python3 "$TOOL" busy)
if ((BUSY > 10)); then
  log "WARNING: the machine is ${BUSY}% busy before starting; other work on it skews the numbers"
fi
start_upstream
if ((REDIS)); then
  start_redis
  log "redis-server on $BENCH_REDIS_URL (pid $REDIS_PID)"
fi
: >"$OUT/h2.jsonl"
TARGETS=()
for t in "${SELECTED[@]}"; do
  if start_target "$t"; then
    TARGETS+=("$t")
    log "started $t on 127.0.0.1:${PORT[$t]} (pid ${PID[$t]})$(
      [[ -v TARGET_BINARY[$t] ]] && echo ", binary ${TARGET_BINARY[$t]}")"
  else
    log "SKIPPING $t: $SKIP_REASON"
    SKIPPED+=("$t: $SKIP_REASON")
  fi
done
((${#TARGETS[@]})) || die "nothing to benchmark"

# What each proxy negotiates with OpenSSL's client (protocol, cipher, group,
# tickets per handshake), to see that they are configured alike. (In h2 mode
# this is over HTTP/1.1; what h2load negotiated, ALPN included, is in h2.jsonl.)
: >"$OUT/tls.jsonl"
if [[ $MODE != plain ]]; then
  log "TLS as negotiated by openssl s_client:"
  for t in "${TARGETS[@]}"; do
    python3 "$TOOL" tls-info "${PORT[$t]}" --target "$t" --path "${TARGET_PATH[$t]:-/}" \
      >>"$OUT/tls.jsonl" || log "$t: openssl s_client could not make a TLS connection"
  done
fi

python3 "$TOOL" meta "$OUT/meta.json" --targets "${TARGETS[*]}" \
  --skipped "$(printf '%s\n' "${SKIPPED[@]}")" --duration "$DURATION" --rounds "$ROUNDS" \
  --connections "$CONNECTIONS" --warmup "$WARMUP" \
  --idle-connections "$((SKIP_MEMORY ? 0 : IDLE_CONNECTIONS))" --idle-batches "$IDLE_BATCHES" --busy "$BUSY" --baseline "$BASELINE" \
  --mode "$MODE" --cert "$([[ $MODE == plain ]] || echo "$CERT_KIND")" --workers "$WORKERS" \
  --wrk-threads "$WRK_THREADS" --resume "$RESUME" --tls-info "$OUT/tls.jsonl" \
  --streams "$STREAMS" --h2-info "$OUT/h2.jsonl" --gatehouse-binary "$GATEHOUSE" \
  --request-bytes "$REQUEST_BYTES" --response-bytes "$RESPONSE_BYTES" \
  --binaries "$(for t in "${TARGETS[@]}"; do
    if [[ -v TARGET_BINARY[$t] ]]; then printf '%s=%s\n' "$t" "${TARGET_BINARY[$t]}"; fi; done)"

# --- throughput, latency, CPU ----------------------------------------------

# A target whose process ended before the end of the benchmark: how it ended
# (reaped here; "signal 11 (SEGV)" or "exit status N"), logged and kept in
# failures.txt for the lines under the table.
declare -A GONE=()
target_gone() {  # target when
  local t=$1 when=$2 rc=0 how
  [[ -v GONE[$t] ]] && return 0
  wait "${PID[$t]}" 2>/dev/null || rc=$?
  if ((rc > 128)); then
    how="killed by signal $((rc - 128)) ($(kill -l "$rc" 2>/dev/null || echo "?"))"
  else
    how="exit status $rc"
  fi
  GONE[$t]=$how
  log "$t: process ended $when: $how (see $OUT/logs); not measured from then on"
  printf '%s\n' "$t: its process ended $when, $how" >>"$OUT/failures.txt"
}

# One run of the load generator against a target: wrk, or h2load in h2 mode
# (-c connections, -m streams in flight on each, -t threads, -D seconds; ALPN
# h2 only, so a target that falls back to HTTP/1.1 fails instead of being
# measured; --log-file for the latency percentiles).
run_load() {  # target round seconds record(0|1)
  local t=$1 round=$2 secs=$3 record=$4
  local url="$SCHEME://127.0.0.1:${PORT[$t]}${TARGET_PATH[$t]:-/}"
  local out="$OUT/$CLIENT/$t-r$round.txt" hdr_args=() h c0 c1 u0 u1 a0 a1 s0="" s1="" store_args=()
  local pre=() hs_args=() hs_file="$WORK/handshakes.txt" full resumed
  local cmd=() out_args=() h2log="$WORK/h2load-requests.tsv"
  [[ $record == 1 ]] || out="$WORK/warmup-$t.txt"
  while IFS= read -r h; do
    [[ -n $h ]] && hdr_args+=(-H "$h")
  done <<<"${TARGET_HEADERS[$t]:-}"
  [[ $MODE == handshake ]] && hdr_args+=(-H "Connection: close")
  if [[ -n $SHIM ]]; then  # counts wrk's handshakes; in handshake mode makes them full ones
    rm -f "$hs_file"
    pre=(env LD_PRELOAD="$SHIM" WRK_TLS_STATS="$hs_file" WRK_TLS_RESUME="$RESUME")
  fi
  if [[ $MODE == h2 ]]; then
    rm -f "$h2log"
    cmd=(h2load -t"$WRK_THREADS" -c"$CONNECTIONS" -m"$STREAMS" -D"$secs" --npn-list=h2
         --tls13-ciphers="$H2LOAD_TLS13_CIPHERS" --log-file="$h2log" "${hdr_args[@]}" "$url")
    out_args=(--h2load-out "$out" --h2load-log "$h2log" --streams "$STREAMS")
  else
    cmd=("${pre[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${secs}s"
         --latency -s "$LUA" "${hdr_args[@]}" "$url")
    out_args=(--wrk-out "$out")
  fi
  alive "${PID[$t]}" || { target_gone "$t" "before $([[ $record == 1 ]] && echo "round $round" || echo "the warm-up")"; return 0; }
  read -r c0 u0 a0 < <(python3 "$TOOL" sample "${PID[$t]}" "$UPSTREAM_PID" "$UPSTREAM_PORT") || true
  [[ -n $REDIS_PID ]] && s0=$(python3 "$TOOL" cpu "$REDIS_PID" 2>/dev/null || true)
  if ! BENCH_TOKENS="${TARGET_TOKENS[$t]:-}" BENCH_BODY_BYTES="$REQUEST_BYTES" run_bounded $((secs + 30)) "${cmd[@]}" \
      >"$out" 2>&1; then
    log "$t round $round: $CLIENT failed (see $out)"
    printf '%s\n' "$t: $CLIENT failed in round $round" >>"$OUT/failures.txt"
    return 0
  fi
  read -r c1 u1 a1 < <(python3 "$TOOL" sample "${PID[$t]}" "$UPSTREAM_PID" "$UPSTREAM_PORT") || true
  [[ -n $REDIS_PID ]] && s1=$(python3 "$TOOL" cpu "$REDIS_PID" 2>/dev/null || true)
  [[ -n $s0 && -n $s1 ]] && store_args=(--store-before "$s0" --store-after "$s1")
  if [[ -n $SHIM ]] && read -r _ full _ resumed <"$hs_file" 2>/dev/null; then
    hs_args=(--tls-full "$full" --tls-resumed "$resumed")
  fi
  alive "${PID[$t]}" || { target_gone "$t" "during $([[ $record == 1 ]] && echo "round $round" || echo "the warm-up")"; return 0; }
  [[ $record == 1 ]] || return 0
  [[ -n ${c0:-} && -n ${c1:-} ]] || { log "$t round $round: no CPU sample"; return 0; }
  local rec
  rec=$(python3 "$TOOL" record --target "$t" --round "$round" --connections "$CONNECTIONS" \
      "${out_args[@]}" --cpu-process "$([[ $t == direct ]] && echo upstream || echo "$t")" \
      --cpu-before "$c0" --cpu-after "$c1" --up-before "$u0" --up-after "$u1" \
      --accepts-before "$a0" --accepts-after "$a1" "${store_args[@]}" "${hs_args[@]}") || return 0
  printf '%s\n' "$rec" >>"$OUT/runs.jsonl"
}

if ((WARMUP > 0)); then
  log "warm-up (${WARMUP}s each)"
  for t in "${TARGETS[@]}"; do
    run_load "$t" 0 "$WARMUP" 0
  done
fi
n=${#TARGETS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  log "round $r/$ROUNDS"
  for ((i = 0; i < n; i++)); do  # rotate the order from round to round
    run_load "${TARGETS[(i + r - 1) % n]}" "$r" "$DURATION" 1
  done
done

# --- idle connection memory ------------------------------------------------

if ((SKIP_MEMORY == 0)); then
  IDLE_OPEN_TIMEOUT=60 IDLE_LIMIT=180
  if [[ $MODE != plain ]]; then  # a full TLS handshake per connection from Python takes longer
    IDLE_OPEN_TIMEOUT=240 IDLE_LIMIT=330
  fi
  log "idle memory: $IDLE_CONNECTIONS keep-alive $([[ $MODE == plain ]] || echo "TLS ")connections per proxy"
  for t in "${TARGETS[@]}"; do
    [[ $t == direct ]] && continue
    alive "${PID[$t]}" || { target_gone "$t" "before the memory measurement"; continue; }
    hdr_args=()
    while IFS= read -r h; do
      [[ -n $h ]] && hdr_args+=(--header "$h")
    done <<<"${TARGET_HEADERS[$t]:-}"
    if run_bounded "$IDLE_LIMIT" python3 "$TOOL" idle --target "$t" --port "${PORT[$t]}" \
        --timeout "$IDLE_OPEN_TIMEOUT" \
        --pid "${PID[$t]}" --count "$IDLE_CONNECTIONS" --batches "$IDLE_BATCHES" --path "${TARGET_PATH[$t]:-/}" \
        "${hdr_args[@]}" "${TLS_ARG[@]}" >"$WORK/idle.json"; then
      cat "$WORK/idle.json" >>"$OUT/memory.jsonl"
    else
      log "$t: idle-connection measurement failed"
      cat "$WORK/idle.json" >>"$OUT/memory.jsonl"
    fi
  done
fi

# --- report ----------------------------------------------------------------

echo
python3 "$TOOL" summarize "$OUT"
if [[ $(dirname "$OUT") == "$BENCH_DIR/out" ]]; then
  ln -sfn "$(basename "$OUT")" "$BENCH_DIR/out/latest" 2>/dev/null || true
fi
