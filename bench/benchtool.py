#!/usr/bin/env python3
"""Helpers for bench/run.sh (Python 3 standard library only).

Subcommands:
  free-ports N                  print N distinct free TCP ports on 127.0.0.1
  wait-http PORT [--pid P]      wait until GET / on 127.0.0.1:PORT answers 200 (--body-bytes N:
                                a POST with an N-byte body; --expect-bytes N: and a body of N)
                                (--tls: over TLS, the certificate not verified)
  tls-info PORT                 what a TLS server offers: protocol, cipher, key
                                exchange group, tickets per handshake (openssl s_client)
  cpu PID                       CPU seconds (user+system) of PID and its descendants
  wait-h2 PORT                  one HTTP/2 request over TLS with h2load (ALPN h2 only):
                                exit 0 when h2 was negotiated and the answer was 2xx
  record ...                    turn one wrk or h2load run into a JSON line (runs.jsonl)
  idle ...                      hold N idle keep-alive connections open against
                                a proxy and report its memory before and after
                                (--tls: TLS connections)
  summarize DIR                 medians over rounds, the table, summary.json

Everything here talks to loopback addresses only.
"""

import argparse
import errno
import json
import math
import os
import resource
import selectors
import socket
import ssl
import statistics
import subprocess
import sys
import time

LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BUSY_WARN_PERCENT = 10  # CPU use by other work, before the start, worth a warning


# --- processes -------------------------------------------------------------

def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (which may hold spaces)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read().decode("ascii", "replace")
    return data[data.rindex(")") + 2:].split()


def process_tree(root):
    """root and every live descendant of it."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(name)[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(root):
    """utime+stime of the tree, in seconds (all threads of each process)."""
    ticks = 0
    for pid in process_tree(root):
        try:
            f = _stat_fields(pid)
        except OSError:
            continue
        ticks += int(f[11]) + int(f[12])  # fields 14 and 15 of stat(5)
    return ticks / CLK_TCK


def memory_kib(root):
    """Rss and Pss of the tree in KiB (Pss sums shared pages fairly)."""
    rss = pss = 0
    pids = process_tree(root)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except FileNotFoundError:
            try:  # kernels without smaps_rollup: VmRSS only
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss += int(line.split()[1])
                pss = rss
            except OSError:
                continue
        except OSError:
            continue
    return {"rss_kib": rss, "pss_kib": pss, "processes": len(pids)}


# --- small commands --------------------------------------------------------

def cmd_free_ports(args):
    socks = []
    try:
        for _ in range(args.n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
    finally:
        for s in socks:
            s.close()


def client_tls_context():
    """A client context that accepts the benchmark's self-signed certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def http_get_status(port, path, timeout, headers=(), tls=False, body_bytes=0, want_body=False):
    """The status of one request (GET; with body_bytes, a POST with a body of that many
    bytes); with want_body, (status, the response body's length) after reading it all."""
    s = socket.create_connection((LOOPBACK, port), timeout=timeout)
    try:
        if tls:
            s = client_tls_context().wrap_socket(s)
        extra = "".join(h + "\r\n" for h in headers)
        method = "GET"
        if body_bytes:
            method = "POST"
            extra += f"Content-Type: application/octet-stream\r\nContent-Length: {body_bytes}\r\n"
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n{extra}"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        if body_bytes:
            try:
                s.sendall(b"x" * body_bytes)
            except OSError as e:  # refused mid-body (a body limit): its answer may be in already
                try:
                    data = s.recv(65536)
                except OSError:
                    pass
                if not data.startswith(b"HTTP/"):
                    raise OSError(e.errno, f"connection closed while sending the {body_bytes}-byte "
                                  f"body ({e.strerror}; a body size limit?)") from e
        while (b"\r\n\r\n" if want_body else b"\r\n") not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        parts = data.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if not want_body:
            return status
        head, _, body = data.partition(b"\r\n\r\n")
        while True:  # Connection: close: the body ends with the connection
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        if b"\r\ntransfer-encoding: chunked" in head.lower():
            body = _dechunk(body)
        return status, len(body)
    finally:
        s.close()


def _dechunk(data):
    out, pos = b"", 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return out
        size = int(data[pos:eol].split(b";")[0] or b"0", 16)
        if size == 0:
            return out
        out += data[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


def cmd_wait_http(args):
    deadline = time.monotonic() + args.timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if args.pid and not os.path.exists(f"/proc/{args.pid}"):
            print(f"process {args.pid} exited", file=sys.stderr)
            return 1
        try:
            if args.expect_bytes is None:
                status = http_get_status(args.port, args.path, 1.0, args.header, args.tls,
                                         args.body_bytes)
                length = None
            else:
                status, length = http_get_status(args.port, args.path, 5.0, args.header,
                                                 args.tls, args.body_bytes, want_body=True)
            if status == 200 and length in (None, args.expect_bytes):
                return 0
            last = (f"status {status}" if status != 200 else
                    f"a body of {length} bytes, not {args.expect_bytes}")
        except OSError as e:  # ssl.SSLError included
            last = str(e)
        time.sleep(0.05)
    print(f"127.0.0.1:{args.port}{args.path}: {last}", file=sys.stderr)
    return 1


def cmd_tls_info(args):
    """What the TLS server on PORT negotiates with OpenSSL's own client, and how many
    session tickets it sends per full handshake: one JSON line (empty values when
    openssl is missing or the handshake fails)."""
    info = {"target": args.target, "protocol": None, "cipher": None, "group": None,
            "server_key": None, "tickets": None, "status": None}
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
               "Connection: close\r\n\r\n")
    try:
        r = subprocess.run(["openssl", "s_client", "-connect", f"{LOOPBACK}:{args.port}",
                            "-msg", "-ign_eof"], input=request, capture_output=True,
                           text=True, timeout=10)
        out = r.stdout + r.stderr
    except (OSError, subprocess.SubprocessError) as e:
        info["error"] = str(e)
        out = ""
    tickets = 0
    for line in out.splitlines():
        t = line.strip()
        if t.startswith("<<<") and t.endswith("NewSessionTicket"):
            tickets += 1
        elif t.startswith("Server Temp Key:") or t.startswith("Negotiated TLS1.3 group:"):
            info["group"] = t.split(":", 1)[1].strip()
        elif t.startswith("Server public key is"):
            info["server_key"] = t[len("Server public key is"):].strip()
        elif t.startswith("Protocol") and ":" in t:
            info["protocol"] = t.split(":", 1)[1].strip()
        elif t.startswith("Cipher") and ":" in t and info["cipher"] is None:
            info["cipher"] = t.split(":", 1)[1].strip()
        elif t.startswith("HTTP/1.1 ") and info["status"] is None:
            info["status"] = t.split(" ")[1]
    if out:
        info["tickets"] = tickets
    print(json.dumps(info))
    print(f"  {args.target:<22} {info['protocol']} {info['cipher']} group {info['group']}, "
          f"key {info['server_key']}, {info['tickets']} ticket(s) per handshake, "
          f"status {info['status']}", file=sys.stderr)
    return 0 if info["protocol"] else 1


def machine_busy(seconds=1.0):
    """Share of all CPUs busy over the next `seconds` (/proc/stat), 0..1."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / (t1 - t0) if t1 > t0 else 0.0


def cmd_busy(args):
    print(f"{100 * machine_busy(args.seconds):.0f}")


def cmd_wait_tcp(args):
    """Exit 0 when something accepts connections on 127.0.0.1:port, else 1."""
    try:
        with socket.create_connection(("127.0.0.1", args.port), timeout=1):
            return 0
    except OSError:
        return 1


def cmd_cpu(args):
    print(f"{cpu_seconds(args.pid):.2f}")


def upstream_accepts(port):
    """Connections the upstream nginx has accepted so far (stub_status),
    counting the one this call makes."""
    s = socket.create_connection((LOOPBACK, port), timeout=5)
    try:
        s.sendall(f"GET /bench-status HTTP/1.1\r\nHost: {LOOPBACK}\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    lines = data.decode("latin-1").split("\r\n\r\n", 1)[-1].splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("server accepts"):
            return int(lines[i + 1].split()[0])
    raise ValueError("no stub_status answer")


def cmd_sample(args):
    """One line: proxy CPU s, upstream CPU s, upstream accepted connections."""
    try:
        accepts = upstream_accepts(args.upstream_port)
    except (OSError, ValueError):
        accepts = -1
    print(f"{cpu_seconds(args.pid):.2f} {cpu_seconds(args.upstream_pid):.2f} {accepts}")


# --- h2load ----------------------------------------------------------------

_TIME_UNITS = {"us": 1, "ms": 1e3, "s": 1e6}


def _duration_us(text):
    """h2load's human durations ("243us", "5.67ms", "2.01s") in microseconds."""
    for unit in ("us", "ms", "s"):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * _TIME_UNITS[unit]
    raise ValueError(f"not a duration: {text!r}")


def parse_h2load(text):
    """The figures of h2load's report (nghttp2 1.52): counts, rate, the TLS it
    negotiated, the request times. Raises ValueError when the report is incomplete
    (h2load failed before its summary)."""
    out = {"alpn": None, "tls_protocol": None, "cipher": None, "server_temp_key": None}
    for line in text.splitlines():
        t = line.strip()
        if t.startswith("finished in "):
            # finished in 2.01s, 2000.00 req/s, 134.89KB/s
            parts = [p.strip() for p in t[len("finished in "):].split(",")]
            out["seconds"] = _duration_us(parts[0]) / 1e6
            out["rps"] = float(parts[1].split()[0])
        elif t.startswith("requests: "):
            # requests: 4001 total, 4004 started, 4001 done, 4000 succeeded, 1 failed,
            # 1 errored, 0 timeout
            for item in t[len("requests: "):].split(","):
                n, name = item.split()
                out[f"req_{name}"] = int(n)
        elif t.startswith("status codes: "):
            for item in t[len("status codes: "):].split(","):
                n, name = item.split()
                out[f"status_{name}"] = int(n)
        elif t.startswith("time for request:"):
            f = t.split(":", 1)[1].split()
            out["min_us"], out["max_us"], out["mean_us"] = (_duration_us(x) for x in f[:3])
        elif t.startswith("Application protocol:"):
            out["alpn"] = t.split(":", 1)[1].strip()
        elif t.startswith("TLS Protocol:") or t.startswith("Protocol:"):
            out["tls_protocol"] = t.split(":", 1)[1].strip()
        elif t.startswith("Cipher:"):
            out["cipher"] = t.split(":", 1)[1].strip()
        elif t.startswith("Server Temp Key:"):
            out["server_temp_key"] = t.split(":", 1)[1].strip()
    missing = [k for k in ("seconds", "rps", "req_done", "req_succeeded", "req_failed",
                           "req_errored", "status_2xx") if k not in out]
    if missing:
        raise ValueError("no " + ", ".join(missing) + " in h2load's output")
    return out


def _percentile(sorted_values, q):
    """Nearest-rank percentile of a sorted list (q in 0..100)."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def h2load_log_latencies(path):
    """Latency percentiles (us) from h2load --log-file: one line per request, tab-separated
    start time (us since the epoch), status (-1 for a failed stream), us to the end of the
    response. Failed streams are left out."""
    times = []
    with open(path) as f:
        for line in f:
            cols = line.split("\t")
            if len(cols) >= 3 and cols[1] != "-1":
                times.append(int(cols[2]))
    times.sort()
    return {
        "p50_us": _percentile(times, 50),
        "p90_us": _percentile(times, 90),
        "p99_us": _percentile(times, 99),
        "p999_us": _percentile(times, 99.9),
        "logged": len(times),
    }


# OpenSSL's default order of the TLS 1.3 suites, which wrk (and openssl s_client)
# offer: h2load puts AES-128 first, and a server that picks by its own order (HAProxy)
# would then use another suite than one that follows the client's (nginx, gatehouse).
# bench/run.sh passes the same list to its measured h2load runs.
H2LOAD_TLS13_CIPHERS = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"


def h2load_command(url, clients=1, threads=1, streams=1, requests=None, duration=None,
                   headers=(), log_file=None):
    """h2load over TLS offering h2 only: a server that does not speak HTTP/2 fails
    the run instead of being measured over HTTP/1.1."""
    cmd = ["h2load", f"-c{clients}", f"-t{threads}", f"-m{streams}", "--npn-list=h2",
           f"--tls13-ciphers={H2LOAD_TLS13_CIPHERS}"]
    if duration is not None:
        cmd.append(f"-D{duration}")
    if requests is not None:
        cmd.append(f"-n{requests}")
    for h in headers:
        cmd += ["-H", h]
    if log_file:
        cmd.append(f"--log-file={log_file}")
    return cmd + [url]


def _alpn_diagnosis(port):
    """Why h2load got no HTTP/2 connection: the TLS handshake failed, or the server
    took no protocol of an ALPN list holding only h2 (h2load tells neither)."""
    ctx = client_tls_context()
    ctx.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                chosen = s.selected_alpn_protocol()
    except ssl.SSLError as e:
        if "no application protocol" in str(e).lower().replace("_", " "):
            return "no HTTP/2: the server refused ALPN h2 (no_application_protocol alert)"
        return f"no TLS connection ({e})"
    except OSError as e:
        return f"no TLS connection ({e})"
    if chosen is None:
        return "no HTTP/2: the server accepted no protocol of ALPN h2"
    return f"no HTTP/2 request went through though ALPN chose {chosen}"


def cmd_wait_h2(args):
    """One GET over HTTP/2 with TLS (certificate not verified, as h2load never does),
    retried until the timeout: exit 0 when the server chose h2 by ALPN and answered
    2xx. Prints one JSON line with what was negotiated."""
    url = f"https://{LOOPBACK}:{args.port}{args.path}"
    deadline = time.monotonic() + args.timeout
    info = {"target": args.target, "alpn": None, "tls_protocol": None, "cipher": None,
            "server_temp_key": None, "status_2xx": None}
    last = "no answer"
    while time.monotonic() < deadline:
        if args.pid and not os.path.exists(f"/proc/{args.pid}"):
            last = f"process {args.pid} exited"
            break
        try:
            r = subprocess.run(h2load_command(url, requests=1, headers=args.header),
                               capture_output=True, text=True, timeout=10)
            out = r.stdout + r.stderr
            h = parse_h2load(out)
            for k in info:
                if k in h:
                    info[k] = h[k]
            if h["alpn"] == "h2" and h["status_2xx"] == 1:
                print(json.dumps(info))
                print(f"  {args.target:<22} HTTP/2 (ALPN {h['alpn']}) over {h['tls_protocol']} "
                      f"{h['cipher']}, key exchange {h['server_temp_key']}", file=sys.stderr)
                return 0
            codes = ", ".join(f"{h.get('status_' + c, 0)} {c}" for c in ("2xx", "3xx", "4xx", "5xx"))
            last = (_alpn_diagnosis(args.port) if h["alpn"] is None
                    else f"no HTTP/2: ALPN chose {h['alpn']}" if h["alpn"] != "h2" else
                    f"HTTP/2 answered: {codes}; {h['req_errored']} stream(s) failed")
        except (OSError, subprocess.SubprocessError) as e:
            last = f"h2load: {e}"
        except ValueError:
            lines = [l for l in out.splitlines() if l.strip()]
            last = ("no HTTP/2 (ALPN h2 not chosen, or the connection failed): "
                    + (lines[-1] if lines else "h2load printed nothing"))
        time.sleep(0.2)
    print(f"{LOOPBACK}:{args.port}{args.path}: {last}", file=sys.stderr)
    return 1


def _wrk_result(path):
    with open(path) as f:
        for line in f:
            if line.startswith("BENCH_JSON "):
                return json.loads(line[len("BENCH_JSON "):])
    return None


def _h2load_result(out_path, log_path):
    """One h2load run in the shape of the wrk result: requests are the streams that
    ended with a 2xx or 3xx answer (h2load's "succeeded" less those with an error);
    every other stream is an error."""
    with open(out_path) as f:
        h = parse_h2load(f.read())
    lat = h2load_log_latencies(log_path) if log_path else {}
    ok = h["req_done"] - h["req_failed"]  # h2load: failed = done - (no error and 2xx/3xx)
    return {
        "requests": ok,
        "duration_us": h["seconds"] * 1e6,
        "p50_us": lat.get("p50_us"),
        "p90_us": lat.get("p90_us"),
        "p99_us": lat.get("p99_us"),
        "p999_us": lat.get("p999_us"),
        "mean_us": h.get("mean_us"),
        "max_us": h.get("max_us"),
        # "failed" holds the errored streams and the 4xx/5xx answers; 3xx count as
        # success for h2load but not here (the upstream answers 200 to everything)
        "err_failed": h["req_failed"],
        "err_status_3xx": h.get("status_3xx", 0),
        "h2load": {k: v for k, v in h.items() if k.startswith(("req_", "status_"))}
        | {"rps": h["rps"], "seconds": h["seconds"], "alpn": h["alpn"],
           "tls_protocol": h["tls_protocol"], "cipher": h["cipher"],
           "server_temp_key": h["server_temp_key"], "logged": lat.get("logged")},
    }


def cmd_record(args):
    if args.h2load_out:
        try:
            wrk = _h2load_result(args.h2load_out, args.h2load_log)
        except (OSError, ValueError) as e:
            print(f"{args.h2load_out}: {e}", file=sys.stderr)
            return 1
        out_file = args.h2load_out
    else:
        wrk = _wrk_result(args.wrk_out)
        out_file = args.wrk_out
    if wrk is None:
        print(f"no result line in {out_file}", file=sys.stderr)
        return 1
    requests = wrk["requests"]
    seconds = wrk["duration_us"] / 1e6
    rec = {
        "target": args.target,
        "round": args.round,
        "connections": args.connections,
        "requests": requests,
        "seconds": seconds,
        "rps": requests / seconds if seconds > 0 else 0.0,
        "p50_us": wrk["p50_us"],
        "p90_us": wrk["p90_us"],
        "p99_us": wrk["p99_us"],
        "p999_us": wrk["p999_us"],
        "mean_us": wrk["mean_us"],
        "max_us": wrk["max_us"],
        "errors": {k[4:]: wrk[k] for k in wrk if k.startswith("err_")},
        "client": "h2load" if args.h2load_out else "wrk",
        "cpu_process": args.cpu_process,
        "cpu_seconds": args.cpu_after - args.cpu_before,
        "upstream_cpu_seconds": args.up_after - args.up_before,
        # each sample's own status request is one accepted connection
        "upstream_connections_opened": (args.accepts_after - args.accepts_before - 1
                                        if min(args.accepts_after, args.accepts_before) >= 0
                                        else None),
    }
    if args.store_before is not None and args.store_after is not None:
        rec["store_cpu_seconds"] = args.store_after - args.store_before
        rec["store_cpu_us_per_req"] = (
            rec["store_cpu_seconds"] * 1e6 / requests) if requests else None
    if "h2load" in wrk:
        rec["streams"] = args.streams
        rec["h2load"] = wrk["h2load"]
    if args.tls_full is not None:  # wrk's TLS handshakes (bench/wrk_tls_shim.c)
        rec["tls_full_handshakes"] = args.tls_full
        rec["tls_resumed_handshakes"] = args.tls_resumed
    rec["cpu_us_per_req"] = (rec["cpu_seconds"] * 1e6 / requests) if requests else None
    rec["upstream_cpu_us_per_req"] = (
        rec["upstream_cpu_seconds"] * 1e6 / requests) if requests else None
    print(json.dumps(rec))
    errs = sum(rec["errors"].values())
    print(f"  round {rec['round']} {rec['target']:<22} {rec['rps']:>10,.0f} req/s"
          f"  p50 {_lat(rec['p50_us'])}  p99 {_lat(rec['p99_us'])}"
          f"  cpu {_fmt(rec['cpu_us_per_req'], '.1f')} us/req"
          f"  new upstream conns {_fmt(rec['upstream_connections_opened'], 'd')}"
          + (f"  handshakes full {args.tls_full} resumed {args.tls_resumed}"
             if args.tls_full is not None else "")
          + (f"  ALPN {rec['h2load']['alpn']}" if "h2load" in rec else "")
          + (f"  ERRORS {errs}" if errs else ""), file=sys.stderr)
    return 0


def _version(cmd):
    import subprocess
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        lines = (r.stdout + r.stderr).strip().splitlines()
        return lines[0] if lines else None
    except (OSError, subprocess.SubprocessError):
        return None


def _read_jsonl(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError):
        return []


def cmd_meta(args):
    import platform
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "targets": args.targets.split(),
        "skipped": [s for s in args.skipped.splitlines() if s],
        "duration": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "wrk_threads": args.wrk_threads,
        "streams": args.streams,
        "client": "h2load" if args.mode == "h2" else "wrk",
        "mode": args.mode,
        "cert": args.cert or None,
        "workers": args.workers,
        "resume": bool(args.resume),
        "tls": _read_jsonl(args.tls_info) if args.tls_info else [],
        "h2": _read_jsonl(args.h2_info) if args.h2_info else [],
        "warmup": args.warmup,
        "idle_connections": args.idle_connections,
        "idle_batches": args.idle_batches,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "busy_percent_at_start": args.busy,
        "baseline": args.baseline,
        "gatehouse_binary": args.gatehouse_binary or None,
        "request_bytes": args.request_bytes,
        "response_bytes": args.response_bytes,
        "binaries": dict(l.split("=", 1) for l in args.binaries.splitlines() if "=" in l),
        "versions": {"nginx": _version(["nginx", "-v"]),
                     "haproxy": _version(["haproxy", "-v"]),
                     "wrk": _version(["wrk", "-v"]),
                     "h2load": _version(["h2load", "--version"])},
    }
    with open(args.file, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


# --- idle keep-alive connections -------------------------------------------

class Conn:
    __slots__ = ("sock", "buf", "state", "need")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.state = "connecting"
        self.need = None  # total bytes of the response, once known


def _response_complete(c):
    """True once the whole response to our one GET is in c.buf."""
    end = c.buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = bytes(c.buf[:end]).decode("latin-1").lower()
    body = len(c.buf) - end - 4
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if name == "content-length":
            return body >= int(value)
        if name == "transfer-encoding" and "chunked" in value:
            return c.buf.endswith(b"0\r\n\r\n")
    return True  # no body framing on a 200 to GET: treat head as complete


def cmd_idle(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 64
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        except (ValueError, OSError):
            pass
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    count = min(args.count, soft - 64)

    time.sleep(args.settle)
    before = memory_kib(args.pid)

    request = (f"GET {args.path} HTTP/1.1\r\nHost: {LOOPBACK}:{args.port}\r\n"
               + "".join(h + "\r\n" for h in args.header) + "\r\n").encode()
    sel = selectors.DefaultSelector()
    idle, failed, started, inflight = [], 0, 0, 0
    bad_status = {}
    deadline = time.monotonic() + args.timeout
    t0 = time.monotonic()

    def fail(c):
        nonlocal failed, inflight
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        failed += 1
        inflight -= 1

    tls = client_tls_context() if args.tls else None

    def want(c, exc):  # wait for what OpenSSL asks for
        sel.modify(c.sock, selectors.EVENT_WRITE if isinstance(exc, ssl.SSLWantWriteError)
                   else selectors.EVENT_READ, c)

    def send_request(c):
        try:
            c.sock.send(request)  # small: goes out whole on a new connection
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as e:
            c.state = "sending"
            want(c, e)
            return
        except OSError:
            fail(c)
            return
        c.state = "reading"
        sel.modify(c.sock, selectors.EVENT_READ, c)

    def handshake(c):
        try:
            c.sock.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as e:
            want(c, e)
            return
        except OSError:  # ssl.SSLError included
            fail(c)
            return
        send_request(c)

    # --batches N: the connections arrive in N equal batches, --pause seconds apart (each batch
    # held idle before the next opens), as clients that come over time rather than at once.
    batches = max(1, min(args.batches, count))
    opened_until = -(-count // batches)  # connections this batch may open, in all
    next_batch_at = None
    while (started < count or inflight) and time.monotonic() < deadline:
        if started == opened_until and inflight == 0 and started < count:
            if next_batch_at is None:
                next_batch_at = time.monotonic() + args.pause
            if time.monotonic() >= next_batch_at:
                opened_until = min(count, opened_until + -(-count // batches))
                next_batch_at = None
            else:
                time.sleep(min(0.05, max(0.0, next_batch_at - time.monotonic())))
                continue
        while started < opened_until and inflight < args.inflight:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            started += 1
            inflight += 1
            rc = s.connect_ex((LOOPBACK, args.port))
            c = Conn(s)
            if rc not in (0, errno.EINPROGRESS):
                inflight -= 1
                failed += 1
                s.close()
                continue
            sel.register(s, selectors.EVENT_WRITE, c)
        for key, _ in sel.select(timeout=0.5):
            c = key.data
            if c.state == "connecting":
                if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    fail(c)
                    continue
                if tls is None:
                    send_request(c)
                    continue
                sel.unregister(c.sock)
                try:  # the plain socket object is detached: register the TLS one
                    c.sock = tls.wrap_socket(c.sock, do_handshake_on_connect=False)
                except OSError:
                    c.sock.close()
                    failed += 1
                    inflight -= 1
                    continue
                sel.register(c.sock, selectors.EVENT_WRITE, c)
                c.state = "handshake"
                handshake(c)
                continue
            if c.state == "handshake":
                handshake(c)
                continue
            if c.state == "sending":
                send_request(c)
                continue
            try:
                chunk = c.sock.recv(65536)
                # TLS: a record may hold more than was asked for; take what is decrypted
                while chunk and tls is not None and c.sock.pending():
                    chunk += c.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue  # TLS: a record that is not data (a session ticket) or not whole yet
            except OSError:
                fail(c)
                continue
            if not chunk:
                fail(c)
                continue
            c.buf += chunk
            if _response_complete(c):
                status = bytes(c.buf[9:12])
                sel.unregister(c.sock)
                inflight -= 1
                if status != b"200":
                    bad_status[status.decode()] = bad_status.get(status.decode(), 0) + 1
                    c.sock.close()
                    failed += 1
                    continue
                c.buf = None
                c.state = "idle"
                idle.append(c)
    open_seconds = time.monotonic() - t0
    for key in list(sel.get_map().values()):  # timed out mid-request
        fail(key.data)

    time.sleep(args.settle)
    after = memory_kib(args.pid)

    # Still held? A connection the proxy closed meanwhile reads as EOF. Over TLS a
    # readable connection may only have a record that is not data (a session ticket
    # sent late): read it to tell.
    for c in idle:
        sel.register(c.sock, selectors.EVENT_READ, c)
    closed_by_peer = 0
    for key, _ in sel.select(timeout=0):
        if tls is None:
            closed_by_peer += 1
            continue
        try:
            if not key.data.sock.recv(1):
                closed_by_peer += 1
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError:
            closed_by_peer += 1
    for c in idle:
        sel.unregister(c.sock)
        c.sock.close()
    sel.close()

    held = len(idle)
    delta_pss = after["pss_kib"] - before["pss_kib"]
    delta_rss = after["rss_kib"] - before["rss_kib"]
    rec = {
        "target": args.target,
        "tls": bool(args.tls),
        "requested": args.count,
        "attempted": count,
        "held": held,
        "failed": failed,
        "bad_status": bad_status,
        "closed_by_peer": closed_by_peer,
        "open_seconds": round(open_seconds, 2),
        "before": before,
        "after": after,
        "kib_per_conn_pss": delta_pss / held if held else None,
        "kib_per_conn_rss": delta_rss / held if held else None,
    }
    print(json.dumps(rec))
    k = rec["kib_per_conn_pss"]
    print(f"  {args.target:<22} held {held}/{count} (failed {failed}, closed {closed_by_peer})"
          f"  Pss {before['pss_kib']} -> {after['pss_kib']} KiB"
          f"  = {_fmt(k, '.2f')} KiB/conn", file=sys.stderr)
    return 0 if held else 1


# --- summary ---------------------------------------------------------------

def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def _ratio(a, b):
    return a / b if a is not None and b else None


def _lat(us):
    if us is None:
        return "-"
    return f"{us / 1000:.2f}ms" if us >= 1000 else f"{us:.0f}us"


def _tls_notes(meta, rows):
    """Lines under the table on the mode, what each proxy negotiated, and handshakes
    that were not what the mode means to measure."""
    mode, workers = meta.get("mode", "plain"), meta.get("workers", 1)
    notes = []
    if mode == "plain":
        if workers > 1:
            notes.append(f"{workers} workers per proxy")
        return notes
    if mode == "h2":
        streams = meta.get("streams", 1)
        notes.append(f"mode h2: HTTP/2 over TLS (ALPN h2) to the proxies, {meta.get('cert')} "
                     f"certificate, HTTP/1.1 with keep-alive to the upstream; {workers} "
                     f"worker(s) per proxy; {meta['connections']} connections with up to "
                     f"{streams} stream(s) in flight on each ({meta['connections'] * streams} "
                     "requests at once), one handshake per connection")
    else:
        what = ("keep-alive: one handshake per connection, then requests" if mode == "tls" else
                "'Connection: close': a new TLS connection per request, "
                + ("resumed with a session ticket where the client had one"
                   if meta.get("resume")
                   else "each a full handshake (the client offers no session)")
                + "; CPU per handshake includes accepting the connection, one proxied "
                "request and the close")
        notes.append(f"mode {mode}: HTTPS to the proxies, {meta.get('cert')} certificate, "
                     f"plain HTTP to the upstream; {workers} worker(s) per proxy; {what}")
    seen = set()
    for info in meta.get("tls", []):
        notes.append(f"TLS {info.get('target')}: {info.get('protocol')} {info.get('cipher')}, "
                     f"group {info.get('group')}, key {info.get('server_key')}, "
                     f"{info.get('tickets')} session ticket(s) per handshake")
        seen.add((info.get("protocol"), info.get("cipher"), info.get("group"),
                  info.get("server_key"), info.get("tickets")))
    if len(seen) > 1:
        notes.append("WARNING: the proxies did not negotiate alike (see the TLS lines)")
    seen = set()
    for info in meta.get("h2", []):  # h2 mode: what h2load itself negotiated
        notes.append(f"h2load {info.get('target')}: ALPN {info.get('alpn')}, "
                     f"{info.get('tls_protocol')} {info.get('cipher')}, key exchange "
                     f"{info.get('server_temp_key')}")
        seen.add((info.get("alpn"), info.get("tls_protocol"), info.get("cipher"),
                  info.get("server_temp_key")))
    if len(seen) > 1:
        notes.append("WARNING: h2load did not negotiate alike with every proxy "
                     "(see the h2load lines)")
    for t, r in rows.items():
        if r.get("alpn") and r["alpn"] != ["h2"]:
            notes.append(f"WARNING {t}: runs negotiated {', '.join(map(str, r['alpn']))}, "
                         "not only h2")
    for t, r in rows.items():
        full, resumed = r.get("tls_full_handshakes"), r.get("tls_resumed_handshakes")
        if full is None:
            continue
        if mode == "handshake":
            if not meta.get("resume") and resumed:
                notes.append(f"WARNING {t}: {resumed} of {full + resumed} handshakes were "
                             "resumed, not full")
            if meta.get("resume") and resumed < 0.9 * (full + resumed):
                notes.append(f"WARNING {t}: only {resumed} of {full + resumed} handshakes "
                             "were resumed")
            pct = r.get("proxy_cpu_percent")
            if pct is not None and pct < 90 * workers:
                notes.append(f"note {t}: its workers were {pct / workers:.0f}% busy: "
                             "handshakes/s is what the client drove, not what the proxy can "
                             "do; handshakes/CPU-s is the per-worker capacity")
            if full + resumed < 0.9 * r["requests"]:
                notes.append(f"WARNING {t}: {full + resumed} handshakes for {r['requests']} "
                             "requests: connections were kept open")
    return notes


def cmd_summarize(args):
    out = args.dir
    with open(os.path.join(out, "meta.json")) as f:
        meta = json.load(f)
    runs, mem = [], {}
    if os.path.exists(os.path.join(out, "runs.jsonl")):
        with open(os.path.join(out, "runs.jsonl")) as f:
            runs = [json.loads(l) for l in f if l.strip()]
    if os.path.exists(os.path.join(out, "memory.jsonl")):
        with open(os.path.join(out, "memory.jsonl")) as f:
            for l in f:
                if l.strip():
                    r = json.loads(l)
                    mem[r["target"]] = r

    rows = {}
    for t in meta["targets"]:
        rs = [r for r in runs if r["target"] == t]
        m = mem.get(t)
        if not rs and not m:
            continue
        rows[t] = {
            "rounds": len(rs),
            "rps": _median([r["rps"] for r in rs]),
            "p50_us": _median([r["p50_us"] for r in rs]),
            "p99_us": _median([r["p99_us"] for r in rs]),
            "cpu_us_per_req": _median([r["cpu_us_per_req"] for r in rs]),
            "upstream_cpu_us_per_req": _median([r["upstream_cpu_us_per_req"] for r in rs]),
            "store_cpu_us_per_req": _median([r.get("store_cpu_us_per_req") for r in rs]),
            "errors": sum(sum(r["errors"].values()) for r in rs),
            "upstream_connections_opened": _median(
                [r.get("upstream_connections_opened") for r in rs]),
            "requests": sum(r["requests"] for r in rs),
            # share of one CPU the proxy used while wrk ran (all its workers together)
            "proxy_cpu_percent": _median([100 * r["cpu_seconds"] / r["seconds"]
                                          for r in rs if r["seconds"] > 0]),
            "idle_kib_per_conn": m["kib_per_conn_pss"] if m else None,
            "idle_held": m["held"] if m else None,
            "idle_closed_by_peer": m["closed_by_peer"] if m else None,
        }
        if any("h2load" in r for r in rs):
            rows[t]["alpn"] = sorted({str(r["h2load"].get("alpn")) for r in rs})
        if any("tls_full_handshakes" in r for r in rs):
            rows[t]["tls_full_handshakes"] = sum(r.get("tls_full_handshakes", 0) for r in rs)
            rows[t]["tls_resumed_handshakes"] = sum(r.get("tls_resumed_handshakes", 0) for r in rs)
    ngx = rows.get("nginx", {})
    hap = rows.get("haproxy", {})
    for t, r in rows.items():
        r["cpu_vs_nginx"] = None if t == "direct" else _ratio(
            r["cpu_us_per_req"], ngx.get("cpu_us_per_req"))
        r["idle_vs_nginx"] = _ratio(r["idle_kib_per_conn"], ngx.get("idle_kib_per_conn"))
        r["idle_vs_haproxy"] = _ratio(r["idle_kib_per_conn"], hap.get("idle_kib_per_conn"))

    mode = meta.get("mode", "plain")
    workers = meta.get("workers", 1)
    if mode == "handshake":
        # Every request is a new connection and a TLS handshake: per-worker rates and
        # CPU per handshake instead of the idle-memory columns.
        header = ["target", "handshakes/s", "per worker", "proxy CPU", "p50", "p99",
                  "CPU us/handshake", "handshakes/CPU-s", "vs nginx", "vs haproxy"]
    elif mode == "h2":
        # No idle-memory measurement: throughput and CPU per request, each against
        # nginx and HAProxy.
        header = ["target", "req/s", "vs nginx", "vs haproxy", "p50", "p99", "CPU us/req",
                  "vs nginx", "vs haproxy"]
    else:
        header = ["target", "req/s", "p50", "p99", "CPU us/req", "vs nginx",
                  "idle KiB/conn", "vs nginx", "vs haproxy"]
    table = [header]
    for t, r in rows.items():
        cpu = _fmt(r["cpu_us_per_req"], ".1f")
        if t == "direct" and r["cpu_us_per_req"] is not None:
            cpu += "*"
        if mode == "handshake":
            r["handshakes_per_worker"] = r["rps"] / workers if r["rps"] is not None else None
            r["handshakes_per_cpu_second"] = (1e6 / r["cpu_us_per_req"]
                                              if r["cpu_us_per_req"] else None)
            r["cpu_vs_haproxy"] = _ratio(r["cpu_us_per_req"], hap.get("cpu_us_per_req"))
            table.append([
                t, _fmt(r["rps"], ",.0f"), _fmt(r["handshakes_per_worker"], ",.0f"),
                _fmt(r["proxy_cpu_percent"], ".0f") + "%" if r["proxy_cpu_percent"] is not None
                else "-",
                _lat(r["p50_us"]), _lat(r["p99_us"]), cpu,
                _fmt(r["handshakes_per_cpu_second"], ",.0f"),
                _fmt(r["cpu_vs_nginx"], ".2f"), _fmt(r["cpu_vs_haproxy"], ".2f"),
            ])
            continue
        if mode == "h2":
            r["rps_vs_nginx"] = _ratio(r["rps"], ngx.get("rps"))
            r["rps_vs_haproxy"] = _ratio(r["rps"], hap.get("rps"))
            r["cpu_vs_haproxy"] = _ratio(r["cpu_us_per_req"], hap.get("cpu_us_per_req"))
            table.append([
                t, _fmt(r["rps"], ",.0f"), _fmt(r["rps_vs_nginx"], ".2f"),
                _fmt(r["rps_vs_haproxy"], ".2f"), _lat(r["p50_us"]), _lat(r["p99_us"]), cpu,
                _fmt(r["cpu_vs_nginx"], ".2f"), _fmt(r["cpu_vs_haproxy"], ".2f"),
            ])
            continue
        table.append([
            t, _fmt(r["rps"], ",.0f"), _lat(r["p50_us"]), _lat(r["p99_us"]), cpu,
            _fmt(r["cpu_vs_nginx"], ".2f"),
            _fmt(r["idle_kib_per_conn"], ".2f"),
            _fmt(r["idle_vs_nginx"], ".2f"), _fmt(r["idle_vs_haproxy"], ".2f"),
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = []
    for n, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    # Extra gatehouse rows (--gatehouse-config) against plain proxying (or --baseline) in the
    # same run.
    base = meta.get("baseline", "gatehouse")
    plain = rows.get(base, {})
    extra = [t for t in rows if t not in ("direct", "gatehouse", "nginx", "haproxy", base)]
    if extra and plain.get("rps"):
        store = any(rows[t].get("store_cpu_us_per_req") is not None for t in extra)
        sub = [["vs plain gatehouse" if base == "gatehouse" else f"vs {base}", "req/s", "throughput cost",
                "CPU us/req"]
               + (["Redis CPU us/req"] if store else [])]
        for t in extra:
            r = rows[t]
            r["rps_vs_plain"] = _ratio(r["rps"], plain.get("rps"))
            r["cpu_vs_plain"] = _ratio(r["cpu_us_per_req"], plain.get("cpu_us_per_req"))
            cost = None if r["rps_vs_plain"] is None else 1 - r["rps_vs_plain"]
            sub.append([t, _fmt(r["rps_vs_plain"], ".2f"),
                        "-" if cost is None else f"{cost * 100:.0f}%",
                        _fmt(r["cpu_vs_plain"], ".2f")]
                       + ([_fmt(r.get("store_cpu_us_per_req"), ".1f")] if store else []))
        w = [max(len(row[i]) for row in sub) for i in range(len(sub[0]))]
        lines.append("")
        for n, row in enumerate(sub):
            lines.append("  ".join([row[0].ljust(w[0])] + [c.rjust(x) for c, x in zip(row[1:], w[1:])]))
            if n == 0:
                lines.append("  ".join("-" * x for x in w))
    notes = [
        f"medians over {meta['rounds']} round(s) of {meta['duration']}s, "
        f"{meta['connections']} connections, "
        + (f"h2load -c{meta['connections']} -m{meta.get('streams', 1)} "
           f"-t{meta.get('wrk_threads', 1)}; "
           if mode == "h2" else f"wrk -t{meta.get('wrk_threads', 1)}; ")
        + (f"idle: {meta['idle_connections']} keep-alive "
           + ("TLS " if mode != "plain" else "") + "connections"
           + (f" opened in {meta['idle_batches']} batches 1.5 s apart"
              if meta.get("idle_batches", 1) > 1 else "")
           + ", Pss growth per connection"
           if meta["idle_connections"] else "idle memory skipped"),
    ]
    notes += _tls_notes(meta, rows)
    if meta.get("request_bytes") or meta.get("response_bytes"):
        notes.append(("POST bodies of {:,} bytes".format(meta["request_bytes"])
                      if meta.get("request_bytes") else "GET")
                     + ", responses of {:,} bytes".format(meta.get("response_bytes") or 3)
                     + "; the nginx proxy streams both ways (proxy_request_buffering off, "
                     "proxy_buffering off, 16 KiB buffers)")
    for t, path in meta.get("binaries", {}).items():
        notes.append(f"{t}: binary {path}")
    busy = meta.get("busy_percent_at_start")
    if busy is not None and busy > BUSY_WARN_PERCENT:
        notes.append(f"WARNING: the machine was {busy}% busy before the start: "
                     "other work on it skews these numbers")
    if "direct" in rows and rows["direct"]["cpu_us_per_req"] is not None:
        notes.append("* direct: CPU of the upstream server itself (no proxy in the path)")
    for t, r in rows.items():
        if r["errors"]:
            what = ("h2load streams that failed (stream or connection errors, or not 2xx)"
                    if mode == "h2" else "wrk errors (socket errors or non-2xx)")
            notes.append(f"WARNING {t}: {r['errors']} {what} "
                         + (f"besides {r['requests']} answered 2xx" if mode == "h2"
                            else f"out of {r['requests']} requests"))
        opened = r["upstream_connections_opened"]
        in_flight = meta["connections"] * (meta.get("streams", 1) if mode == "h2" else 1)
        if t != "direct" and opened is not None and opened > 2 * in_flight:
            notes.append(f"WARNING {t}: opened {opened:.0f} upstream connections per run "
                         "(median): upstream keep-alive is not reused, CPU includes connects")
        if r["idle_held"] is not None and r["idle_held"] < meta["idle_connections"]:
            notes.append(f"WARNING {t}: only {r['idle_held']} of "
                         f"{meta['idle_connections']} idle connections were held")
        if r["idle_closed_by_peer"]:
            notes.append(f"WARNING {t}: {r['idle_closed_by_peer']} idle connections were "
                         "closed by the proxy before the end of the measurement")
    # run.sh: targets whose process ended, load-generator failures
    try:
        with open(os.path.join(out, "failures.txt")) as f:
            for line in dict.fromkeys(l.strip() for l in f if l.strip()):
                notes.append(f"WARNING {line}")
    except OSError:
        pass
    for t in meta["targets"]:
        if t not in rows:
            notes.append(f"WARNING {t}: started, but no run of it was measured")
    for s in meta.get("skipped", []):
        notes.append(f"skipped {s}")
    text = "\n".join(lines + [""] + notes) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"meta": meta, "targets": rows}, f, indent=2)
        f.write("\n")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("free-ports")
    s.add_argument("n", type=int)
    s.set_defaults(fn=cmd_free_ports)

    s = sub.add_parser("wait-http")
    s.add_argument("port", type=int)
    s.add_argument("--path", default="/")
    s.add_argument("--header", action="append", default=[])
    s.add_argument("--pid", type=int)
    s.add_argument("--timeout", type=float, default=10.0)
    s.add_argument("--tls", action="store_true")
    s.add_argument("--body-bytes", type=int, default=0)  # POST a body of this many bytes
    s.add_argument("--expect-bytes", type=int)  # the response body's length must be this
    s.set_defaults(fn=cmd_wait_http)

    s = sub.add_parser("wait-h2")
    s.add_argument("port", type=int)
    s.add_argument("--target", default="")
    s.add_argument("--path", default="/")
    s.add_argument("--header", action="append", default=[])
    s.add_argument("--pid", type=int)
    s.add_argument("--timeout", type=float, default=5.0)
    s.set_defaults(fn=cmd_wait_h2)

    s = sub.add_parser("tls-info")
    s.add_argument("port", type=int)
    s.add_argument("--target", default="")
    s.add_argument("--path", default="/")
    s.set_defaults(fn=cmd_tls_info)

    s = sub.add_parser("busy")
    s.add_argument("--seconds", type=float, default=1.0)
    s.set_defaults(fn=cmd_busy)

    s = sub.add_parser("wait-tcp")
    s.add_argument("port", type=int)
    s.set_defaults(fn=cmd_wait_tcp)

    s = sub.add_parser("cpu")
    s.add_argument("pid", type=int)
    s.set_defaults(fn=cmd_cpu)

    s = sub.add_parser("sample")
    s.add_argument("pid", type=int)
    s.add_argument("upstream_pid", type=int)
    s.add_argument("upstream_port", type=int)
    s.set_defaults(fn=cmd_sample)

    s = sub.add_parser("record")
    s.add_argument("--target", required=True)
    s.add_argument("--round", type=int, required=True)
    s.add_argument("--connections", type=int, required=True)
    out = s.add_mutually_exclusive_group(required=True)
    out.add_argument("--wrk-out")
    out.add_argument("--h2load-out")
    s.add_argument("--h2load-log")  # h2load --log-file, for the latency percentiles
    s.add_argument("--streams", type=int, default=1)
    s.add_argument("--cpu-process", required=True)
    s.add_argument("--cpu-before", type=float, required=True)
    s.add_argument("--cpu-after", type=float, required=True)
    s.add_argument("--up-before", type=float, required=True)
    s.add_argument("--up-after", type=float, required=True)
    s.add_argument("--store-before", type=float)  # redis-server CPU s (--redis)
    s.add_argument("--store-after", type=float)
    s.add_argument("--accepts-before", type=int, default=-1)
    s.add_argument("--accepts-after", type=int, default=-1)
    s.add_argument("--tls-full", type=int)
    s.add_argument("--tls-resumed", type=int)
    s.set_defaults(fn=cmd_record)

    s = sub.add_parser("meta")
    s.add_argument("file")
    s.add_argument("--targets", required=True)
    s.add_argument("--skipped", default="")
    s.add_argument("--duration", type=int, required=True)
    s.add_argument("--rounds", type=int, required=True)
    s.add_argument("--connections", type=int, required=True)
    s.add_argument("--warmup", type=int, required=True)
    s.add_argument("--idle-connections", type=int, required=True)
    s.add_argument("--idle-batches", type=int, default=1)
    s.add_argument("--busy", type=int)
    s.add_argument("--baseline", default="gatehouse")
    s.add_argument("--mode", default="plain")
    s.add_argument("--cert", default="")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--wrk-threads", type=int, default=1)
    s.add_argument("--streams", type=int, default=1)
    s.add_argument("--resume", type=int, default=0)
    s.add_argument("--tls-info")
    s.add_argument("--h2-info")  # h2 mode: wait-h2's lines
    s.add_argument("--gatehouse-binary", default="")
    s.add_argument("--request-bytes", type=int, default=0)
    s.add_argument("--response-bytes", type=int, default=0)
    s.add_argument("--binaries", default="")  # NAME=PATH lines: rows run with another binary
    s.set_defaults(fn=cmd_meta)

    s = sub.add_parser("idle")
    s.add_argument("--target", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--count", type=int, default=10000)
    s.add_argument("--inflight", type=int, default=100)
    s.add_argument("--batches", type=int, default=1)
    s.add_argument("--pause", type=float, default=1.5)
    s.add_argument("--settle", type=float, default=2.0)
    s.add_argument("--timeout", type=float, default=60.0)
    s.add_argument("--path", default="/")
    s.add_argument("--header", action="append", default=[])
    s.add_argument("--tls", action="store_true")
    s.set_defaults(fn=cmd_idle)

    s = sub.add_parser("summarize")
    s.add_argument("dir")
    s.set_defaults(fn=cmd_summarize)

    args = p.parse_args()
    return args.fn(args) or 0


if __name__ == "__main__":
    sys.exit(main())
