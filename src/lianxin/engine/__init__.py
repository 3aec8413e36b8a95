"""The detection engine: frames of readings in, per-home state, findings out.

Pure: no Django, no file or network I/O. Runs in-process, in the monitor, or as Spark tasks.

    from lianxin.engine.replay import replay
    findings = replay(readings, topology=..., events=..., payments=..., settings=..., tz=...)

    from lianxin.engine.core import Engine, EngineConfig
    engine = Engine(EngineConfig())   # the live monitor (tz: LIANXIN_TIME_ZONE)
    findings = engine.step(new_readings, now=..., events=..., payments=...)
    blob = engine.snapshot(); engine = Engine.restore(blob)

See core.py for the state, detectors/ for one module per finding kind, replay.py for the
causal replay, baseline.py for the usual band drawn on the duty-room chart. Nothing is
imported here, so `lianxin.engine.findings` stays a light import.
"""
