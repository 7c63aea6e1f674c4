#!/usr/bin/env python3
"""A slow HTTPS client for otad's request time limits: it completes the TLS handshake with a
client certificate, then sends a request's headers (mode "headers") or, after complete headers,
its JSON body (mode "body") one small piece every INTERVAL seconds, and prints how long after
connecting (headers) or after its headers (body) otad closed the connection:
"closed after S s" - or "never closed" after LIMIT seconds.

usage: slow_client.py MODE PORT CERT KEY [INTERVAL] [LIMIT]"""
import socket
import ssl
import sys
import time


def main():
    mode, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.5
    limit = float(sys.argv[6]) if len(sys.argv) > 6 else 30.0
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    t0 = time.monotonic()
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw)
    head = (b"POST /device/v1/checkin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 4096\r\n")
    if mode == "body":
        s.sendall(head + b"\r\n{")
        t0 = time.monotonic()
        pieces = iter(lambda: b" ", None)
    else:
        s.sendall(head)
        pieces = (b"X-Slow-%d: y\r\n" % i for i in range(100000))
    s.settimeout(interval)
    while time.monotonic() - t0 < limit:
        try:
            data = s.recv(4096)
            if not data:
                break
            continue  # an answer: read on until the close
        except socket.timeout:
            pass
        except (OSError, ssl.SSLError):
            break
        try:
            s.sendall(next(pieces))
        except (OSError, ssl.SSLError):
            break
    else:
        print("never closed")
        return
    print("closed after %.2f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
