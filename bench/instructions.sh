#!/usr/bin/env bash
# User-space instructions per request of gatehouse and nginx, proxying alike, counted by
# valgrind's callgrind: a figure other work on the machine does not skew, where CPU time on a
# virtual machine moves by 5-25% from one run to the next (bench/run.sh). It guides work on the
# program's own share of a request; the kernel's share (system calls) is not in it, so it does not
# replace CPU per request.
#
# Each proxy runs under callgrind in front of one nginx upstream (not counted). h2load sends a
# warm-up, then two counted runs of 50 connections: one of 50 requests and one of 50 + N. The
# difference, divided by N, is what a request costs on a warm keep-alive connection, without the
# connections' setup (the TLS handshakes, in the TLS modes), which both runs share.
#   bench/instructions.sh                  # HTTP/2 over TLS, one stream per connection
#   bench/instructions.sh --mode plain     # HTTP/1.1, plain
#   bench/instructions.sh --mode tls       # HTTP/1.1 over TLS
#   bench/instructions.sh --gatehouse-binary PATH --requests 20000 --only gatehouse
#   bench/instructions.sh --mode plain --syscalls   # system calls per request instead, by kind
# --syscalls runs each proxy as itself and counts its system calls with perf's tracepoints over
# the same two runs (root, or perf_event_paranoid at -1). Needs valgrind (or perf for
# --syscalls), nginx, h2load (nghttp2-client), openssl and Python 3. A few minutes.
set -Eeuo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GATEHOUSE=$BENCH_DIR/../build/release/src/app/gatehouse
MODE=h2
REQUESTS=10000
ONLY="gatehouse,nginx"
SYSCALLS=0
usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --mode) MODE=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --gatehouse-binary) GATEHOUSE=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --syscalls) SYSCALLS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "instructions.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
case $MODE in plain|tls|h2) ;; *) echo "instructions.sh: --mode is plain, tls or h2" >&2; exit 2 ;; esac
[[ $REQUESTS =~ ^[0-9]+$ ]] && ((REQUESTS >= 100)) || { echo "instructions.sh: --requests needs 100 or more" >&2; exit 2; }
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
COUNTERS=(valgrind callgrind_control)
((SYSCALLS)) && COUNTERS=(perf)
for tool in "${COUNTERS[@]}" nginx h2load openssl python3; do
  command -v "$tool" >/dev/null || { echo "instructions.sh: needs $tool" >&2; exit 2; }
done
[[ -x $GATEHOUSE ]] || { echo "instructions.sh: no gatehouse binary at $GATEHOUSE" >&2; exit 2; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
read -r UP GW NX < <(python3 "$BENCH_DIR/benchtool.py" free-ports 3)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

nginx_conf() {  # dir: directives of both nginx instances (one process, no master)
  mkdir -p "$1/tmp"
  cat <<EOF
daemon off; master_process off; worker_processes 1; pid $1/nginx.pid; error_log $1/error.log warn;
events { worker_connections 1024; }
http {
  access_log off; keepalive_timeout 300s; keepalive_requests 1000000;
  client_body_temp_path $1/tmp; proxy_temp_path $1/tmp; fastcgi_temp_path $1/tmp;
  uwsgi_temp_path $1/tmp; scgi_temp_path $1/tmp;
EOF
}
mkdir -p "$WORK/up"
{ nginx_conf "$WORK/up"; echo "  server { listen 127.0.0.1:$UP; location / { return 200 \"ok\n\"; } } }"; } >"$WORK/up/nginx.conf"
nginx -p "$WORK/up" -c "$WORK/up/nginx.conf" -e "$WORK/up/error.log" &
PIDS+=($!)

# The proxies: one worker, no access log, keep-alive to the upstream, X-Forwarded-For added.
mkdir -p "$WORK/nx"
{
  nginx_conf "$WORK/nx"
  cat <<EOF
  upstream backend { server 127.0.0.1:$UP; keepalive 64; keepalive_requests 1000000; keepalive_timeout 300s; }
  server {
    listen 127.0.0.1:$NX$([[ $MODE == plain ]] || echo " ssl")$([[ $MODE == h2 ]] && echo " http2");
EOF
  if [[ $MODE != plain ]]; then
    cat <<EOF
    ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on; ssl_session_cache off;
EOF
  fi
  cat <<EOF
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
                 proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; }
  }
}
EOF
} >"$WORK/nx/nginx.conf"
{
  if [[ $MODE == plain ]]; then
    echo "listen: \"127.0.0.1:$GW\""
  else
    echo "listen:"
    echo "  - address: \"127.0.0.1:$GW\""
    echo "    tls: {cert: \"$WORK/cert.pem\", key: \"$WORK/key.pem\"}"
  fi
  cat <<EOF
workers: 1
access_log: off
services:
  upstream:
    instances: ["http://127.0.0.1:$UP"]
routes:
  - path: /
    service: upstream
EOF
} >"$WORK/gatehouse.yaml"

scheme=https
[[ $MODE == plain ]] && scheme=http
client() {  # port requests: h2load's count of answered requests
  local args=(-c 50 -n "$2" -m 1)
  [[ $MODE == h2 ]] || args+=(--h1)
  h2load "${args[@]}" "$scheme://127.0.0.1:$1/" 2>/dev/null | awk '/^requests:/ {print $8}'
}

# System calls of PID while `client PORT N` runs, by kind: "kind count" lines.
SYSCALL_KINDS=(recvfrom recvmsg sendmsg sendto read readv write writev epoll_wait epoll_ctl)
count_syscalls() {  # pid port n
  local events=raw_syscalls:sys_enter k
  for k in "${SYSCALL_KINDS[@]}"; do events+=",syscalls:sys_enter_$k"; done
  perf stat -x, -e "$events" -p "$1" -o "$WORK/perf.out" &
  local perf=$!
  sleep 0.5  # attached
  local ok
  ok=$(client "$2" "$3")
  kill -INT "$perf"
  wait "$perf" 2>/dev/null || true
  [[ $ok == "$3" ]] || { echo "instructions.sh: ${ok:-0} of $3 requests answered" >&2; return 1; }
  awk -F, '$3 ~ /sys_enter/ {sub(/.*sys_enter_?/, "", $3); print ($3 == "" ? "all" : $3), $1}' "$WORK/perf.out"
}

declare -A PER_REQ
if ((SYSCALLS)); then
  for name in ${ONLY//,/ }; do
    case $name in
      gatehouse) port=$GW; cmd=("$GATEHOUSE" run -c "$WORK/gatehouse.yaml") ;;
      nginx) port=$NX; cmd=(nginx -p "$WORK/nx" -c "$WORK/nx/nginx.conf" -e "$WORK/nx/error.log") ;;
      *) echo "instructions.sh: --only names gatehouse and nginx" >&2; exit 2 ;;
    esac
    "${cmd[@]}" 2>"$WORK/$name.log" &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do python3 "$BENCH_DIR/benchtool.py" wait-tcp "$port" && break; sleep 0.1; done
    client "$port" 3000 >/dev/null  # warm-up
    count_syscalls "$pid" "$port" 50 >"$WORK/sc.short"
    count_syscalls "$pid" "$port" $((50 + REQUESTS)) >"$WORK/sc.long"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    python3 - "$name" "$MODE" "$REQUESTS" "$WORK/sc.short" "$WORK/sc.long" <<'PY'
import sys
name, mode, n, short, long_ = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
def load(path):
    return {k: int(v) for k, v in (line.split() for line in open(path))}
a, b = load(short), load(long_)
per = {k: (b[k] - a.get(k, 0)) / n for k in b}
kinds = ", ".join(f"{k} {v:.2f}" for k, v in per.items() if k != "all" and v >= 0.005)
print(f"{name}: {per['all']:.2f} system calls per request ({kinds}; mode {mode}, {n} requests on 50 warm connections)")
PY
  done
  exit 0
fi
for name in ${ONLY//,/ }; do
  case $name in
    gatehouse) port=$GW; cmd=("$GATEHOUSE" run -c "$WORK/gatehouse.yaml") ;;
    nginx) port=$NX; cmd=(nginx -p "$WORK/nx" -c "$WORK/nx/nginx.conf" -e "$WORK/nx/error.log") ;;
    *) echo "instructions.sh: --only names gatehouse and nginx" >&2; exit 2 ;;
  esac
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$name" "${cmd[@]}" 2>"$WORK/vg.$name.log" &
  vg=$!
  PIDS+=("$vg")
  for _ in $(seq 300); do python3 "$BENCH_DIR/benchtool.py" wait-tcp "$port" && break; sleep 0.2; done
  python3 "$BENCH_DIR/benchtool.py" wait-tcp "$port" || {
    echo "instructions.sh: $name did not listen" >&2; cat "$WORK/vg.$name.log" >&2; exit 1; }
  client "$port" 3000 >/dev/null  # warm-up
  counts=()
  dumps=0
  for n in 50 $((50 + REQUESTS)); do
    callgrind_control -z "$vg" >/dev/null 2>&1
    ok=$(client "$port" "$n")
    callgrind_control -d "$vg" >/dev/null 2>&1
    [[ $ok == "$n" ]] || { echo "instructions.sh: $name: ${ok:-0} of $n requests answered" >&2; exit 1; }
    dumps=$((dumps + 1))  # callgrind numbers its dumps
    counts+=("$(awk '/^summary:/ {print $2}' "$WORK/cg.$name.$dumps")")
  done
  kill "$vg"
  wait "$vg" 2>/dev/null || true
  PER_REQ[$name]=$(((counts[1] - counts[0]) / REQUESTS))
  echo "$name: ${PER_REQ[$name]} instructions per request (user space; mode $MODE, $REQUESTS requests on 50 warm connections)"
done
if [[ -n ${PER_REQ[gatehouse]:-} && -n ${PER_REQ[nginx]:-} ]]; then
  python3 -c "import sys; g, n = int(sys.argv[1]), int(sys.argv[2]); print(f'gatehouse / nginx: {g / n:.2f}')" \
    "${PER_REQ[gatehouse]}" "${PER_REQ[nginx]}"
fi
