#!/usr/bin/env bash
# The seed's policy chain against plain proxying, in one run (bench/README.md, "The
# policy-chain rows"): rows gatehouse (plain), seed (rate limit in memory) and seed-redis
# (rate limit in a redis-server the run starts). Options are passed to bench/run.sh after
# these, e.g. bench/chains.sh --duration 3 --rounds 1.
set -Eeuo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GATEHOUSE=${GATEHOUSE:-$BENCH_DIR/../build/release/src/app/gatehouse}
[[ -x $GATEHOUSE ]] || { echo "chains.sh: no gatehouse binary at $GATEHOUSE (build the release preset)" >&2; exit 2; }
# The chain's jwt policy checks HS256 with this secret (seed-chain*.yaml).
TOKEN=$("$GATEHOUSE" token --secret bench-secret --sub 42 --ttl 2h)
export GATEHOUSE
exec "$BENCH_DIR/run.sh" --redis --skip-memory --only gatehouse,seed,seed-redis \
  --gatehouse-config seed="$BENCH_DIR/seed-chain.yaml" --path seed=/api/users/1 \
  --header "seed=Authorization: Bearer $TOKEN" \
  --gatehouse-config seed-redis="$BENCH_DIR/seed-chain-redis.yaml" --path seed-redis=/api/users/1 \
  --header "seed-redis=Authorization: Bearer $TOKEN" \
  "$@"
