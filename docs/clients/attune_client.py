#!/usr/bin/env python3
"""Minimal attune subscriber (protocol v1, see docs/protocol.md). Standard library only.

Connects to the daemon's Unix socket, says hello, subscribes, and prints what arrives:
adaptation messages as one readable line each, every other message as its raw JSON line.

    python3 attune_client.py --topics adaptation,state --count 20
    python3 attune_client.py --participant p01 --socket /tmp/attune-1000/attune.sock
    python3 attune_client.py --ws "ws://127.0.0.1:8765/?token=$(cat ~/.local/share/attune/ws-token)"

Over WebSocket (`attune run --ws`) the protocol is the same, one text message per line; the URL
carries the token `attune token` shows (this client speaks plain ws:// only).

Before sending a byte it checks that the socket's directory is a real directory (not a symlink)
owned by this user with mode 0700, and that the daemon runs as this user (SO_PEERCRED): anyone
can listen at a path, and a socket in someone else's directory may be theirs.

Exit codes: 0 after --count adaptation messages or when the daemon closes the connection
normally; 1 when the socket cannot be reached or fails those checks (or the WebSocket handshake
is refused: a wrong token, an Origin or Host not allowed), the daemon closes before
its welcome (your uid is not allowed) or after a fatal error (unsupported_protocol,
line_too_long, idle_timeout, too_many_clients); 130 on Ctrl-C.
"""

import argparse
import base64
import hashlib
import json
import os
import socket
import stat
import struct
import sys
import urllib.parse

PROTOCOL = 1
TOPICS = ("adaptation", "state", "features")
# Errors after which the daemon closes the connection.
FATAL_CODES = {"unsupported_protocol", "line_too_long", "idle_timeout", "too_many_clients"}


class Untrusted(Exception):
    """The socket's directory or the daemon's uid fails the checks; the message says why."""


def check_socket_dir(path):
    """Refuse a socket whose directory is a symlink, not ours, or open to group/other.

    With nothing at `path` there is nothing to refuse (connect() then reports it).
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        st = os.lstat(directory)  # lstat: a symlink is refused, not followed
    except FileNotFoundError:
        return
    problem = None
    if stat.S_ISLNK(st.st_mode):
        problem = "it is a symbolic link"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "it is not a directory"
    elif st.st_uid != os.geteuid() or st.st_mode & 0o077:
        problem = "owner uid {}, mode {:04o}".format(st.st_uid, stat.S_IMODE(st.st_mode))
    if problem is None:
        return
    if not os.path.lexists(path):
        return
    raise Untrusted("refusing socket directory {}: {}; it must be a directory owned by uid {} "
                    "with mode 0700 (another user may be listening there)".format(
                        directory, problem, os.geteuid()))


def check_peer(sock, path):
    """Refuse a daemon that runs as another user (SO_PEERCRED: pid, uid, gid as three ints)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    if uid != os.geteuid():
        raise Untrusted("refusing the daemon at {}: it runs as uid {}, not as uid {}; "
                        "nothing was sent to it".format(path, uid, os.geteuid()))


def default_socket_path():
    """$XDG_RUNTIME_DIR/attune/attune.sock, or /tmp/attune-<uid>/attune.sock without it."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return os.path.join(runtime_dir, "attune", "attune.sock")
    return "/tmp/attune-{}/attune.sock".format(os.getuid())


def send(sock, message):
    """Send one message as one compact JSON line."""
    line = json.dumps(message, separators=(",", ":"), ensure_ascii=False) + "\n"
    sock.sendall(line.encode("utf-8"))


def read_lines(sock):
    """Yield complete lines (bytes, without the newline) until the daemon closes the socket.

    recv() returns whatever bytes have arrived: part of a line, several lines, or a line cut in
    the middle of a multi-byte UTF-8 character. Buffer until a newline and decode whole lines only.
    """
    buffer = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:  # end of stream: the daemon closed the connection
            if buffer.strip():
                print("attune_client: connection closed inside a line; dropped {} bytes".format(
                    len(buffer)), file=sys.stderr)
            return
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        yield from lines


class Refused(Exception):
    """The WebSocket handshake was refused; the message says why."""


class WebSocketLines:
    """A minimal RFC 6455 client (plain ws://, standard library): one text message per line."""

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "ws" or not u.hostname:
            raise ValueError("expected ws://HOST:PORT/?token=..., not {!r}".format(url))
        self.sock = socket.create_connection((u.hostname, u.port or 80), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        host = u.netloc.rsplit("@", 1)[-1]
        target = (u.path or "/") + ("?" + u.query if u.query else "")
        self.sock.sendall(("GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: {}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").format(target, host, key).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.sock.recv(4096)
            if not data:
                raise Refused("the server closed the connection during the handshake")
            head += data
        head, self.pending = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        if len(status) < 2 or status[1] != "101":
            body = self.pending.decode("utf-8", "replace").strip()
            raise Refused("the WebSocket handshake was refused: {} {}".format(
                " ".join(status[1:]), body))
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        want = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            raise Refused("the server's Sec-WebSocket-Accept is wrong; not a WebSocket server")
        self.sock.settimeout(None)

    def _frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self._frame(0x1, text.encode("utf-8"))

    def _exactly(self, n):
        while len(self.pending) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.pending += data
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def messages(self):
        """Yield each text (or binary) message's bytes until the server closes."""
        message = b""
        try:
            while True:
                b0, b1 = self._exactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", self._exactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", self._exactly(8))[0]
                payload = self._exactly(n)
                opcode = b0 & 0x0F
                if opcode == 0x8:  # close: answer it and stop
                    try:
                        self._frame(0x8, payload[:2])
                    except OSError:
                        pass
                    return
                if opcode == 0x9:  # ping
                    self._frame(0xA, payload)
                    continue
                if opcode in (0x0, 0x1, 0x2):
                    message += payload
                    if b0 & 0x80:
                        yield message
                        message = b""
        except (EOFError, ConnectionResetError):
            return

    def close(self):
        try:
            self._frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


def describe_adaptation(msg):
    """One readable line: participant, stream time, action, arousal, arousal state, rule."""
    reason = msg.get("reason") or {}
    arousal = msg.get("arousal")
    arousal_text = "  -- " if arousal is None else "{:.2f}".format(arousal)
    return "{:<8} t={:>9.2f}  {:<8} arousal={} ({:<7}) confidence={:.2f} rule={}".format(
        msg.get("participant", "?"),
        msg.get("t", float("nan")),
        msg.get("action", "?"),
        arousal_text,
        msg.get("arousal_state", "?"),
        msg.get("confidence") or 0.0,
        reason.get("rule", "?"),
    )


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Subscribe to an attune daemon and print its messages.",
        epilog="example: %(prog)s --topics adaptation --count 20")
    parser.add_argument("--socket", default=None,
                        help="socket path (default: $XDG_RUNTIME_DIR/attune/attune.sock, "
                             "or /tmp/attune-<uid>/attune.sock)")
    parser.add_argument("--ws", default=None, metavar="URL",
                        help="connect over WebSocket instead: ws://HOST:PORT/?token=TOKEN "
                             "(`attune token` shows it)")
    parser.add_argument("--participant", default="*",
                        help='participant id, or "*" for all (default: *)')
    parser.add_argument("--topics", default=",".join(TOPICS),
                        help="comma-separated subset of adaptation,state,features (default: all)")
    parser.add_argument("--count", type=int, default=0,
                        help="exit after N adaptation messages (default: 0 = until the daemon closes)")
    parser.add_argument("--client", default="attune_client.py",
                        help="client name sent in hello (default: attune_client.py)")
    args = parser.parse_args(argv)
    args.topics = [t.strip() for t in args.topics.split(",") if t.strip()]
    unknown = [t for t in args.topics if t not in TOPICS]
    if unknown:
        parser.error("unknown topic(s) {}; use adaptation, state, features".format(", ".join(unknown)))
    if args.count < 0:
        parser.error("--count must be >= 0")
    return args


def connect_ws(url):
    """The WebSocket connection's (send, lines, close), or an exit code after saying why."""
    try:
        ws = WebSocketLines(url)
    except (Refused, ValueError) as e:
        print("attune_client: {}".format(e), file=sys.stderr)
        return 1
    except OSError as e:
        print("attune_client: cannot connect to {}: {} (is `attune run --ws` running?)".format(
            url.split("?")[0], e.strerror or e), file=sys.stderr)
        return 1
    send_ws = lambda m: ws.send_text(json.dumps(m, separators=(",", ":"), ensure_ascii=False))
    return send_ws, ws.messages(), ws.close


def run(args):
    if args.ws:
        conn = connect_ws(args.ws)
        if isinstance(conn, int):
            return conn
        send_msg, lines, close = conn
        try:
            return serve(args, send_msg, lines)
        finally:
            close()
    path = args.socket or default_socket_path()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        check_socket_dir(path)
        sock.connect(path)
        check_peer(sock, path)
    except Untrusted as e:
        sock.close()
        print("attune_client: {}".format(e), file=sys.stderr)
        return 1
    except OSError as e:
        sock.close()
        print("attune_client: cannot connect to {}: {} (is `attune run` or `attune replay` running?)"
              .format(path, e.strerror or e), file=sys.stderr)
        return 1

    with sock:
        return serve(args, lambda m: send(sock, m), read_lines(sock))


def serve(args, send_msg, lines):
    """The protocol: hello and subscribe, then print what arrives (socket or WebSocket)."""
    # The daemon sends welcome first on its own; hello and subscribe can go out right away.
    # (Subscribe promptly: a connection that has not subscribed is closed after 10 s.)
    try:
        send_msg({"type": "hello", "protocol": PROTOCOL, "client": args.client})
        send_msg({"type": "subscribe", "participant": args.participant, "topics": args.topics})
    except OSError:
        pass  # the daemon hung up already; reading below sees the end and says why

    welcomed = False
    fatal = None
    seen = 0
    for raw in lines:
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
            msg = json.loads(text)
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
            print("attune_client: skipping a line that is not JSON: {!r}".format(raw[:80]),
                  file=sys.stderr)
            continue
        if not isinstance(msg, dict):
            continue
        kind = msg.get("type")
        if kind == "welcome":
            welcomed = True
            if msg.get("protocol") != PROTOCOL:
                print("attune_client: daemon speaks protocol {}, this client {}".format(
                    msg.get("protocol"), PROTOCOL), file=sys.stderr)
        elif kind == "error" and msg.get("code") in FATAL_CODES:
            fatal = msg.get("code")

        if kind == "adaptation":
            try:
                print(describe_adaptation(msg), flush=True)
            except (AttributeError, TypeError, ValueError):  # a field of an unexpected type: show it raw
                print(text, flush=True)
            seen += 1
            if args.count and seen >= args.count:
                return 0
        else:
            # Everything else, including types this client does not know, as raw JSON.
            print(text, flush=True)

    if not welcomed:
        print("attune_client: the daemon closed the connection without a welcome "
              "(is this uid allowed to connect?)", file=sys.stderr)
        return 1
    if fatal:
        print("attune_client: the daemon closed the connection after error {}".format(fatal),
              file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # our stdout was closed, e.g. piped into `head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
