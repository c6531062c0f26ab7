#!/usr/bin/env bash
# What the metrics cost in instructions, a figure that other work on the machine does not skew
# (CPU time does; bench/metrics.sh measures that): gatehouse runs the seed's chain under
# valgrind's callgrind, once without `admin:` (seed-chain.yaml) and once with it
# (seed-chain-metrics.yaml); after a warm-up of 500 requests, 3000 requests on one keep-alive
# connection are counted. Prints the user-space instructions per request of each and their
# ratio. The kernel's share of a request (its system calls) is the same for both: recording
# makes none. Needs valgrind, nginx (the upstream) and Python 3.
#   bench/metrics-instructions.sh            # about a minute
set -Eeuo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GATEHOUSE=${GATEHOUSE:-$BENCH_DIR/../build/release/src/app/gatehouse}
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
for tool in valgrind callgrind_control nginx python3; do
  command -v "$tool" >/dev/null || { echo "metrics-instructions.sh: needs $tool" >&2; exit 2; }
done
[[ -x $GATEHOUSE ]] || { echo "metrics-instructions.sh: no gatehouse binary at $GATEHOUSE" >&2; exit 2; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
read -r UP GW < <(python3 "$BENCH_DIR/benchtool.py" free-ports 2)

mkdir -p "$WORK/up/tmp"
cat >"$WORK/up/nginx.conf" <<NG
daemon off; master_process off; worker_processes 1; pid $WORK/up/nginx.pid; error_log $WORK/up/error.log warn;
events { worker_connections 1024; }
http {
  access_log off; keepalive_timeout 300s; keepalive_requests 1000000;
  client_body_temp_path $WORK/up/tmp; proxy_temp_path $WORK/up/tmp; fastcgi_temp_path $WORK/up/tmp;
  uwsgi_temp_path $WORK/up/tmp; scgi_temp_path $WORK/up/tmp;
  server { listen 127.0.0.1:$UP; location / { return 200 "ok\n"; } }
}
NG
nginx -p "$WORK/up" -c "$WORK/up/nginx.conf" -e "$WORK/up/error.log" &
PIDS+=($!)

# N requests on one keep-alive connection; prints how many were answered 200.
cat >"$WORK/client.py" <<'PY'
import socket, sys
port, n, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
req = f"GET /api/users/1 HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
s = socket.create_connection(("127.0.0.1", port), timeout=30)
ok = 0
for _ in range(n):
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += s.recv(65536)
    ok += head.startswith(b"HTTP/1.1 200")
print(ok)
PY

TOKEN=$("$GATEHOUSE" token --secret bench-secret --sub 42 --ttl 2h)
declare -A PER_REQ
for name in off on; do
  file=$BENCH_DIR/seed-chain.yaml
  [[ $name == on ]] && file=$BENCH_DIR/seed-chain-metrics.yaml
  sed -e "s|\${BENCH_LISTEN}|127.0.0.1:$GW|" -e "s|\${BENCH_UPSTREAM}|http://127.0.0.1:$UP|" "$file" >"$WORK/$name.yaml"
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$name" "$GATEHOUSE" run -c "$WORK/$name.yaml" \
    2>"$WORK/vg.$name.log" &
  vg=$!
  PIDS+=("$vg")
  for _ in $(seq 300); do python3 "$BENCH_DIR/benchtool.py" wait-tcp "$GW" && break; sleep 0.2; done
  python3 "$BENCH_DIR/benchtool.py" wait-tcp "$GW" || {
    echo "metrics-instructions.sh: gatehouse ($name) did not listen" >&2; cat "$WORK/vg.$name.log" >&2; exit 1; }
  python3 "$WORK/client.py" "$GW" 500 "$TOKEN" >/dev/null
  callgrind_control -z "$vg" >/dev/null 2>&1
  ok=$(python3 "$WORK/client.py" "$GW" 3000 "$TOKEN")
  callgrind_control -d "$vg" >/dev/null 2>&1
  kill "$vg"
  wait "$vg" 2>/dev/null || true
  [[ $ok == 3000 ]] || { echo "metrics-instructions.sh: $name: only $ok of 3000 requests answered 200" >&2; exit 1; }
  ir=$(awk '/^summary:/ {print $2}' "$WORK/cg.$name.1")
  PER_REQ[$name]=$((ir / 3000))
  echo "metrics $name: ${PER_REQ[$name]} instructions per request (user space)"
done
python3 -c "import sys; on, off = int(sys.argv[1]), int(sys.argv[2]); print(f'on / off: {on / off:.4f} ({(on / off - 1) * 100:+.2f}%)')" \
  "${PER_REQ[on]}" "${PER_REQ[off]}"
