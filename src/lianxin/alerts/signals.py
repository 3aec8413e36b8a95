"""What apps above alerts may hear of a monitor step (apply_findings), to batch their own work.
A step of many findings is applied in chunks (alerts.service.STEP_CHUNK), each its own
transaction and its own begin … close.

`step` is sent with `phase`:
- "begin": the step's transaction is open (`now`: the step's time);
- "finding": a finding is about to be applied (in its own savepoint);
- "undo": that finding's savepoint was rolled back: forget what it caused;
- "end": every finding is applied, the transaction is still open: write what was gathered
  (it commits, or rolls back, with the alerts it is about);
- "close": the step is over, committed or not: drop anything left.

lianxin.notify writes the step's outbox rows with one bulk insert at "end".
"""

from django.dispatch import Signal

step = Signal()
