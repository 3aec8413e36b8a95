"""`lianxin import-findings FOLDER`: findings written by `lianxin spark replay` become alerts.

Reads the findings Parquet (the run's --out folder, its findings/ folder, or a findings file)
and hands the findings, in detection order, to the alerts service the monitor uses
(lianxin.alerts.service.apply_findings), which is idempotent on (finding_id, event): importing
the same folder twice opens, updates and clears nothing the second time.
"""

BATCH = 5_000  # findings per call of apply_findings (each its own transactions)


def add_arguments(parser):
    parser.add_argument(
        "folder",
        help="a `lianxin spark replay --out` folder, its findings/ folder, or one Parquet file "
        "(local, or s3:// with the object store's credentials in the environment)",
    )


def run(args) -> int:
    from lianxin.errors import LianxinError
    from lianxin.spark.shard import FINDING_SCHEMA, findings_of

    frame = _read(args.folder)
    missing = [c for c in FINDING_SCHEMA if c not in frame.columns]
    if missing:
        raise LianxinError(f"{args.folder}: not a findings table: missing {', '.join(missing)}")
    try:
        findings = findings_of(frame)
    except (ValueError, TypeError) as exc:
        raise LianxinError(f"{args.folder}: {exc}") from exc

    import django

    django.setup()
    from lianxin.alerts.models import AppliedFinding
    from lianxin.alerts.service import apply_findings

    before = AppliedFinding.objects.count()
    skipped: list = []
    touched = 0
    for i in range(0, len(findings), BATCH):
        touched += len(apply_findings(findings[i : i + BATCH], skipped=skipped))
    applied = AppliedFinding.objects.count() - before
    print(
        f"{args.folder}: {len(findings):,} findings read; {applied:,} applied "
        f"({len(findings) - applied - len(skipped):,} applied before), {touched:,} alerts "
        f"touched, {len(skipped):,} skipped"
    )
    for finding, reason in skipped[:10]:
        print(f"  skipped {finding.finding_id} {finding.kind} {finding.subject}: {reason}")
    return 0


def _read(folder: str):
    from pathlib import Path

    import polars as pl

    from lianxin.errors import LianxinError

    if "://" not in folder:
        p = Path(folder)
        if (p / "findings").is_dir():
            p = p / "findings"
        if p.is_dir():
            files = sorted(p.rglob("*.parquet"))
            if not files:
                raise LianxinError(f"{folder}: no Parquet files")
            source = files
        elif p.is_file():
            source = p
        else:
            raise LianxinError(f"{folder}: no such file or folder")
    else:
        source = folder.rstrip("/") + "/**/*.parquet"
    try:
        return pl.read_parquet(source)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LianxinError(f"{folder}: cannot read as Parquet: {exc}") from exc
