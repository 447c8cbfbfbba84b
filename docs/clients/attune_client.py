#!/usr/bin/env python3
"""Minimal attune subscriber (protocol v1, see docs/protocol.md). Standard library only.

Connects to the daemon's Unix socket, says hello, subscribes, and prints what arrives:
adaptation messages as one readable line each, every other message as its raw JSON line.

    python3 attune_client.py --topics adaptation,state --count 20
    python3 attune_client.py --participant p01 --socket /tmp/attune-1000/attune.sock

Before sending a byte it checks that the socket's directory is a real directory (not a symlink)
owned by this user with mode 0700, and that the daemon runs as this user (SO_PEERCRED): anyone
can listen at a path, and a socket in someone else's directory may be theirs.

Exit codes: 0 after --count adaptation messages or when the daemon closes the connection
normally; 1 when the socket cannot be reached or fails those checks, the daemon closes before
its welcome (your uid is not allowed) or after a fatal error (unsupported_protocol,
line_too_long, idle_timeout, too_many_clients); 130 on Ctrl-C.
"""

import argparse
import json
import os
import socket
import stat
import struct
import sys

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


def run(args):
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
        # The daemon sends welcome first on its own; hello and subscribe can go out right away.
        # (Subscribe promptly: a connection that has not subscribed is closed after 10 s.)
        try:
            send(sock, {"type": "hello", "protocol": PROTOCOL, "client": args.client})
            send(sock, {"type": "subscribe", "participant": args.participant, "topics": args.topics})
        except OSError:
            pass  # the daemon hung up already; reading below sees the end and says why

        welcomed = False
        fatal = None
        seen = 0
        for raw in read_lines(sock):
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
