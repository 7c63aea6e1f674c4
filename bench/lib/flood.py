#!/usr/bin/env python3
"""Hostile clients for bench/hostile, loopback only, each from its own source address so that
otad's per-address limit tells them from the good devices (127.0.0.1):

  flood.py connflood PORT SECONDS RATE   from 127.0.0.2: opens RATE TCP connections a second
                                         and holds them (never a byte), at most 2000 at once
  flood.py slowloris PORT SECONDS N      from 127.0.0.3: N connections, each sending one byte
                                         of a TLS ClientHello every 2 s, reopened when cut

It prints "opened=N closed_by_server=M" when done."""
import errno
import select
import socket
import sys
import time

HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64


def connect(src, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((src, 0))
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except OSError as e:
        s.close()
        if e.errno in (errno.EADDRNOTAVAIL, errno.ECONNREFUSED):
            return None
        raise
    return s


def reap(socks):
    """Drops the sockets the server closed; returns how many."""
    if not socks:
        return 0
    gone = 0
    r, _, _ = select.select(socks, [], [], 0) if len(socks) < 1000 else (socks, [], [])
    for s in r:
        try:
            if s.recv(4096) == b"":
                raise ConnectionResetError
        except BlockingIOError:
            continue
        except OSError:
            pass
        socks.remove(s)
        s.close()
        gone += 1
    return gone


def main():
    mode, port, seconds, n = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    if not 1 <= port <= 65535:
        sys.exit("bad port")
    src = "127.0.0.2" if mode == "connflood" else "127.0.0.3"
    socks, opened, closed = [], 0, 0
    pos = {}
    end = time.monotonic() + seconds
    tick = 0.0
    while time.monotonic() < end:
        now = time.monotonic()
        if mode == "connflood":
            for _ in range(max(1, n // 50)):
                if len(socks) >= 2000:
                    socks.pop(0).close()
                s = connect(src, port)
                if s:
                    socks.append(s)
                    opened += 1
            closed += reap(socks)
            time.sleep(0.02)
        else:
            while len(socks) < n:
                s = connect(src, port)
                if not s:
                    break
                socks.append(s)
                pos[s] = 0
                opened += 1
            if now >= tick:
                tick = now + 2.0
                for s in list(socks):
                    try:
                        s.send(HELLO[pos[s] : pos[s] + 1])
                        pos[s] = (pos[s] + 1) % len(HELLO)
                    except BlockingIOError:
                        pass
                    except OSError:
                        socks.remove(s)
                        s.close()
                        closed += 1
            closed += reap(socks)
            time.sleep(0.1)
    for s in socks:
        s.close()
    print("opened=%d closed_by_server=%d" % (opened, closed))


if __name__ == "__main__":
    main()
