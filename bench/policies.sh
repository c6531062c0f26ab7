#!/usr/bin/env bash
# What each policy costs on its own (bench/README.md, "Policy overhead"): one interleaved run of
# bench/run.sh with plain proxying (row gatehouse), then each policy alone on the route
# (bench/policy-*.yaml), and nginx for reference. Every row requests / and gets what its policy
# needs: an HS256 token minted with `gatehouse token`, an RS256 token signed with a key pair made
# for the run (openssl), an API key, an allowed Origin. Under run.sh's tables it prints each
# row's CPU per request over the plain row's, and what the policy adds in microseconds.
# Options are passed to bench/run.sh after these, e.g. bench/policies.sh --duration 3 --rounds 1.
set -Eeuo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GATEHOUSE=${GATEHOUSE:-$BENCH_DIR/../build/release/src/app/gatehouse}
die() { echo "policies.sh: $*" >&2; exit 2; }
[[ -x $GATEHOUSE ]] || die "no gatehouse binary at $GATEHOUSE (build the release preset)"
GATEHOUSE=$(realpath "$GATEHOUSE")
command -v openssl >/dev/null || die "needs openssl (apt-get install -y openssl)"

# Results go where run.sh is told (--out), else to bench/out/TIMESTAMP (and bench/out/latest).
OUT=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --out) OUT=${args[i + 1]:-} ;;
    --out=*) OUT=${args[i]#--out=} ;;
  esac
done
OUT_ARGS=()
if [[ -z $OUT ]]; then
  OUT="$BENCH_DIR/out/$(date +%Y%m%d-%H%M%S)"
  OUT_ARGS=(--out "$OUT")
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-policies.XXXXXX")
RUN_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [[ -n $RUN_PID ]]; then  # run.sh stops its servers when it ends
    kill -TERM "$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# HS256: policy-jwt-hs256.yaml's secret.
HS256_TOKEN=$("$GATEHOUSE" token --secret bench-secret --sub 42 --ttl 2h)
# RS256: a 2048-bit key pair for this run; the token is built here (header.payload, signed with
# RSASSA-PKCS1-v1_5 SHA-256 by openssl dgst) and checked with the public key by gatehouse.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rs256-key.pem" 2>/dev/null ||
  die "openssl could not make an RSA key"
openssl pkey -in "$WORK/rs256-key.pem" -pubout -out "$WORK/rs256.pem"
now=$(date +%s)
signing_input="$(printf '{"alg":"RS256","typ":"JWT"}' | b64url).$(
  printf '{"sub":"42","iat":%d,"exp":%d}' "$now" $((now + 7200)) | b64url)"
RS256_TOKEN="$signing_input.$(printf '%s' "$signing_input" |
  openssl dgst -sha256 -sign "$WORK/rs256-key.pem" -binary | b64url)"
export BENCH_RS256_PEM="$WORK/rs256.pem"
API_KEY=bench-key-0123456789abcdef  # policy-api-key.yaml's key
ORIGIN=https://app.example.com      # policy-cors.yaml's origin

ROWS=(security_headers jwt-hs256 jwt-rs256 api_key cors ip_filter rate_limit-memory rate_limit-redis)
declare -A FILE=(
  [security_headers]=policy-security-headers.yaml [jwt-hs256]=policy-jwt-hs256.yaml
  [jwt-rs256]=policy-jwt-rs256.yaml [api_key]=policy-api-key.yaml [cors]=policy-cors.yaml
  [ip_filter]=policy-ip-filter.yaml [rate_limit-memory]=policy-rate-limit-memory.yaml
  [rate_limit-redis]=policy-rate-limit-redis.yaml
)
ROW_ARGS=()
for r in "${ROWS[@]}"; do
  ROW_ARGS+=(--gatehouse-config "$r=$BENCH_DIR/${FILE[$r]}")
done
ROW_ARGS+=(--header "jwt-hs256=Authorization: Bearer $HS256_TOKEN"
           --header "jwt-rs256=Authorization: Bearer $RS256_TOKEN"
           --header "api_key=X-API-Key: $API_KEY"
           --header "cors=Origin: $ORIGIN")

ONLY="gatehouse,$(IFS=,; echo "${ROWS[*]}"),nginx"
export GATEHOUSE
"$BENCH_DIR/run.sh" --redis --skip-memory --only "$ONLY" --baseline gatehouse \
  "${ROW_ARGS[@]}" "${OUT_ARGS[@]}" "$@" &
RUN_PID=$!
rc=0
wait "$RUN_PID" || rc=$?
RUN_PID=""
((rc == 0)) || exit "$rc"

# The overhead table: each row's median CPU per request over the plain row's, the difference in
# microseconds (what the policy adds to a request), and the median of the per-round ratios.
python3 - "$OUT" "$(IFS=,; echo "${ROWS[*]}")" <<'PY' | tee "$OUT/policies.txt"
import json, os, statistics, sys
out, names = sys.argv[1], sys.argv[2].split(",") + ["nginx"]
with open(os.path.join(out, "summary.json")) as f:
    rows = json.load(f).get("targets") or {}
plain = (rows.get("gatehouse") or {}).get("cpu_us_per_req")
if not plain:
    sys.exit("policies.sh: no measured plain gatehouse row")
# Each round's ratio to the plain row of the same round: steadier than the ratio of the medians
# when the machine drifts from round to round.
by_round = {}
with open(os.path.join(out, "runs.jsonl")) as f:
    for line in f:
        if line.strip():
            r = json.loads(line)
            by_round.setdefault(r["round"], {})[r["target"]] = r["cpu_us_per_req"]


def round_ratio(name):
    ratios = [v[name] / v["gatehouse"] for v in by_round.values()
              if v.get(name) and v.get("gatehouse")]
    return statistics.median(ratios) if ratios else None


print()
print(f"{'policy alone on the route':<26} {'CPU us/req':>10} {'vs plain':>8} {'+us/req':>8} "
      f"{'by round':>8}")
print(f"{'-' * 26} {'-' * 10} {'-' * 8} {'-' * 8} {'-' * 8}")
print(f"{'none (gatehouse, plain)':<26} {plain:>10.1f} {1:>8.2f}")
for name in names:
    cpu = (rows.get(name) or {}).get("cpu_us_per_req")
    label = "(nginx, for reference)" if name == "nginx" else name
    if cpu is None:
        print(f"{label:<26} {'-':>10} {'-':>8} {'-':>8} {'-':>8}")
        continue
    rr = round_ratio(name)
    print(f"{label:<26} {cpu:>10.1f} {cpu / plain:>8.2f} {cpu - plain:>+8.1f} "
          + (f"{rr:>8.2f}" if rr is not None else f"{'-':>8}"))
print()
print("vs plain: median CPU per request over the plain row's; +us/req: their difference;")
print("by round: the median over the rounds of each round's ratio to that round's plain row")
PY
