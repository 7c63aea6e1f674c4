#!/usr/bin/python3
"""A real HTTPS webhook receiver for the events integration test (Python's http.server over
ssl, on 127.0.0.1 with a port picked by the kernel). It verifies each delivery's signature
the way docs/events.md tells receivers to, and appends one line per delivery to LOG:
"<seq> <type> <sig ok|bad> <received unix time>". How it answers is read from MODE_FILE at
each request, so the test changes it while the receiver runs:
  ok          200 at once
  down        closes the connection without answering (as an endpoint that is down)
  slow:S      waits S seconds, then 200
  big         200 with a body of 10 MB
  hang        never answers (sleeps for an hour; the server's timeout must end it)
Usage: webhook_receiver.py CERT KEY PORT_FILE LOG MODE_FILE SECRET_FILE"""
import hashlib
import hmac
import http.server
import socketserver
import ssl
import sys
import time

cert, key, port_file, log, mode_file, secret_file = sys.argv[1:7]


def mode():
    try:
        with open(mode_file) as f:
            return f.read().strip() or "ok"
    except OSError:
        return "ok"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        m = mode()
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if m == "down":
            self.close_connection = True
            return
        if m == "hang":
            time.sleep(3600)
            return
        sig = self.headers.get("OTA-Signature", "")
        parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
        try:
            with open(secret_file) as f:
                secret = f.read().strip()
        except OSError:
            secret = ""
        want = hmac.new(secret.encode(), parts.get("t", "").encode() + b"." + body,
                        hashlib.sha256).hexdigest()
        good = hmac.compare_digest(want, parts.get("v1", "")) and \
            abs(time.time() - int(parts.get("t", "0"))) <= 300
        if m.startswith("slow:"):
            time.sleep(float(m[5:]))
        with open(log, "a") as f:
            f.write("%s %s %s %.3f\n" % (self.headers.get("OTA-Event-Id"),
                                         self.headers.get("OTA-Event-Type"),
                                         "ok" if good else "bad", time.time()))
        if m == "big":
            chunk = b"x" * 65536
            self.send_response(200)
            self.send_header("Content-Length", str(160 * len(chunk)))
            self.end_headers()
            try:
                for _ in range(160):
                    self.wfile.write(chunk)
            except OSError:
                pass
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a sender killed or timing out mid-request is part of the test


srv = Server(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os  # noqa: E402
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
