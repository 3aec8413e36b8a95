"""The MQTT subscriber: readings and meter events from a broker into the stores, acknowledged only
once they are durable.

Payloads are JSON, one of (see lianxin.ingest.api.rows.decode_json):

    {"readings": [{"meter": "3200012345", "ts": "2026-11-27T08:15:00+08:00", "value": 0.42,
                   "unit": "kWh"}, ...],
     "events":   [{"meter": "3200012345", "ts": "2026-11-27T08:16:03+08:00",
                   "event": "power_off", "detail": "last gasp"}, ...],
     "unit": "kWh"}                                    # optional default for readings
    [{"meter": ..., "ts": ..., "value": ..., "unit": ...}, ...]           # readings only
    {"meter": ..., "ts": ..., "value": ..., "unit": ...}                  # one reading
    {"meter": ..., "ts": ..., "event": "power_on"}                        # one event

How nothing is lost:
- MQTT v5, QoS 1, a fixed client id and a persistent session (clean_start=False with a session
  expiry), so the broker keeps what arrives while the subscriber is down or restarting.
- Manual acknowledgement: a message is acked (PUBACK) only after the batch it is in was written
  to the stores (fsynced) and its rejected rows were kept in the quarantine. A crash before the
  ack makes the broker send it again; the store drops the identical copy, so each reading is
  stored once.
- Messages are gathered and written together (at most `batch_messages`, or after `flush_seconds`)
  so a stream of small messages does not cost one file per reading.
- A message received on an earlier connection is not acked on a new one (its packet id may have
  been reused): the broker sends it again on reconnect and the store drops the duplicate.
- A message that cannot be read is kept in the quarantine with the reason and acked, so it is not
  sent again forever; the subscriber never stops on bad input.
- So is a message that makes anything else fail (a reader bug, text no database can keep): the
  batch is retried message by message and the culprit alone is quarantined and acked.
- A failing write (disk full, read-only, database down or locked) is retried with backoff;
  nothing is acked meanwhile. Only such store failures are retried.
- Broker restarts: paho reconnects with backoff (1 s doubling to 30 s) and the session resumes.

Broker side (mosquitto.conf): `persistence true` so queued messages survive a broker restart, and
`max_queued_messages` large enough for the longest outage of the subscriber (default 1000
messages, after which the broker drops them).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from lianxin.ingest.api.rows import (
    BodyError,
    RowError,
    decode_json,
    parse_rows,
    rejected_rows,
    row_list,
)

SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
BEAT_EVERY = 10.0  # seconds between heartbeats


@dataclass
class _Message:
    generation: int  # the connection it arrived on
    mid: int
    topic: str
    payload: bytes
    arrived: float  # time.monotonic()


@dataclass
class Stats:
    messages: int = 0
    readings: int = 0
    payments: int = 0  # payments and balances
    events: int = 0
    duplicate: int = 0
    rejected: int = 0
    bad_messages: int = 0


class Subscriber:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        topics: list[str],
        client_id: str,
        intake,
        username: str | None = None,
        password: str | None = None,
        batch_messages: int = 500,
        flush_seconds: float = 0.2,
        keepalive: int = 30,
        log=print,
    ):
        self.host, self.port, self.topics = host, port, topics
        self.client_id = client_id
        self.intake = intake
        self.batch_messages = batch_messages
        self.flush_seconds = flush_seconds
        self.keepalive = keepalive
        self.log = log
        self.stats = Stats()
        self._pending: list[_Message] = []
        self._cond = threading.Condition()
        self._generation = 0
        self._stopping = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_connect_fail = self._on_connect_fail

    # ---- network thread (paho) ----------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.log(f"broker {self.host}:{self.port} refused the connection: {reason_code}")
            return
        with self._cond:
            self._generation += 1
            # Unwritten messages of the old connection will be sent again by the broker.
            self._pending = [m for m in self._pending if m.generation == self._generation]
        session = "resumed" if flags.session_present else "new"
        self.log(f"connected to {self.host}:{self.port} ({session} session)")
        client.subscribe([(t, SubscribeOptions(qos=1)) for t in self.topics])

    def _on_connect_fail(self, client, userdata):
        self.log(f"cannot reach the broker at {self.host}:{self.port}; retrying")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            self.log(f"subscription refused: {', '.join(failed)}")
        else:
            self.log(f"subscribed to {', '.join(self.topics)} at QoS 1")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if not self._stopping:
            self.log(f"disconnected from the broker ({reason_code}); reconnecting")

    def _on_message(self, client, userdata, message):
        with self._cond:
            self._pending.append(
                _Message(
                    self._generation, message.mid, message.topic, message.payload, time.monotonic()
                )
            )
            if len(self._pending) == 1 or len(self._pending) >= self.batch_messages:
                self._cond.notify()

    # ---- writer (the calling thread) ----------------------------------------------------------

    def run(self, stop: threading.Event, stats_every: float = 10.0) -> Stats:
        """Subscribe and write until `stop` is set; then flush what was received and disconnect."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        # How many unacked messages the broker may send us: room for the batch being written and
        # the next one.
        props.ReceiveMaximum = min(65535, 2 * self.batch_messages)
        self.client.connect_async(
            self.host, self.port, keepalive=self.keepalive, clean_start=False, properties=props
        )
        self.client.loop_start()
        next_stats = time.monotonic() + stats_every
        next_beat = 0.0
        try:
            while not stop.is_set():
                batch = self._next_batch(stop)
                if batch:
                    self._write(batch, stop)
                if time.monotonic() >= next_beat:
                    self._beat()
                    next_beat = time.monotonic() + BEAT_EVERY
                if time.monotonic() >= next_stats:
                    self._print_stats()
                    next_stats = time.monotonic() + stats_every
            batch = self._take_all()
            if batch:
                self._write(batch, stop=None)
        finally:
            self._stopping = True
            self.client.disconnect()
            self.client.loop_stop()
            self._print_stats()
            self._beat(stopped=True)
        return self.stats

    def _beat(self, stopped: bool = False):
        """The heartbeat lianxin.health watches: messages waiting to be written as backlog."""
        from lianxin import health

        try:
            if stopped:
                health.stopped(f"mqtt {self.client_id}")
                return
            with self._cond:
                backlog = len(self._pending)
            health.beat(
                f"mqtt {self.client_id}",
                every=BEAT_EVERY,
                backlog=backlog,
                detail={"messages": self.stats.messages, "readings": self.stats.readings},
            )
        except Exception as exc:  # noqa: BLE001 - a missed beat must not stop the subscriber
            self.log(f"could not write the heartbeat: {type(exc).__name__}: {exc}")

    def _next_batch(self, stop: threading.Event) -> list[_Message]:
        with self._cond:
            if not self._pending:
                self._cond.wait(timeout=0.5)
                if not self._pending:
                    return []
            # Wait for the batch to fill, but never hold a message longer than flush_seconds.
            deadline = self._pending[0].arrived + self.flush_seconds
            while len(self._pending) < self.batch_messages and not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(timeout=left)
            batch = self._pending[: self.batch_messages]
            self._pending = self._pending[self.batch_messages :]
            return batch

    def _take_all(self) -> list[_Message]:
        with self._cond:
            batch, self._pending = self._pending, []
            return batch

    def _write(self, batch: list[_Message], stop: threading.Event | None):
        delay = 1.0
        while True:
            try:
                self._store_contained(batch)
                break
            except Exception as exc:  # noqa: BLE001 - keep the messages unacked and retry
                self.log(
                    f"could not store {len(batch)} message(s), retrying in {delay:.0f} s: "
                    f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
                )
                # When stopping, give up: unacked, the broker sends them again after a restart.
                if stop is None or stop.wait(delay):
                    return
                delay = min(delay * 2, 30.0)
        with self._cond:
            generation = self._generation
        for m in batch:
            if m.generation == generation:
                self.client.ack(m.mid, 1)

    def _store_contained(self, batch: list[_Message]):
        """Store a batch; a failure that is not the store's (a message no code path expected) is
        narrowed down to the message(s) causing it, which go to the quarantine and are acked, so
        one poison message never blocks the stream. Only store failures propagate (retried)."""
        try:
            self._store(batch)
            return
        except Exception as exc:  # noqa: BLE001 - sorted into retryable or the batch's fault
            if _retryable(exc):
                raise
            self.log(
                f"a batch of {len(batch)} message(s) failed ({type(exc).__name__}); "
                "storing its messages one by one to find the culprit"
            )
        for m in batch:
            try:
                self._store([m])
            except Exception as exc:  # noqa: BLE001 - as above, for one message
                if _retryable(exc):
                    raise
                self.log(
                    f"message on {m.topic} could not be stored ({type(exc).__name__}); "
                    "kept in the quarantine and acknowledged"
                )
                reason = f"could not be stored: {type(exc).__name__}: {' '.join(str(exc).split())}"
                self.intake.quarantine(
                    [RowError(0, "payload", _preview(m.payload), reason[:300], "unstorable")],
                    source=f"mqtt {m.topic}",
                    description="MQTT message that could not be stored; line = row in the message",
                )
                self.stats.messages += 1
                self.stats.bad_messages += 1

    def _store(self, batch: list[_Message]):
        from django.db import close_old_connections

        close_old_connections()
        lists: dict[str, list] = {"": [], "events.": [], "payments.": [], "balances.": []}
        # The message and the index within it of each decoded row, to name them in errors.
        origins: dict[str, list[tuple[int, int]]] = {k: [] for k in lists}
        errors: dict[int, list[RowError]] = {}
        for index, message in enumerate(batch):
            try:
                decoded = decode_json(message.payload)
            except BodyError as exc:
                errors[index] = [
                    RowError(0, "payload", _preview(message.payload), str(exc), "unreadable")
                ]
                self.stats.bad_messages += 1
                continue
            except Exception as exc:  # noqa: BLE001 - a reader failure is the message's own
                errors[index] = [
                    RowError(
                        0,
                        "payload",
                        _preview(message.payload),
                        f"not readable ({type(exc).__name__})",
                        "unreadable",
                    )
                ]
                self.stats.bad_messages += 1
                continue
            for key, rows in zip(lists, decoded, strict=True):
                origins[key].extend((index, i) for i in range(len(rows)))
                lists[key].extend(rows)
        parsed = parse_rows(
            lists[""],
            lists["events."],
            payments=lists["payments."],
            balances=lists["balances."],
            meter_kinds=self.intake.meter_kinds,
            time_zone=self.intake.time_zone,
        )
        rejected = rejected_rows(parsed.errors)
        for e in parsed.errors:
            index, row = origins[row_list(e.field)][e.row]
            errors.setdefault(index, []).append(RowError(row, e.field, e.value, e.reason, e.code))
        parsed.errors = []
        outcome = self.intake.take(parsed, source="mqtt", description="MQTT messages")
        received = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for index, errs in errors.items():
            self.intake.quarantine(
                errs,
                source=f"mqtt {batch[index].topic}",
                description=f"MQTT message received {received}; line = row in the message",
            )
        from lianxin import health

        # Each subscription is a source whose silence is watched (not each meter's topic).
        for sub in {self._subscription(m.topic) for m in batch}:
            health.seen("mqtt", sub)
        s = self.stats
        s.messages += len(batch)
        s.readings += outcome.readings.accepted + outcome.readings.replaced
        s.events += outcome.events.accepted + outcome.events.replaced
        s.payments += sum(w.accepted + w.replaced for w in (outcome.payments, outcome.balances))
        s.duplicate += outcome.total().duplicate
        s.rejected += rejected

    def _subscription(self, topic: str) -> str:
        return next((t for t in self.topics if mqtt.topic_matches_sub(t, topic)), topic)

    def _print_stats(self):
        s = self.stats
        self.log(
            f"{s.messages} message(s): {s.readings} reading(s) and {s.events} event(s) stored, "
            f"{s.duplicate} duplicate, {s.rejected} row(s) rejected, "
            f"{s.bad_messages} unreadable message(s), "
            f"{s.payments} payment(s) and balance(s) stored"
        )


def _retryable(exc: BaseException) -> bool:
    """A failure of the store or the database (disk full, read-only, database down or locked):
    worth retrying, the message is not at fault. Anything else is the message's own."""
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, OSError | OperationalError | InterfaceError)


def _preview(payload: bytes) -> str:
    text = payload[:120].decode("utf-8", errors="replace")
    return text + ("..." if len(payload) > 120 else "")
