#!/usr/bin/env python3
"""Writes the seed corpus of http2_session_fuzz: what an HTTP/2 client sends after the
connection preface (the target adds the preface), made with Python's h2 (python3-h2).

    /usr/bin/python3 fuzz/make_http2_corpus.py fuzz/corpus/http2_session_fuzz
"""
import os
import sys

import h2.config
import h2.connection
import h2.events  # noqa: F401  (h2 needs it loaded for its frame handling)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def conn(validate=True):
    c = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, validate_outbound_headers=validate,
                                  normalize_outbound_headers=validate))
    c.initiate_connection()
    return c


def head(method, path, extra=()):
    return [(":method", method), (":scheme", "http"), (":authority", "gw.test"), (":path", path)] + list(extra)


def take(c):
    data = c.data_to_send()
    return data[len(PREFACE):] if data.startswith(PREFACE) else data


def seeds():
    c = conn()
    c.send_headers(1, head("GET", "/api"), end_stream=True)
    yield "get_api", take(c)

    c = conn()
    c.send_headers(1, head("POST", "/api", [("content-length", "5")]))
    c.send_data(1, b"hel")
    c.send_data(1, b"lo", end_stream=True)
    yield "post_api_body", take(c)

    c = conn()
    c.send_headers(1, head("GET", "/down"), end_stream=True)
    c.send_headers(3, head("GET", "/nowhere"), end_stream=True)
    c.send_headers(5, head("GET", "/api/x?q=1", [("x-request-id", "r1"), ("cookie", "a=1"), ("cookie", "b=2")]),
                   end_stream=True)
    yield "three_streams", take(c)

    c = conn()
    c.send_headers(1, head("POST", "/api"))
    c.reset_stream(1)
    c.send_headers(3, head("GET", "/api"), end_stream=True)
    c.ping(b"12345678")
    c.increment_flow_control_window(65535)
    yield "reset_ping_window", take(c)

    c = conn()
    c.send_headers(1, head("POST", "/api/svc.Echo/Say", [("content-type", "application/grpc"), ("te", "trailers"),
                                                         ("grpc-timeout", "1S"), ("x-bin", "AAEC")]))
    c.send_data(1, b"\x00\x00\x00\x00\x02hi")
    c.send_headers(1, [("x-trailer", "t")], end_stream=True)
    yield "grpc_with_trailers", take(c)

    c = conn(validate=False)
    c.send_headers(1, head("GET", "/api", [("host", "other.test"), ("connection", "close")]), end_stream=True)
    c.send_headers(3, head("GET", "/api", [("x-bad", "a\r\nInjected: 1")]), end_stream=True)
    yield "malformed_fields", take(c)

    c = conn()
    c.send_headers(1, head("GET", "/api", [("x-long", "v" * 3000)]), end_stream=True)
    yield "large_head", take(c)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
