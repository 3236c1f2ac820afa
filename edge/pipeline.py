"""The edge pipeline: validate, deduplicate, enrich, persist, derive.

One batch of inbound messages is one SQLite transaction (group commit). Each
message runs inside a savepoint, so a message that trips over a bug is rolled
back alone and quarantined as ``internal_error`` while the rest of the batch
commits. Nothing here talks to MQTT: the caller acknowledges the batch to the
broker after :meth:`Pipeline.process_batch` returns, i.e. after the commit.

Order of checks for a device message: topic -> size -> known device -> JSON
-> schema -> content parsing (NDEF, GS1: pure, may quarantine) -> dedupe on
(device_id, msg_id) -> stateful steps (loyalty token and its replay record,
sessions) -> derived events, credited to a customer only on evidence
(:mod:`edge.sessions`). Deduplication comes before any stateful step so
that a redelivered app token is not mistaken for a replay.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import sqlite3
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlite_utils

from contract.gs1 import GS1Error
from contract.loyalty import TokenError
from contract.ndef_codec import NdefError, candidate_strings, decode_ndef
from contract.scan import ScanContent, classify
from contract.topics import KIND_CHANNELS, TopicError, parse_device_topic
from contract.validation import MAX_PAYLOAD_BYTES, SchemaError, validate

from . import analytics
from .analytics import interest_key
from .catalogue import Catalogue
from .dedupe import RecentKeys
from .identity import Identifier
from .inbound import Inbound
from .label_reports import record_label_report
from .metrics import Metrics
from .registry import Registry
from .screen_previews import PreviewError, check_preview, record_preview
from .sessions import SINGLE_USER_KINDS, Session, Sessions

log = logging.getLogger("vitrine.edge.pipeline")
#: Shelf labels and tags are a finite set, scanned over and over: parsing a
#: GS1 Digital Link once per distinct text, not once per scan, is measurable.
#: (Errors are not cached: a bad label is re-checked and re-quarantined.)
_classify_cached = functools.lru_cache(maxsize=8192)(classify)
#: Topics are a finite set too (devices x channels); invalid ones raise, uncached.
_parse_topic = functools.lru_cache(maxsize=8192)(parse_device_topic)


def uuid5_str(name: str) -> str:
    """``str(uuid.uuid5(EVENT_NS, name))`` without building UUID objects (hot path).

    Deterministic on purpose: a message redelivered after a crash derives the
    same event ids, so the outbox and central's ingest deduplicate them.
    """
    h = bytearray(hashlib.sha1(_NS_BYTES + name.encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()
EVENT_NS = uuid.UUID("6f1d2c1e-9d4b-4c8e-9a39-0b7f8e1d2a10")
_NS_BYTES = EVENT_NS.bytes


#: Device clocks outside [MIN_PLAUSIBLE_TS, now + MAX_CLOCK_AHEAD_S] are not stored
#: as times: an unset RTC sends 0, 2^64-1 or 1970-ish values, a skewed one the future.
MIN_PLAUSIBLE_TS = 1_500_000_000.0  # 2017-07-14: older than any Vitrine device
MAX_CLOCK_AHEAD_S = 86_400.0
_NUMBER_TYPES = (float, int)


def plausible_ts(ts: Any, now: float) -> bool:
    """Is ``ts`` a device time the edge may store (finite, after 2017, < 1 day ahead)?

    Hot path: ``type() in`` excludes bool (an int subclass) without two isinstance
    calls, and the range check alone refuses NaN and both infinities.
    """
    return type(ts) in _NUMBER_TYPES and MIN_PLAUSIBLE_TS <= ts <= now + MAX_CLOCK_AHEAD_S


def is_environmental(exc: BaseException) -> bool:
    """Does ``exc`` say the database or the machine is sick, not one message?

    Disk full, I/O error, locked or read-only database, a malformed file, no
    memory: every message of the batch would fail the same way, so the batch is
    retried whole (nothing acked) instead of quarantining good messages one by
    one. Anything else (an integer SQLite cannot bind, a bug in a parser, a
    constraint) is about the message in hand and isolates that message only.
    """
    return (isinstance(exc, (sqlite3.OperationalError, MemoryError))
            or type(exc) in (sqlite3.DatabaseError, sqlite3.Error))


def safe_text(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` and made encodable (lone surrogates escaped)."""
    return value[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


class _Bug(Exception):
    """Internal: an unexpected exception on the fast path; replay the batch carefully."""


class Rejected(Exception):
    """A message that goes to quarantine: ``reason`` is a short code, ``detail`` says why."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class BatchResult:
    #: (kind, event, event as JSON) to publish in store, in order, once committed.
    events: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    #: device_id -> msg_ids this batch settled (stored, duplicate or quarantined): what
    #: the edge tells each device it may forget (docs/protocol.md, commit notices).
    done: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class QuarantineLimits:
    """How much of what it rejects the edge keeps (see docs/operations.md).

    ``keep_bytes``: payloads longer than this keep only their first ``keep_bytes``
    bytes and the SHA-256 of the whole. ``device_rows``: rows kept per device
    (per unknown sender, for rejects without a device); beyond it a rejection
    only adds to ``quarantine_overflow`` (device, reason, count, first/last time),
    until retention frees room.
    """

    keep_bytes: int = 4096
    device_rows: int = 1000


class Pipeline:
    def __init__(self, db: sqlite_utils.Database, store_id: str, *, catalogue: Catalogue,
                 identifier: Identifier, sessions: Sessions, registry: Registry,
                 metrics: Metrics, quarantine_limits: QuarantineLimits | None = None):
        self.db = db
        self.conn = db.conn
        self.store_id = store_id
        self.catalogue = catalogue
        self.identifier = identifier
        self.sessions = sessions
        self.registry = registry
        self.metrics = metrics
        self._topic = ""  # topic of the message being processed, for quarantine rows
        #: (device_id, msg_id) of the message in hand once its JSON is read.
        self._msg_key: tuple[str, str] | None = None
        #: Outbox rows of the batch, written with one executemany before COMMIT
        #: (half the cost of one INSERT per row; nothing reads them before then).
        self._outbox_rows: list[tuple[str, str, str, str, float]] = []
        #: Beside each outbox row: where analytics counts it (interest events), or None.
        self._interest_keys: list[analytics.InterestKey | None] = []
        #: Accepted events of the batch, likewise, and their keys (dedupe inside
        #: the batch); :attr:`recent` holds the keys of committed events.
        self._event_rows: list[tuple[str, str, str, float, float, str]] = []
        self._batch_keys: set[tuple[str, str]] = set()
        #: device_id -> (implausible clocks in the batch, last such ts), for the registry.
        self._clock_faults: dict[str, tuple[int, str]] = {}
        #: device_id -> edge clock minus device clock, measured on its latest heartbeat
        #: (telemetry is skipped, never buffered, while a device is offline), so that
        #: proof of play can be put on the edge's clock, the one interest events use.
        self._clock_offset: dict[str, float] = {}
        self.recent = RecentKeys()
        self.recent.load(self.conn)
        self.quarantine_limits = quarantine_limits or QuarantineLimits()
        #: Quarantine rows per device id ("" for rejects with no device), as committed.
        self._quarantine_rows: Counter[str] = Counter()
        self.reload_quarantine_counts()

    def reload_quarantine_counts(self) -> None:
        """Re-count quarantine rows per device (at start, after retention deleted some)."""
        self._quarantine_rows = Counter({d or "": n for d, n in self.conn.execute(
            "SELECT device_id, count(*) FROM quarantine GROUP BY device_id")})

    # -- batch -------------------------------------------------------------
    def process_batch(self, items: list[Inbound]) -> BatchResult:
        """Record ``items`` in one transaction; return what to publish. Raises on commit failure.

        Fast path: no per-message savepoint. Every :class:`Rejected` is raised
        before the message wrote anything, so quarantining needs no rollback.
        Only an unexpected exception (a bug) needs one: then the whole batch is
        rolled back and replayed message by message inside savepoints, so the
        faulty message is quarantined alone and the others still commit.
        """
        conn = self.conn
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        self._reset_batch()
        try:
            result = BatchResult()
            try:
                for item in items:
                    self._process_one(item, result, savepoint=False)
                self._flush_deferred(result)
            except Exception as exc:
                # _Bug (a message tripped over something), or the deferred inserts
                # refused one message's values (e.g. an integer SQLite cannot bind):
                # either way one message is at fault, so replay carefully.
                cause = exc.__cause__ if isinstance(exc, _Bug) else exc
                if cause is not None and is_environmental(cause):
                    raise cause from None
                log.warning("batch of %d: %r; replaying message by message", len(items),
                            cause)
                conn.execute("ROLLBACK")
                self.reload_state()
                conn.execute("BEGIN IMMEDIATE")
                result = BatchResult()
                self._reset_batch()
                for item in items:
                    self._process_one(item, result, savepoint=True)
            conn.execute("COMMIT")
            self.recent.add_all(self._batch_keys)  # only now: they are committed
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.reload_state()
            raise
        self.metrics.commit((time.perf_counter() - t0) * 1000, len(items))
        result.counts["received"] += len(items)
        self.metrics.add_many(result.counts)
        return result

    def _flush_deferred(self, result: BatchResult) -> None:
        """Write the rows deferred so far (events, outbox, last_seen, sessions).

        Once per batch on the fast path; once per message, inside its savepoint,
        when a batch is replayed, so that a value SQLite refuses is caught with
        the message that carried it.
        """
        conn = self.conn
        if self._event_rows:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO events (device_id, msg_id, channel, received_at,"
                " device_ts, payload) VALUES (?, ?, ?, ?, ?, ?)", self._event_rows)
            ignored = len(self._event_rows) - (conn.total_changes - before)
            if ignored:
                log.warning("%d duplicates older than the dedupe window", ignored)
                result.counts["duplicates_beyond_window"] += ignored
                result.counts["accepted"] -= ignored
                result.counts["duplicates"] += ignored
            self._event_rows = []
        if self._outbox_rows:
            (top_before,) = conn.execute("SELECT max(seq) FROM outbox").fetchone()
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, kind, customer_key, payload,"
                " created_at) VALUES (?, ?, ?, ?, ?)", self._outbox_rows)
            if conn.total_changes - before == len(self._outbox_rows):
                # Analytics counted now, from the events in hand (edge/analytics.py);
                # with an ignored row, the housekeeping roll-up counts what went in.
                analytics.count_inserted(conn, self._interest_keys, top_before)
            self._outbox_rows = []
            self._interest_keys = []
        if self._clock_faults:
            conn.executemany(
                "UPDATE devices SET clock_faults = clock_faults + ?, last_bad_ts = ?"
                " WHERE device_id = ?",
                [(n, bad, d) for d, (n, bad) in self._clock_faults.items()])
            self._clock_faults = {}
        self.registry.flush(conn)
        self.sessions.flush(conn)

    def _reset_batch(self) -> None:
        self._outbox_rows = []
        self._interest_keys = []
        self._event_rows = []
        self._batch_keys = set()
        self._clock_faults = {}
        self.registry.discard()

    def _process_one(self, item: Inbound, result: BatchResult, *, savepoint: bool) -> None:
        conn = self.conn
        if savepoint:
            conn.execute("SAVEPOINT msg")
            counts_before = result.counts.copy()
        mark = len(result.events)
        outbox_mark = len(self._outbox_rows)
        event_mark = len(self._event_rows)
        self._msg_key = None
        try:
            self._process(item, result)
            if savepoint:
                self._flush_deferred(result)
                conn.execute("RELEASE msg")
            key = self._msg_key  # settled (see _settled), inlined: once per message
            if key is not None:
                done = result.done.get(key[0])
                if done is None:
                    result.done[key[0]] = [key[1]]
                else:
                    done.append(key[1])
        except Rejected as rej:
            if savepoint:
                conn.execute("ROLLBACK TO msg")
                conn.execute("RELEASE msg")
                result.counts = counts_before
            del result.events[mark:]
            self._truncate(outbox_mark, event_mark)
            self._quarantine(item, rej.reason, rej.detail, result)
            self._settled(result)
        except Exception as exc:
            if is_environmental(exc):
                raise  # the database is sick, not this message: retry the whole batch
            if not savepoint:
                raise _Bug from exc
            conn.execute("ROLLBACK TO msg")
            conn.execute("RELEASE msg")
            result.counts = counts_before
            del result.events[mark:]
            self._truncate(outbox_mark, event_mark)
            self._clock_faults.pop(self._device_of(item), None)
            self.registry.discard()
            self.sessions.reload(conn)
            log.warning("internal error on %s: %r (message quarantined)",
                        safe_text(item.topic, 200), exc)
            self._quarantine(item, "internal_error", repr(exc)[:500], result)
            self._settled(result)

    def _settled(self, result: BatchResult) -> None:
        """Record that the message in hand, if it had a msg_id, is settled in this batch."""
        key = self._msg_key
        if key is not None:
            result.done.setdefault(key[0], []).append(key[1])

    def _truncate(self, outbox_mark: int, event_mark: int) -> None:
        """Forget the deferred rows of a message that was rolled back."""
        del self._outbox_rows[outbox_mark:]
        del self._interest_keys[outbox_mark:]
        for row in self._event_rows[event_mark:]:
            self._batch_keys.discard((row[0], row[1]))
        del self._event_rows[event_mark:]

    def reload_state(self) -> None:
        """Forget in-memory state that a rolled-back transaction may have changed."""
        self.sessions.reload(self.conn)
        self.reload_quarantine_counts()

    # -- one message -----------------------------------------------------------
    def _process(self, item: Inbound, result: BatchResult) -> None:
        self._topic = item.topic
        try:
            dt = _parse_topic(item.topic)
        except TopicError as exc:
            raise Rejected("bad_topic", str(exc)) from None
        if dt.store_id != self.store_id:
            raise Rejected("wrong_store", dt.store_id)
        if len(item.payload) > MAX_PAYLOAD_BYTES[dt.channel]:
            raise Rejected("oversize", f"{len(item.payload)} bytes > "
                           f"{MAX_PAYLOAD_BYTES[dt.channel]} for {dt.channel}")
        device = self.catalogue.device(dt.device_id)
        if device is None:
            raise Rejected("unknown_device", dt.device_id)
        allowed = KIND_CHANNELS.get(device.kind or "")
        if allowed is not None and dt.channel not in allowed:
            # The broker's ACL refuses it already; this holds if the registry and the
            # broker's registry disagree (a camera provisioned as a reader, say).
            raise Rejected("channel_not_allowed", f"a {device.kind} does not publish on"
                           f" {dt.channel}")
        if item.frame_error:
            raise Rejected(*item.frame_error)
        try:
            msg = orjson.loads(item.payload)
        except orjson.JSONDecodeError as exc:
            raise Rejected("not_json", str(exc)[:200]) from None
        if type(msg) is dict:
            msg_id = msg.get("msg_id")
            if type(msg_id) is str:
                self._msg_key = (dt.device_id, msg_id[:64])
        try:
            validate(dt.channel, msg)
        except SchemaError as exc:
            raise Rejected("schema", str(exc)[:300]) from None
        now = item.received_at
        device_ts = msg.get("ts")
        if device_ts is not None and not plausible_ts(device_ts, now):
            # Kept in the raw payload for inspection, but never stored or sent on as a time.
            result.counts["implausible_clock"] += 1
            n, _ = self._clock_faults.get(dt.device_id, (0, ""))
            self._clock_faults[dt.device_id] = (n + 1, safe_text(repr(device_ts), 64))
            device_ts = None
        if dt.channel == "state":
            self.registry.on_state(self.conn, dt.device_id, msg, now)
            result.counts["state"] += 1
            return
        if dt.channel == "preview":  # a screen's thumbnail: its row replaced, not an event
            try:
                jpeg = check_preview(msg)
            except PreviewError as exc:
                raise Rejected("bad_preview", str(exc)[:200]) from None
            kept = record_preview(self.conn, dt.device_id, msg, jpeg, now, device_ts)
            self.registry.touch(dt.device_id, now)
            result.counts["preview" if kept else "preview_older"] += 1
            return

        # Content is parsed before the event row is written: a message we cannot
        # understand goes to quarantine, not into the accepted events.
        contents: list[ScanContent] = []
        if dt.channel == "nfc":
            contents = self._nfc_contents(msg)
        elif dt.channel == "qr":
            contents = [self._classify(msg["text"])]
        elif dt.channel == "frame":
            contents = [self._classify(t) for t in item.frame_texts or []]

        if dt.channel == "frame":  # the image itself is not kept, only what was read in it
            stored = dumps({k: v for k, v in msg.items() if k != "image"})
        else:
            stored = item.payload.decode()  # valid UTF-8 JSON: orjson checked it
        key = (dt.device_id, msg["msg_id"])
        if key in self.recent or key in self._batch_keys:
            result.counts["duplicates"] += 1
            return
        self._batch_keys.add(key)
        self._event_rows.append((dt.device_id, msg["msg_id"], dt.channel, now, device_ts,
                                 stored))
        result.counts["accepted"] += 1
        self.registry.touch(dt.device_id, now)
        if dt.channel == "telemetry":
            if device_ts is not None:  # heartbeats are never buffered: a clean clock reading
                self._clock_offset[dt.device_id] = now - device_ts
            return
        if dt.channel == "label":  # what a shelf label now displays (edge/label_reports.py)
            outcome = record_label_report(self.conn, dt.device_id, msg, now)
            result.counts[f"label_report.{outcome}"] += 1
            return
        if dt.channel == "play":  # proof of play: stored, and forwarded to central
            self._play(dt.device_id, msg, now, device_ts, result)
            return
        if dt.channel == "frame" and not contents:
            result.counts["frames_without_code"] += 1
            return
        self._derive(dt.device_id, dt.channel, msg, contents, now, device_ts, result)

    def _nfc_contents(self, msg: dict[str, Any]) -> list[ScanContent]:
        raw = msg.get("ndef")
        if not raw:
            return []
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected("bad_ndef", "ndef is not base64") from None
        try:
            items = decode_ndef(data)
        except NdefError as exc:
            raise Rejected("bad_ndef", str(exc)[:200]) from None
        return [self._classify(s) for s in candidate_strings(items)]

    @staticmethod
    def _classify(text: str) -> ScanContent:
        try:
            return _classify_cached(text)
        except GS1Error as exc:
            raise Rejected("bad_gs1", str(exc)[:200]) from None

    # -- derived events ----------------------------------------------------------
    def _derive(self, device_id: str, channel: str, msg: dict[str, Any],
                contents: list[ScanContent], now: float, device_ts: float | None,
                result: BatchResult) -> None:
        """Presence and interest events of one read, credited as :mod:`edge.sessions` says."""
        device = self.catalogue.device(device_id)
        zone = device.zone if device else None
        single_user = device is not None and device.kind in SINGLE_USER_KINDS
        session = self.sessions.touch(self.conn, device_id, now)
        base = {"store_id": self.store_id, "device_id": device_id, "zone": zone,
                "received_at": now, "device_ts": device_ts}
        uid = msg.get("uid") if channel == "nfc" else None
        tag = self.catalogue.tag(uid) if uid else None
        n = 0

        def event_id() -> str:
            nonlocal n
            n += 1
            return uuid5_str(f"{self.store_id}/{device_id}/{msg['msg_id']}/{n}")

        #: (gtin, what was read, session it is credited to or None for "whoever this read is").
        products: list[tuple[str, ScanContent | None, Session | None]] = []
        identified: list[Session] = []  # sessions the tokens of this read opened
        for content in contents:
            if content.kind == "loyalty" and content.token:
                try:
                    claims = self.identifier.verify(self.conn, content.token, now=now,
                                                    card_uid=uid)
                except TokenError as exc:
                    reason = getattr(exc, "reason", "invalid")
                    self._security(event_id(), base, reason, result)
                    # Kept for inspection with the other rejects, but the tap itself
                    # was a real, accepted event: only the identification failed.
                    self._quarantine_row(now, self._topic, device_id, f"token_{reason}",
                                         str(exc)[:200], content.token.encode(), result)
                    continue
                owner = self.sessions.identify(self.conn, device_id, claims.customer_id, now,
                                               single_user=single_user)
                identified.append(owner)
                if single_user:
                    session = owner  # the kiosk's next reads, and the rest of this one
                ev = {"event_id": event_id(), "type": "presence", **base,
                      "customer_id": claims.customer_id, "session_id": owner.session_id,
                      "method": claims.kind}
                self._emit("presence", ev, claims.customer_id, result)
                self._credit(device_id, msg["msg_id"], claims.customer_id)
                if claims.gtin:  # scanned with their own app: signed, so theirs
                    products.append((claims.gtin, None, owner))
            elif content.kind == "product" and content.gtin:
                products.append((content.gtin, content, None))
            else:
                result.counts["unrecognised_content"] += 1
        if not products and tag is not None and tag.gtin:
            products.append((tag.gtin, None, None))
        if not contents and uid and tag is None:
            result.counts["unknown_tag"] += 1
        # A product read together with exactly one customer's token is theirs; with
        # two customers' tokens in one read, nobody's (there is no telling whose).
        read_owner = (identified[0] if identified
                      and len({s.customer_id for s in identified}) == 1 else None)
        for gtin, content, owner in products:
            credited = owner or (read_owner if not single_user else None) or session
            ev = {"event_id": event_id(), "type": "interest", **base,
                  "zone": (tag.zone if tag and tag.zone else zone),
                  "shelf": (tag.shelf if tag else None) or (device.shelf if device else None),
                  "gtin": gtin, "product": self.catalogue.product(gtin),
                  "customer_id": credited.customer_id, "session_id": credited.session_id,
                  "source": channel}
            if content is not None and content.ais:
                # What the edge read besides the GTIN (lot, serial, expiry...), so a
                # device builder can see it; a copy: cached classifications are shared.
                ev["ais"] = dict(content.ais)
            self._emit("interest", ev, credited.customer_id or credited.session_id, result)
            if credited.customer_id:
                self._credit(device_id, msg["msg_id"], credited.customer_id)
                result.counts["interest.credited"] += 1

    def _credit(self, device_id: str, msg_id: str, customer_id: str) -> None:
        """Record that this raw read is ``customer_id``'s: what erasure deletes, exactly."""
        self.conn.execute("INSERT OR IGNORE INTO event_customers VALUES (?, ?, ?)",
                          (device_id, msg_id, customer_id))

    def _play(self, device_id: str, msg: dict[str, Any], now: float,
              device_ts: float | None, result: BatchResult) -> None:
        """One item a screen showed: a ``play`` outbox row for central, no customer in it.

        Not published in store (``events/``): nothing in the store needs it, and
        central attributes interest to what was on screen (``play_event.json``).
        Central compares it with interest events, which carry the edge's receive
        time, so the play is put on the edge's clock too: ``shown_from`` is the
        screen's ``started_at`` plus the screen's clock offset measured on its
        latest heartbeat (``clock: "edge"``). Before any heartbeat since the edge
        started, the screen's clock is trusted if plausible (``clock: "screen"``),
        else this message's own offset is used (exact unless it was buffered).
        The zone is the screen's zone in the edge's registry, not what it says.
        """
        offset = self._clock_offset.get(device_id)
        clock = "edge"
        if offset is None:
            clock = "screen"
            offset = 0.0
            if not plausible_ts(msg["started_at"], now) and device_ts is not None:
                offset = now - device_ts
        shown_from = max(0.0, msg["started_at"] + offset)
        device = self.catalogue.device(device_id)
        ev = {"event_id": uuid5_str(f"{self.store_id}/{device_id}/{msg['msg_id']}/1"),
              "type": "play", "store_id": self.store_id, "device_id": device_id,
              "zone": (device.zone if device and device.zone else msg.get("zone")),
              "item_id": msg["item_id"], "kind": msg["kind"],
              "playlist_id": msg.get("playlist_id"), "trigger": msg["trigger"],
              "gtin": msg.get("gtin"), "started_at": msg["started_at"],
              "duration_s": msg["duration_s"], "shown_from": round(shown_from, 3),
              "shown_until": round(shown_from + msg["duration_s"], 3), "clock": clock,
              "received_at": now, "device_ts": device_ts}
        self._outbox_rows.append((ev["event_id"], "play", f"device:{device_id}", dumps(ev), now))
        self._interest_keys.append(None)
        result.counts["play"] += 1

    def _emit(self, kind: str, event: dict[str, Any], customer_key: str,
              result: BatchResult) -> None:
        text = dumps(event)
        self._outbox_rows.append((event["event_id"], kind, customer_key, text,
                                  event["received_at"]))
        self._interest_keys.append(interest_key(event) if kind == "interest" else None)
        result.events.append((kind, event, text))
        result.counts[kind] += 1

    def _security(self, event_id: str, base: dict[str, Any], reason: str,
                  result: BatchResult) -> None:
        ev = {"event_id": event_id, "type": "security", "store_id": base["store_id"],
              "device_id": base["device_id"], "zone": base["zone"], "reason": reason,
              "received_at": base["received_at"]}
        self.conn.execute("INSERT OR IGNORE INTO security_events VALUES (?, ?, ?, ?, NULL)",
                          (event_id, base["received_at"], base["device_id"], reason))
        # Central sees security events too (fraud patterns across stores).
        self._emit("security", ev, f"device:{base['device_id']}", result)
        result.counts[f"security.{reason}"] += 1

    def _quarantine_row(self, received_at: float, topic: str, device_id: str | None,
                        reason: str, detail: str, payload: bytes, result: BatchResult) -> None:
        """Keep a rejected payload for inspection, within the limits of :class:`QuarantineLimits`.

        A device that sends nothing but garbage fills its quota and then only
        counts: the store's disk is not the attacker's to fill.
        """
        result.counts["quarantined"] += 1
        result.counts[f"quarantined.{reason}"] += 1
        limits = self.quarantine_limits
        who = device_id or ""
        if self._quarantine_rows[who] >= limits.device_rows:
            self.conn.execute(
                "INSERT INTO quarantine_overflow (device_id, reason, count, first_at, last_at)"
                " VALUES (?, ?, 1, ?, ?) ON CONFLICT (device_id, reason) DO UPDATE SET"
                " count = count + 1, last_at = excluded.last_at",
                (who, reason, received_at, received_at))
            result.counts["quarantine_over_quota"] += 1
            return
        size = len(payload)
        digest, truncated = None, 0
        if size > limits.keep_bytes:
            digest = hashlib.sha256(payload).hexdigest()
            payload, truncated = payload[:limits.keep_bytes], 1
        self.conn.execute(
            "INSERT INTO quarantine (received_at, topic, device_id, reason, detail, size,"
            " payload, sha256, truncated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (received_at, safe_text(topic, 512), device_id, reason, safe_text(detail, 500),
             size, payload, digest, truncated))
        self._quarantine_rows[who] += 1

    @staticmethod
    def _device_of(item: Inbound) -> str | None:
        try:
            return _parse_topic(item.topic).device_id
        except TopicError:
            return None

    def _quarantine(self, item: Inbound, reason: str, detail: str, result: BatchResult) -> None:
        device_id = self._device_of(item)
        detail = safe_text(detail, 500)
        self._quarantine_row(item.received_at, item.topic, device_id, reason, detail,
                             item.payload, result)
        ev = {"type": "rejected", "store_id": self.store_id, "device_id": device_id,
              "reason": reason,
              "detail": detail[:200], "received_at": item.received_at}
        result.events.append(("rejected", ev, dumps(ev)))
