"""The engine on Apache Spark: `lianxin spark replay` over shards of homes as Spark tasks.

- `shard`: one shard's work (plan, replay, findings table), no Spark and no Django;
- `job`: the driver (pyspark): reads the readings (a local folder or an object-store URL),
  cogroups them by shard with the shards' engine snapshots, and writes findings and snapshots.

This package imports the engine and the store, never the web layer: `lianxin import-findings`
is what turns a findings folder into alerts (lianxin.commands.import_findings).
"""
