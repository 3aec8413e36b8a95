"""Work and memory of the push API per request, for the worst body: every row bad. Each case runs
the API's own parsing (lianxin.ingest.api.rows, what a request costs before anything is stored)
in a fresh process and prints its wall time and the peak RSS it added.

    .venv/bin/python bench/ingest_http_bad.py

Cases: the largest batch taken (100,000 rows, all with a bad value, ~10 MB), the same rows as
CSV, and a 63 MB all-bad body (refused before decoding, 413).
"""

import json
import resource
import subprocess
import sys
import time

CASE = r"""
import json, resource, sys, time
from lianxin.ingest.api.rows import BodyError, parse_csv, parse_json
kind, rows = sys.argv[1], int(sys.argv[2])
if kind == "json":
    row = ('{"meter": "3200000001", "ts": "2025-11-27T08:15:00+08:00", '
           '"value": "bad", "unit": "kWh"}')
    body = ("[" + ",".join([row] * rows) + "]").encode()
else:
    line = "3200000001,2025-11-27T08:15:00+08:00,bad,kWh\n"
    body = ("meter,ts,value,unit\n" + line * rows).encode()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
try:
    parse = parse_json if kind == "json" else parse_csv
    parsed = parse(body, meter_kinds=lambda ns: {}, time_zone="Asia/Shanghai")
    outcome = f"{len(parsed.errors):,} errors"
except BodyError as exc:
    outcome = f"refused: {exc}"
took = time.perf_counter() - t
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"mb": round(len(body) / 1e6, 1), "seconds": round(took, 2),
                  "added_rss_mb": round((after - before) / 1024), "outcome": outcome[:80]}))
"""


def main():
    cases = [("json", 100_000), ("csv", 100_000), ("json", 630_000)]
    for kind, rows in cases:
        out = subprocess.run(
            [sys.executable, "-c", CASE, kind, str(rows)], capture_output=True, text=True
        )
        if out.returncode:
            print(out.stderr, file=sys.stderr)
            continue
        r = json.loads(out.stdout)
        print(
            f"{kind:4} {rows:>8,} rows {r['mb']:>6} MB: {r['seconds']:>6} s, "
            f"+{r['added_rss_mb']} MB RSS; {r['outcome']}"
        )


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(
        f"total {time.perf_counter() - t:.1f} s (peak RSS of this driver "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)"
    )
