#!/usr/bin/env python3
"""Hostile clients against a FluidFaaS daemon, with a well-formed client beside them; prints figures.

  hostile.py slow   --port P --pid PID [--slow 2000] [--idle 2000] [--seconds 20]
      a normal client invokes alone (its unloaded p50/p99), then again while SLOW connections dribble a header a
      byte per second (reconnecting when the daemon cuts them off) and IDLE connections say nothing; prints the
      normal client's p50/p99 and answers in both runs and the daemon's peak RSS.
  hostile.py inputs --port P --pid PID
      each hostile input once (a 200 MB chunked body, 200 MB of headers, four 60 MB JSON arrays at once, invalid
      UTF-8 names): its status, how long the answer took, and the daemon's RSS after it.

Standard library only; bounded in count and time. Exit 1 when a hostile input got a 5xx other than a 503 refusal
or no answer, or a normal request was not answered.
"""
import argparse
import json
import multiprocessing
import os
import resource
import select
import socket
import sys
import threading
import time

BODY = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 128],
                               "data": [i * 0.5 for i in range(128)]}]}).encode()


def rss_mib(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def read_response(sock, timeout):
    """Reads one Content-Length framed response; returns (status, body) or (0, b'') on close or timeout."""
    sock.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return 0, b""
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return 0, b""
            rest += chunk
        return int(head[9:12]), rest[:length]
    except (socket.timeout, ConnectionError, OSError):
        return 0, b""


def infer_request(model):
    return (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY


def normal_client(port, model, seconds):
    """Sequential keep-alive requests for `seconds`: latencies (ms) of answered ones, and the unanswered count."""
    lat, lost = [], 0
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    end = time.time() + seconds
    req = infer_request(model)
    while time.time() < end:
        t0 = time.perf_counter()
        try:
            sock.sendall(req)
            status, _ = read_response(sock, 10)
        except OSError:
            status = 0
        if status == 200:
            lat.append((time.perf_counter() - t0) * 1000)
        else:
            lost += 1
            sock.close()
            sock = socket.create_connection(("127.0.0.1", port))
        time.sleep(0.005)
    sock.close()
    return lat, lost


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def daemon_open_files(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return 1024


def hostile_connections(port, slow, idle_count, stop, ready, opened, cut_off, idle_open):
    """The child process: `idle_count` silent connections, and `slow` ones that dribble a header a byte a second
    (reopened when the daemon cuts them off), until `stop`."""
    idle = []
    for _ in range(idle_count):
        try:
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        except OSError:
            break
    idle_open.value = len(idle)
    conns = []
    while not stop.is_set():
        while len(conns) < slow and not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.setblocking(False)
                s.send(b"POST /v2/models/x/infer HTTP/1.1\r\n")
                conns.append(s)
                opened.value += 1
            except OSError:
                break
        ready.set()
        # A byte on each connection, the sends spread over the second as many attackers' would arrive: sent in
        # one burst, this process's own CPU time would crowd the daemon and its client on a small machine.
        keep = []
        start = time.monotonic()
        for i, s in enumerate(conns):
            try:
                s.send(b"X")
                keep.append(s)
            except OSError:
                cut_off.value += 1
                s.close()
            if i % 50 == 49:
                stop.wait(max(0.0, start + (i + 1) / len(conns) - time.monotonic()))
        conns = keep
        stop.wait(max(0.0, start + 1.0 - time.monotonic()))
    for s in conns + idle:
        s.close()


def run_slow(a):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Within both processes' open-file limits (the daemon keeps some for its runtime): a machine with a low limit
    # runs fewer hostile connections, and says so.
    room = min(hard, daemon_open_files(a.pid)) - 512
    if a.slow + a.idle > room:
        scale = max(room, 0) / (a.slow + a.idle)
        a.slow, a.idle = int(a.slow * scale), int(a.idle * scale)
        print(f"open-file limits: {a.slow} slow and {a.idle} idle connections")
    base, base_lost = normal_client(a.port, a.model, a.seconds)  # as long as the loaded run: p99s of as many samples
    # The hostile connections live in a child process: in this one, their loop would hold the interpreter's lock
    # for milliseconds each second and the normal client's latencies would measure that, not the daemon.
    stop = multiprocessing.Event()
    ready = multiprocessing.Event()
    opened = multiprocessing.Value("i", 0)
    cut_off = multiprocessing.Value("i", 0)
    idle_open = multiprocessing.Value("i", 0)
    child = multiprocessing.Process(target=hostile_connections,
                                    args=(a.port, a.slow, a.idle, stop, ready, opened, cut_off, idle_open))
    child.start()
    ready.wait(60)
    time.sleep(2)  # the dribblers are open
    loaded, loaded_lost = normal_client(a.port, a.model, a.seconds)
    stop.set()
    child.join(30)
    rss, hwm = rss_mib(a.pid)
    p99_ratio = pct(loaded, 99) / pct(base, 99)
    print(f"| normal client | answered | lost | p50 ms | p99 ms |")
    print(f"| --- | --- | --- | --- | --- |")
    print(f"| alone | {len(base)} | {base_lost} | {pct(base, 50):.2f} | {pct(base, 99):.2f} |")
    print(f"| beside {a.slow} slow + {idle_open.value} idle | {len(loaded)} | {loaded_lost} | {pct(loaded, 50):.2f} | "
          f"{pct(loaded, 99):.2f} |")
    print(f"p99 loaded / alone: {p99_ratio:.2f} (target <= 2); slow connections opened {opened.value}, "
          f"cut off by the daemon {cut_off.value}; daemon RSS {rss:.0f} MiB, peak {hwm:.0f} MiB")
    return 0 if base_lost == 0 and loaded_lost == 0 else 1


def hostile_input(port, send, timeout=60):
    """Runs `send(sock)` on a fresh connection; returns (status, body, seconds)."""
    sock = socket.create_connection(("127.0.0.1", port))
    t0 = time.perf_counter()
    try:
        send(sock)
    except OSError:
        pass  # the daemon refused and closed while we were still sending: read its answer
    status, body = read_response(sock, timeout)
    sock.close()
    return status, body, time.perf_counter() - t0


def send_until_answered(head, piece, total):
    """Sends `head`, then `piece` over and over up to `total` bytes, stopping as soon as an answer is waiting."""
    def send(sock):
        sock.sendall(head)
        sent = 0
        while sent < total:
            r, _, _ = select.select([sock], [], [], 0)
            if r:
                return  # an answer (the refusal) is waiting
            sock.sendall(piece)
            sent += len(piece)
    return send


def send_chunked(total):
    return send_until_answered(
        b"POST /v2/models/bert-base/infer HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"100000\r\n" + b"1" * 0x100000 + b"\r\n", total)


def send_headers(total):
    return send_until_answered(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n",
                               b"X-Filler: " + b"h" * 1000 + b"\r\n", total)


def big_array(mb):
    body = b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1,128],"data":[' + \
        b"1.25," * (mb * 1024 * 1024 // 5) + b'1]}]}'
    return (f"POST /v2/models/bert-base/infer HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n").encode() \
        + body


def run_inputs(a):
    bad = 0
    print("| hostile input | status | code | seconds | daemon RSS MiB (peak) |")
    print("| --- | --- | --- | --- | --- |")

    def row(name, status, body, seconds):
        nonlocal bad
        try:
            code = json.loads(body).get("code", "") if body else ""
        except ValueError:
            code = "(not JSON)"
            bad += 1
        if status == 0 or (status >= 500 and status != 503):
            bad += 1
        rss, hwm = rss_mib(a.pid)
        print(f"| {name} | {status} | {code} | {seconds:.2f} | {rss:.0f} ({hwm:.0f}) |")

    row("200 MB chunked body", *hostile_input(a.port, send_chunked(200 << 20)))
    row("200 MB of headers", *hostile_input(a.port, send_headers(200 << 20)))
    payload = big_array(60)
    results = [None] * 4

    def one(i):
        results[i] = hostile_input(a.port, lambda s: s.sendall(payload))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in enumerate(results):
        row(f"60 MB JSON array ({i + 1} of 4 at once)", *r)
    for path in ["/v2/models/%FF", "/v2/models/%FF/ready"]:
        row(f"GET {path}", *hostile_input(a.port, lambda s, p=path: s.sendall(
            f"GET {p} HTTP/1.1\r\nHost: t\r\n\r\n".encode())))
    for path in ["/v2/models/%FF/infer", "/v2/repository/models/%FF/unload"]:
        row(f"POST {path}", *hostile_input(a.port, lambda s, p=path: s.sendall(
            f"POST {p} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{{}}".encode())))
    row("DELETE /v1/functions/%FF", *hostile_input(a.port, lambda s: s.sendall(
        b"DELETE /v1/functions/%FF HTTP/1.1\r\nHost: t\r\n\r\n")))
    row("two different Content-Length", *hostile_input(a.port, lambda s: s.sendall(
        b"POST /v2/models/bert-base/infer HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")))
    status, _, _ = hostile_input(a.port, lambda s: s.sendall(infer_request(a.model)))
    print(f"a well-formed request afterwards: {status}")
    return 0 if bad == 0 and status == 200 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["slow", "inputs"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--model", default="bert-base")
    p.add_argument("--slow", type=int, default=2000)
    p.add_argument("--idle", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=20)
    a = p.parse_args()
    if not (0 <= a.slow <= 20000 and 0 <= a.idle <= 20000 and 0 < a.seconds <= 600):
        sys.exit("hostile.py: --slow, --idle in 0..20000, --seconds in (0, 600]")
    sys.exit(run_slow(a) if a.mode == "slow" else run_inputs(a))


if __name__ == "__main__":
    main()
