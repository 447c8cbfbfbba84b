#!/usr/bin/env python3
"""An impostor attune daemon for tests/socket_trust.rs (issue 1). Not a client example.

    fake_daemon.py LOG SOCKET...

Binds every SOCKET and prints "ready". On a socket named attune.sock it sends a welcome line at
once, as the real daemon does; on control.sock it answers any request line with a fake
"appended" consent receipt. When a connection ends it appends "<socket name> <bytes received>"
to LOG, so the test can assert that a refusing client sent nothing. Runs until killed.
"""

import os
import socket
import sys
import threading

LOCK = threading.Lock()


def log(path, line):
    with LOCK, open(path, "a") as f:
        f.write(line + "\n")


def serve(conn, name, log_path):
    conn.settimeout(20)
    got = b""
    try:
        if name == "attune.sock":
            conn.sendall(b'{"type":"welcome","protocol":1,"daemon":"attune 0.1.0"}\n')
        while True:
            data = conn.recv(65536)
            if not data:
                break
            got += data
            if name == "control.sock" and b"\n" in got:
                conn.sendall(b'{"result":"appended","events":[],"epoch":99}\n')
    except OSError:
        pass
    log(log_path, "{} {}".format(name, len(got)))
    conn.close()


def accept(sock, name, log_path):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve, args=(conn, name, log_path), daemon=True).start()


def main():
    log_path, paths = sys.argv[1], sys.argv[2:]
    threads = []
    for path in paths:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(16)
        t = threading.Thread(target=accept, args=(s, os.path.basename(path), log_path), daemon=True)
        threads.append(t)
    for t in threads:
        t.start()
    print("ready", flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
