"""A WebSocket echo server and client of the standard library alone, for the
tests on booted hosts (tests/boot.rs): enough of RFC 6455 for one text
message each way.

    ws.py serve PORT         answers the upgrade, echoes one message back
    ws.py ask HOST PORT NAME  sends "ping over NAME" through an upgrade of
                              Host NAME; prints the echo, or exits 1 with
                              the status line the server gave instead
"""

import base64
import hashlib
import os
import socket
import socketserver
import struct
import sys

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def read_head(f):
    lines = []
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            return lines
        lines.append(line.decode("latin-1").rstrip("\r\n"))


def read_frame(f):
    b0, b1 = f.read(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", f.read(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", f.read(8))
    mask = f.read(4) if b1 & 0x80 else None
    data = bytearray(f.read(n))
    if mask:
        for i in range(n):
            data[i] ^= mask[i % 4]
    return b0 & 0x0F, bytes(data)


def frame(data, masked):
    head = bytes([0x81])
    n = len(data)
    if masked:
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return head + bytes([0x80 | n]) + mask + body
    return head + bytes([n]) + data


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        head = read_head(self.rfile)
        fields = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            fields[k.strip().lower()] = v.strip()
        if fields.get("upgrade", "").lower() != "websocket":
            self.wfile.write(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        self.wfile.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + b"Sec-WebSocket-Accept: " + accept_key(fields["sec-websocket-key"]).encode() + b"\r\n\r\n"
        )
        self.wfile.flush()
        _, data = read_frame(self.rfile)
        self.wfile.write(frame(b"echo: " + data, masked=False))
        self.wfile.flush()


def serve(port):
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("0.0.0.0", port), Echo) as s:
        s.serve_forever()


def ask(host, port, name):
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection((host, port), timeout=5) as s:
        f = s.makefile("rwb")
        f.write(
            (
                f"GET / HTTP/1.1\r\nHost: {name}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        f.flush()
        head = read_head(f)
        if not head or " 101 " not in head[0] + " ":
            print(head[0] if head else "no response")
            sys.exit(1)
        if f"Sec-WebSocket-Accept: {accept_key(key)}" not in head:
            print("wrong Sec-WebSocket-Accept")
            sys.exit(1)
        f.write(frame(f"ping over {name}".encode(), masked=True))
        f.flush()
        _, data = read_frame(f)
        print(data.decode())


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    else:
        ask(sys.argv[2], int(sys.argv[3]), sys.argv[4])
