"""Lianxin watches itself: heartbeats of its long-running processes, the arrival history of its
data sources, and system alerts when either goes quiet (see docs/operations.md).

The API any process calls (Django must be set up; each call is one small database write):

    from lianxin import health
    health.beat("notify", every=10, backlog=pending)   # once per loop of a worker
    health.seen("mqtt", "meters/#")                    # data arrived from a source
    health.stopped("notify")                           # a clean stop: no process_down alert
    health.forget("token", "utility-a")                # a source retired on purpose

`beat` takes what the process knows: duration (s) of its last step, the engine clock it reached
(clock) and the time it should have reached (reference, default now), its lateness, readings
behind, a backlog (a queue length: a backlog that does not go down raises an alert), every (s
between beats, so a silent process is noticed), and detail (a dict shown by `lianxin status`).

Signals lianxin.health.signals.system_alert_raised / system_alert_cleared are sent when a
system alert opens and when it clears.
"""


def beat(process: str, **kwargs) -> None:
    from lianxin.health.beats import beat as _beat

    _beat(process, **kwargs)


def seen(kind: str, name: str, at=None) -> None:
    from lianxin.health.beats import seen as _seen

    _seen(kind, name, at)


def forget(kind: str, name: str) -> None:
    from lianxin.health.beats import forget as _forget

    _forget(kind, name)


def stopped(process: str) -> None:
    from lianxin.health.beats import stopped as _stopped

    _stopped(process)
