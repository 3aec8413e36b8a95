"""The detection engine: frames of readings in, per-home state, findings out.

Pure: no Django, no file or network I/O. Runs in-process, in the monitor, or as Spark tasks.
"""
