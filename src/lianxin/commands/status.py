"""`lianxin status`: Lianxin's own health as a table (what /healthz returns as JSON).

Exit code 0 when healthy, 1 when anything is wrong (a system alert open, the database or the
readings store unreachable, a check that could not run)."""

import json


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print the JSON report of /healthz")


def run(args) -> int:
    from lianxin.web.setup import setup_django

    setup_django()
    from lianxin.health.report import build

    report = build()
    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        print(format_report(report))
    return 0 if report["healthy"] else 1


def _age(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if abs(seconds) >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if abs(seconds) >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _table(headers, rows) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True))  # noqa: E731
    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]


def format_report(r: dict) -> str:
    out = [f"Lianxin status: {r['status'].upper()}  (checked {r['checked_at'][:19]}Z)", ""]
    db, store = r["database"], r["store"]
    out.append(
        f"database  {'ok' if db['ok'] else 'UNREACHABLE'} ({db.get('vendor', '')})"
        + (f": {db['error']}" if not db["ok"] else "")
    )
    out.append(
        f"store     {'ok' if store['ok'] else 'UNREACHABLE'} ({store['path']})"
        + (f": {store.get('error')}" if not store["ok"] else "")
    )
    out.append("")
    if r["processes"]:
        rows = [
            [
                p["process"],
                "stopped" if p["stopped_at"] else _age(p["age_s"]) + " ago",
                "-" if p["step_s"] is None else f"{p['step_s']:.2f}s",
                (p["engine_clock"] or "-")[:19],
                _age(p["lag_s"]),
                "-" if p["readings_behind"] is None else p["readings_behind"],
                "-" if p["backlog"] is None else p["backlog"],
                f"{p['host']}:{p['pid']}",
            ]
            for p in r["processes"]
        ]
        out += _table(
            [
                "process",
                "last beat",
                "step",
                "engine clock (UTC)",
                "lag",
                "behind",
                "backlog",
                "host:pid",
            ],
            rows,
        )
    else:
        out.append("processes: none has beaten yet (is `lianxin monitor` running?)")
    out.append("")
    if r["sources"]:
        rows = [
            [
                s["kind"],
                s["name"],
                _age(s["silent_s"]) + " ago",
                _age(s["usual_gap_s"]) if s["usual_gap_s"] is not None else "learning",
                _age(s["allowed_s"]),
            ]
            for s in r["sources"]
        ]
        out += _table(["source", "name", "last data", "usual gap", "alert after"], rows)
    else:
        out.append("sources: none recorded yet")
    out.append("")
    if r["system_alerts"]:
        out += _table(
            ["system alert", "subject", "open for", "detail"],
            [
                [a["kind"], a["subject"], _age(a["for_s"]), json.dumps(a["detail"])[:80]]
                for a in r["system_alerts"]
            ],
        )
    else:
        out.append("system alerts: none open")
    for f in r.get("failed_checks", []):
        out.append(f"check failed: {f}")
    return "\n".join(out)
