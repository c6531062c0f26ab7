// The scrape of GET /metrics: every family of the registry in the Prometheus text format 0.0.4
// (one `# HELP` and `# TYPE` per family, histograms as cumulative _bucket{le}, _sum and
// _count), plus gatehouse_instance_healthy{service,instance}, read from the snapshot's services
// at the time of the scrape.
// Thread: any thread (the admin server's, on the control loop); it only reads the registry's
// relaxed counters and the snapshot's endpoint atomics, so a scrape never stops a worker.
#pragma once

#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/metrics.h"
#include "proxy/snapshot.h"

namespace gh::admin {

// The Content-Type of what render_prometheus returns.
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// The whole scrape. Families come ordered by name; instance_healthy is 1 for an instance
// available at `clock`'s now (active check healthy, not passively ejected), else 0.
std::string render_prometheus(const core::Metrics& metrics, const proxy::Snapshot& snapshot,
                              const core::Clock& clock = core::Clock::real());

// An instance's label: its URL, and for one of several addresses a host name resolves to,
// the address too ("http://api.internal:3001 (10.0.0.5:3001)"), so that no two series collide.
std::string instance_label(const upstream::Endpoint& e);

}  // namespace gh::admin
