#!/usr/bin/env python3
"""A TLS proxy for the lost-answer renewal test: it terminates the agent's TLS (otad's server
certificate, client certificate required and verified against the device CA), opens its own
TLS connection to otad with the very pair the agent presented (the test gives it both the old
and the renewed pair's files), and passes each HTTP request on. For the first CUT connections
that present the renewed certificate, it reads otad's whole answer and then closes the agent's
connection without passing it on: the server did the work (pinned the certificate), the device
never heard. One line per request goes to LOG: "<old|new> <status> <passed|cut>".

It prints the port it listens on (127.0.0.1, chosen by the kernel), then serves until it is
killed or LIMIT seconds have passed.

usage: renewal_cut_proxy.py UPSTREAM_PORT SERVER_CERT SERVER_KEY DEVICE_CA CUT
                            OLD_CERT OLD_KEY NEW_CERT NEW_KEY LOG [LIMIT]"""
import socket
import ssl
import sys
import threading
import time


def leaf_der(path):
    with open(path) as f:
        pem = f.read()
    end = pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(pem[pem.index("-----BEGIN CERTIFICATE-----"):end] + "\n")


def read_message(sock, buf):
    """One HTTP message (head and Content-Length body) from sock; (message, rest) or (None, b"")
    at the end of the stream. Without Content-Length the body runs to the end of the stream."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None, b""
        buf += data
    head_end = buf.index(b"\r\n\r\n") + 4
    length = None
    for line in buf[:head_end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None and buf.startswith(b"HTTP/"):
        while True:
            data = sock.recv(65536)
            if not data:
                return buf, b""
            buf += data
    length = length or 0
    while len(buf) < head_end + length:
        data = sock.recv(65536)
        if not data:
            return None, b""
        buf += data
    return buf[:head_end + length], buf[head_end + length:]


class Proxy:
    def __init__(self, args):
        (self.upstream_port, server_cert, server_key, self.ca, cut, old_cert, old_key,
         new_cert, new_key, self.log_path) = args[:10]
        self.upstream_port = int(self.upstream_port)
        self.cut_left = int(cut)
        self.pairs = {leaf_der(old_cert): ("old", old_cert, old_key),
                      leaf_der(new_cert): ("new", new_cert, new_key)}
        self.lock = threading.Lock()
        self.server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server.load_cert_chain(server_cert, server_key)
        self.server.verify_mode = ssl.CERT_REQUIRED
        self.server.load_verify_locations(self.ca)
        self.server.num_tickets = 0  # every connection shows its certificate

    def log(self, line):
        with self.lock, open(self.log_path, "a") as f:
            f.write(line + "\n")

    def serve_one(self, raw):
        try:
            conn = self.server.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.log("handshake failed: %s" % e)
            raw.close()
            return
        pair = self.pairs.get(conn.getpeercert(binary_form=True))
        if pair is None:
            self.log("other certificate")
            conn.close()
            return
        name, cert, key = pair
        up_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        up_ctx.check_hostname = False
        up_ctx.load_verify_locations(self.ca)
        up_ctx.load_cert_chain(cert, key)
        up = up_ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.upstream_port),
                                                         timeout=20))
        conn.settimeout(20)
        cbuf, ubuf = b"", b""
        try:
            while True:
                req, cbuf = read_message(conn, cbuf)
                if req is None:
                    break
                up.sendall(req)
                resp, ubuf = read_message(up, ubuf)
                if resp is None:
                    self.log("%s no answer" % name)
                    break
                status = resp.split(b" ", 2)[1].decode()
                with self.lock:
                    cut = name == "new" and self.cut_left > 0
                    if cut:
                        self.cut_left -= 1
                self.log("%s %s %s" % (name, status, "cut" if cut else "passed"))
                if cut:
                    # Gone without a word: no close_notify, no answer.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                    break
                conn.sendall(resp)
        except (OSError, ssl.SSLError, ValueError, IndexError) as e:
            self.log("%s error: %s" % (name, e))
        finally:
            up.close()
            conn.close()

    def run(self, limit):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        lsock.settimeout(0.5)
        print(lsock.getsockname()[1], flush=True)
        end = time.monotonic() + limit
        while time.monotonic() < end:
            try:
                raw, _ = lsock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.serve_one, args=(raw,), daemon=True).start()


def main():
    if len(sys.argv) < 11:
        sys.exit(__doc__)
    limit = float(sys.argv[11]) if len(sys.argv) > 11 else 120.0
    Proxy(sys.argv[1:]).run(limit)


if __name__ == "__main__":
    main()
