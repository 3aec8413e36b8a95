"""The doorbell: a store write wakes a waiting monitor at once; with nobody listening a write
neither blocks nor fails."""

import threading
import time
from datetime import UTC, datetime

import polars as pl

from lianxin.store import open_stores
from lianxin.store.wake import DATA, REGISTRY, Doorbell, registry_stamp, ring, stamp_registry


def frame(meter="M1"):
    return pl.DataFrame(
        {"meter": [meter], "ts": [datetime(2025, 3, 1, 8, tzinfo=UTC)], "value": [0.0]},
    ).with_columns(unit=pl.lit("kWh"))


def test_with_nobody_listening_a_write_neither_blocks_nor_fails(tmp_path):
    assert ring(tmp_path) is False  # no pipe yet
    bell = Doorbell(tmp_path)
    bell.close()  # the pipe exists, nobody reads it
    assert ring(tmp_path) is False
    assert open_stores(tmp_path).readings.write(frame()).accepted == 1


def test_a_store_write_wakes_a_waiting_monitor_at_once(tmp_path):
    bell = Doorbell(tmp_path)
    stores = open_stores(tmp_path)
    assert bell.wait(0.05) == b""  # the timer: nothing rang
    woke = {}

    def waiter():
        t0 = time.monotonic()
        woke["what"] = bell.wait(30)
        woke["after"] = time.monotonic() - t0

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.2)
    stores.readings.write(frame())
    thread.join(10)
    assert woke["what"] == DATA and woke["after"] < 5
    # A duplicate stores nothing and rings nothing.
    stores.readings.write(frame())
    assert bell.wait(0.05) == b""
    # A full pipe (a monitor busy for long) drops rings instead of blocking the writer.
    for _ in range(70_000):
        ring(tmp_path)
    assert len(bell.drain()) <= 65536 and bell.drain() == b""
    bell.close()


def test_a_registry_change_is_stamped_even_when_the_ring_is_lost(tmp_path):
    assert registry_stamp(tmp_path) is None
    stamp_registry(tmp_path)  # no monitor listening: the stamp stays
    first = registry_stamp(tmp_path)
    bell = Doorbell(tmp_path)
    stamp_registry(tmp_path)
    assert bell.wait(1) == REGISTRY
    assert registry_stamp(tmp_path) != first
    bell.close()
