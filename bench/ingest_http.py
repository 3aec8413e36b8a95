"""HTTP push throughput: batches of 10,000 readings POSTed to a real `lianxin serve` (waitress) on
localhost, each answered only once it is durable (fsynced Parquet, idempotency key recorded).

    .venv/bin/python bench/ingest_http.py [--meters 10000] [--batches 60] [--clients 2]

Each batch holds one quarter-hour of every meter (what a head-end system sends every 15 minutes),
so batches land in the same day partitions and the store's duplicate check runs against what the
earlier batches wrote, as in production. Prints readings/s and the batch latency.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000, help="readings per batch")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--clients", type=int, default=2, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=4, help="waitress threads")
    parser.add_argument("--csv", action="store_true", help="send CSV bodies instead of JSON")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="lianxin-bench-http-"))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["LIANXIN_HOME"] = str(home)

    def lianxin(*argv) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "lianxin", *argv], env=env, capture_output=True, text=True
        )
        if out.returncode:
            sys.exit(out.stderr)
        return out.stdout

    lianxin("init")
    meters = [f"32{i:08d}" for i in range(args.meters)]
    lianxin(
        "manage",
        "shell",
        "-c",
        "from lianxin.care.models import Household, Meter\n"
        "h = Household.objects.create(code='H', address='x')\n"
        "Meter.objects.bulk_create((Meter(number=f'32{i:08d}', account_number='A', household=h) "
        f"for i in range({args.meters})), batch_size=1000)",
    )
    token = lianxin("ingest", "token", "issue", "bench").strip()

    start = datetime(2025, 11, 1, tzinfo=UTC)
    bodies = []
    for b in range(args.batches):
        stamp = (start + timedelta(minutes=15 * b)).isoformat()
        if args.csv:
            lines = ["meter,ts,value,unit"] + [
                f"{m},{stamp},{0.1 + b % 7 / 10},kWh" for m in meters
            ]
            bodies.append(("\n".join(lines) + "\n").encode())
        else:
            readings = [{"meter": m, "ts": stamp, "value": 0.1 + b % 7 / 10} for m in meters]
            bodies.append(json.dumps({"unit": "kWh", "readings": readings}).encode())
    content_type = "text/csv" if args.csv else "application/json"

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lianxin", "serve", "--port", str(port)]
        + ["--threads", str(args.threads)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_up(port)
        # One warm-up batch outside the timing (imports, first connection, meter cache).
        warm = json.dumps(
            {
                "unit": "kWh",
                "readings": [{"meter": meters[0], "ts": "2025-10-01T00:00:00Z", "value": 1.0}],
            }
        ).encode()
        _post(port, token, warm, "application/json", "warm-up")

        latencies: list[float] = []
        queue = list(enumerate(bodies))
        lock = threading.Lock()
        failures: list[str] = []

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            while True:
                with lock:
                    if not queue:
                        break
                    number, body = queue.pop(0)
                t = time.perf_counter()
                status, answer = _post(port, token, body, content_type, f"b{number}", conn)
                latencies.append(time.perf_counter() - t)
                if status != 200 or answer.get("accepted") != args.meters:
                    failures.append(f"batch {number}: {status} {str(answer)[:200]}")
            conn.close()

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=30)

    if failures:
        sys.exit("failed:\n" + "\n".join(failures[:5]))
    total = args.meters * args.batches
    size = sum(map(len, bodies)) / len(bodies)
    print(f"HTTP push ({content_type}, {args.clients} client(s), {args.threads} server threads)")
    print(f"  batches         {args.batches} x {args.meters:,} readings ({size / 1e6:.2f} MB each)")
    print(f"  elapsed         {elapsed:.2f} s")
    print(f"  throughput      {total / elapsed:,.0f} readings/s (durable on each 2xx)")
    latencies.sort()
    print(
        f"  batch latency   p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {latencies[int(0.95 * (len(latencies) - 1))] * 1000:.0f} ms"
    )
    files = sum(1 for _ in (home / "readings").rglob("*.parquet"))
    print(f"  store           {files} Parquet file(s) after compaction")
    shutil.rmtree(home, ignore_errors=True)


def _wait_up(port: int):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("lianxin serve did not start")


def _post(port, token, body, content_type, key, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request(
        "POST",
        "/api/v1/readings",
        body=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": content_type,
            "Idempotency-Key": key,
        },
    )
    response = conn.getresponse()
    answer = json.loads(response.read())
    if own:
        conn.close()
    return response.status, answer


if __name__ == "__main__":
    main()
