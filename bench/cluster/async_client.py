#!/usr/bin/env python3
"""Asynchronous calls through a FluidFaaS gateway: submit, or wait for their ends.

  async_client.py submit URL MODEL BODY_FILE COUNT IDS_FILE [--half-signal FILE]
      POSTs COUNT calls to URL/v1/async/MODEL on 8 connections, retrying a call until a gateway accepts it (a
      gateway being restarted refuses connections: the call was not accepted, so it is sent again); writes each
      accepted id to IDS_FILE. With --half-signal, creates FILE once half are accepted (the script kills then).
  async_client.py await URL IDS_FILE TIMEOUT_S
      GETs every id until each has ended (completed or failed), or the timeout; prints one JSON line: counts of
      ends by state and code, ids unended and ids unknown. Exit 0 only when every call ended.
"""
import concurrent.futures
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def connection(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


def submit(url, model, body, count, ids_file, half_signal):
    lock = threading.Lock()
    accepted = []
    per_worker = [count // 8 + (1 if i < count % 8 else 0) for i in range(8)]

    def worker(n):
        conn = connection(url)
        done = 0
        while done < n:
            try:
                conn.request("POST", f"/v1/async/{model}", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                text = r.read()
                if r.status != 202:
                    time.sleep(0.05)  # 503: the queue is away for now
                    continue
                with lock:
                    accepted.append(json.loads(text)["id"])
                    if half_signal and len(accepted) == count // 2:
                        open(half_signal, "w").close()
                done += 1
            except (OSError, http.client.HTTPException):
                conn.close()
                time.sleep(0.05)
                conn = connection(url)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, per_worker))
    with open(ids_file, "w") as f:
        f.write("\n".join(accepted) + "\n")
    print(f"accepted {len(accepted)} calls")


def wait(url, ids_file, timeout_s):
    ids = [line.strip() for line in open(ids_file) if line.strip()]
    ended, unknown = {}, set()
    deadline = time.time() + timeout_s
    conn = connection(url)
    while time.time() < deadline and len(ended) + len(unknown) < len(ids):
        for i in ids:
            if i in ended or i in unknown:
                continue
            try:
                conn.request("GET", f"/v1/async/{i}")
                r = conn.getresponse()
                text = r.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                time.sleep(0.2)
                conn = connection(url)
                continue
            if r.status == 404:
                unknown.add(i)
            elif r.status == 200:
                s = json.loads(text)
                if s["state"] in ("completed", "failed"):
                    ended[i] = s
        time.sleep(0.2)
    counts = {}
    attempts = {}
    for s in ended.values():
        key = s["state"] + (":" + s["code"] if s["state"] == "failed" else "")
        counts[key] = counts.get(key, 0) + 1
        attempts[s["attempts"]] = attempts.get(s["attempts"], 0) + 1
    unended = len(ids) - len(ended) - len(unknown)
    print(json.dumps({"calls": len(ids), "ends": counts, "runs_per_call": attempts, "unended": unended,
                      "unknown": len(unknown)}, sort_keys=True))
    return 0 if unended == 0 and not unknown else 1


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "submit" and len(a) in (6, 8):
        half = a[7] if len(a) == 8 and a[6] == "--half-signal" else None
        submit(a[1], a[2], open(a[3]).read(), int(a[4]), a[5], half)
    elif a and a[0] == "await" and len(a) == 4:
        sys.exit(wait(a[1], a[2], float(a[3])))
    else:
        sys.exit(__doc__)
