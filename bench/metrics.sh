#!/usr/bin/env bash
# What the metrics cost: the seed's policy chain with metrics off (seed-chain.yaml) and on
# (seed-chain-metrics.yaml: the same with `admin:`), interleaved in one run of bench/run.sh
# (bench/README.md, "Metrics on and off"). Under run.sh's tables it prints each round's CPU per
# request with metrics on over off, and their median. Options are passed to bench/run.sh after
# these, e.g. bench/metrics.sh --duration 4 --rounds 5.
set -Eeuo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GATEHOUSE=${GATEHOUSE:-$BENCH_DIR/../build/release/src/app/gatehouse}
[[ -x $GATEHOUSE ]] || { echo "metrics.sh: no gatehouse binary at $GATEHOUSE (build the release preset)" >&2; exit 2; }
# The chain's jwt policy checks HS256 with this secret (seed-chain*.yaml).
TOKEN=$("$GATEHOUSE" token --secret bench-secret --sub 42 --ttl 2h)
export GATEHOUSE
"$BENCH_DIR/run.sh" --skip-memory --only metrics-off,metrics-on --baseline metrics-off \
  --gatehouse-config metrics-off="$BENCH_DIR/seed-chain.yaml" --path metrics-off=/api/users/1 \
  --header "metrics-off=Authorization: Bearer $TOKEN" \
  --gatehouse-config metrics-on="$BENCH_DIR/seed-chain-metrics.yaml" --path metrics-on=/api/users/1 \
  --header "metrics-on=Authorization: Bearer $TOKEN" \
  "$@"
# Round by round: the two rows of a round ran back to back, so their ratio is the steadier figure.
python3 - "$BENCH_DIR/out/latest/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in runs:
    by.setdefault(r["round"], {})[r["target"]] = r["cpu_us_per_req"]
ratios = [v["metrics-on"] / v["metrics-off"] for _, v in sorted(by.items())
          if v.get("metrics-on") and v.get("metrics-off")]
if not ratios:
    sys.exit("metrics.sh: no round with both rows")
print("CPU us/req, metrics on / off, by round: " + " ".join(f"{x:.3f}" for x in ratios))
print(f"median {statistics.median(ratios):.3f} ({(statistics.median(ratios) - 1) * 100:+.1f}% CPU per request)")
PY
