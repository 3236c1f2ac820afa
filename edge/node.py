"""The edge node: wires the bus, the frame lane, the pipeline and housekeeping.

Threads: paho's network loop (receives, queues), the frame lane (decodes
camera frames), and one writer thread: it takes whatever is queued (group
commit: the batch is what arrived while the previous commit ran), has it
processed in one transaction (by the writer process, which owns the SQLite
write connection, two batches at a time; or in this thread), publishes the
derived events and only then acknowledges the batch's messages to the broker.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.kinds import COMMAND_FAMILY
from contract.topics import is_request_topic

from .assets import AssetCache
from .backup import hold_lock
from .bus import EdgeBus
from .catalogue import Catalogue
from .commands import commands_for
from .config import EdgeConfig
from .flood import FloodGuard
from .frames import FrameLane
from .inbound import Inbound
from .kiosk_profiles import CentralProfiles, ProfilePrefetcher
from .labels import seed_labels
from .metrics import Metrics
from .pipeline import BatchResult
from .requests import OutboundReply
from .seed import LayoutError, load_layout, seed
from .startup import check_file, open_edge_db, retry_while_disk_full
from .writer_core import WriterCore, build_writer_core

log = logging.getLogger("vitrine.edge")
EventListener = Callable[[str, dict[str, Any]], None]
#: Batches at the writer process at once (see EdgeNode._write_loop_inner).
PIPELINE_DEPTH = 2


@dataclass(slots=True)
class _Job:
    """A batch taken from the queue: its device messages and requests, split."""

    batch: list[Inbound]
    messages: list[Inbound]
    requests: list[Inbound]


class EdgeNode:
    def __init__(self, cfg: EdgeConfig):
        self.cfg = cfg
        self._lock_file = None
        if str(cfg.db_path) != ":memory:":
            check_file(Path(cfg.db_path))
            self._lock_file = retry_while_disk_full(  # one edge per database
                lambda: hold_lock(Path(cfg.db_path)), cfg.startup_retry_s)
        # Opening checks the file (one clear line per fault, see edge/startup.py) and
        # migrates; on a full disk it waits and retries, like a running edge does.
        self.db = open_edge_db(cfg)
        if cfg.layout_path:
            layout = load_layout(cfg.layout_path)
            if layout["store_id"] != cfg.store_id:
                raise LayoutError(f"{cfg.layout_path} describes store {layout['store_id']!r},"
                                  f" this edge is {cfg.store_id!r}")
            counts = retry_while_disk_full(lambda: seed(self.db, layout), cfg.startup_retry_s)
            counts["shelf_labels"] = retry_while_disk_full(
                lambda: seed_labels(self.db.conn, layout), cfg.startup_retry_s)
            log.info("seeded from %s: %s", cfg.layout_path, counts)
        self.metrics = Metrics()
        #: The pipeline and its state live where the SQLite write connection is:
        #: here, or (``cfg.writer_process``) in the writer process, on the other
        #: core, in which case this process only receives, publishes and acks and
        #: keeps a catalogue of its own for kiosk/signage commands.
        self.writer: Any = None
        self.core: WriterCore | None = None
        if cfg.writer_process:
            from .writer_proc import WriterProcess

            self.catalogue = Catalogue(self.db)
            self.writer = WriterProcess(cfg, self.metrics)
        else:
            self.core = build_writer_core(cfg, self.db, self.metrics)
            self.catalogue = self.core.catalogue
        self.queue: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self.frames = FrameLane(cfg.frame_workers, self.queue.put, cfg.frame_queue_max)
        self.flood = FloodGuard(cfg.device_rate_limit, cfg.device_burst)
        self._new_cuts: queue.SimpleQueue[str] = queue.SimpleQueue()
        for (device_id,) in self.db.conn.execute(
                "SELECT device_id FROM device_cutoffs WHERE reinstated_at IS NULL"):
            self.flood.mark_cut(device_id)
        #: When this edge last received anything (the database's latest event at start):
        #: the time away at a (re)connect is the backlog each device may replay.
        (last,) = self.db.conn.execute("SELECT max(received_at) FROM events").fetchone()
        self._last_received = last or time.time()
        self.bus = EdgeBus(cfg, self._on_message, on_connected=self._on_connected)
        self.listeners: list[EventListener] = []
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="edge-writer", daemon=True)
        self._next_housekeeping = 0.0
        #: Settled msg_ids per device not yet announced (commit notices), and when next.
        self._commits: dict[str, list[str]] = {}
        self._next_commit_notice = 0.0
        #: Set by the sync client (another thread, another connection) when the
        #: catalogue, prices or an erasure changed rows the writer caches.
        self._reload = threading.Event()
        self._reloaded = threading.Event()
        self.forwarder: Any = None
        self.sync: Any = None
        #: Fetches kiosk shoppers' profile summaries from central (with a central link).
        self.profiles: ProfilePrefetcher | None = None
        self._side_threads: list[threading.Thread] = []
        #: The store manager's web panel (edge/panel/), when ``cfg.panel_port`` is set.
        self.panel_url: str | None = None
        self._panel: Any = None
        #: Product pictures and media for screens and labels, filled by the catalogue feed.
        self.assets = AssetCache(cfg.assets_dir or Path(cfg.db_path).parent / "assets",
                                 cfg.assets_budget_mb * 1024 * 1024)
        if cfg.central_url:
            self._init_central_link()
        #: Screens and shelf labels (edge/signage_runtime.py): its own thread and connection.
        from .signage_runtime import SignageRuntime

        self.signage = SignageRuntime(cfg, self.send_command, assets=self.assets)

    def _init_central_link(self) -> None:
        from .forwarder import Forwarder
        from .sync import MqttSettings, SyncClient

        cfg = self.cfg
        self.forwarder = Forwarder(
            cfg.db_path, cfg.central_url, cfg.store_token, cfg.forward_batch,
            lanes=cfg.forward_lanes, disk_budget_bytes=cfg.forward_disk_budget_bytes,
            shed_tracking_over_budget=cfg.forward_shed_tracking_over_budget,
            tracking_max_age_s=cfg.forward_tracking_max_age_s,
            sent_retention_s=cfg.forward_sent_retention_s)
        self.sync = SyncClient(
            str(cfg.db_path), cfg.central_url, cfg.store_token,
            {"catalogue": cfg.sync_catalogue_s, "prices": cfg.sync_prices_s,
             "stock": cfg.sync_stock_s, "erasures": cfg.sync_erasures_s,
             "orders": cfg.sync_orders_s},
            store_id=cfg.store_id, on_change=lambda feed: self.request_reload(),
            assets=self.assets,
            # Its own login (``{edge}-sync``, same password, provisioned with the edge):
            # client ids are usernames, so sharing the edge's login would kick the edge.
            mqtt=MqttSettings(cfg.mqtt_host, cfg.mqtt_port, f"{cfg.mqtt_username}-sync",
                              cfg.mqtt_password, client_id=f"{cfg.mqtt_username}-sync",
                              protocol=cfg.mqtt_protocol))
        # A shopper identified at a kiosk: fetch their profile summary for its greeting.
        self.profiles = ProfilePrefetcher(
            cfg.db_path, CentralProfiles(cfg.central_url, cfg.store_token, cfg.store_id))
        self.listeners.append(self.profiles.on_event)

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> EdgeNode:
        self._writer.start()
        if self.forwarder is not None:
            t = threading.Thread(target=self.forwarder.run, args=(self._stop,),
                                 name="edge-forwarder", daemon=True)
            t.start()
            self._side_threads.append(t)
        if self.sync is not None:
            self.sync.start()
        if self.profiles is not None:
            self.profiles.start()
        self.bus.start()
        self.signage.start()
        if self.cfg.panel_port:
            from .panel.server import start_panel

            self._panel = start_panel(self)
            self.panel_url = self._panel.url if self._panel else None
        log.info("edge node for %s up: db %s, %d devices, %d tags, %d products",
                 self.cfg.store_id, self.cfg.db_path, len(self.catalogue.devices),
                 len(self.catalogue.tags), len(self.catalogue.products))
        return self

    def stop(self) -> None:
        """Finish the batch in hand, then leave; unacked messages stay with the broker."""
        if self._panel is not None:
            self._panel.stop()
        self._stop.set()
        self._writer.join(10)
        if self.sync is not None:
            self.sync.stop()
        if self.profiles is not None:
            self.profiles.stop()
        for t in self._side_threads:
            t.join(10)
        self.signage.stop()
        self.frames.shutdown()
        self.bus.stop()
        if self.writer is not None:
            self.writer.stop()
        self.db.conn.close()
        if self._lock_file is not None:
            self._lock_file.close()

    def __enter__(self) -> EdgeNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- message flow --------------------------------------------------------------
    def _on_connected(self) -> None:
        self.flood.credit(time.time() - self._last_received)

    def _on_message(self, item: Inbound) -> None:
        self._last_received = item.received_at
        # vitrine/v1/{store}/devices/{id}/{channel} or vitrine/v1/{store}/req/{id}
        parts = item.topic.split("/", 6)
        device_id = parts[4] if len(parts) in (5, 6) else ""
        if device_id:
            admitted = self.flood.admit(device_id)
            if admitted is False:  # cut off for flooding: acknowledged, counted, not stored
                self.bus.ack(item.mid, item.qos)
                return
            if admitted is None:
                self.bus.cut_off(device_id)
                self._new_cuts.put(device_id)
                self.bus.ack(item.mid, item.qos)
                return
        if parts[-1] == "frame":
            device = self.catalogue.device(device_id)
            if device is not None and device.kind == "camera":
                self.frames.submit(item, device_id)  # blocks while the lane is full
                return
            # Not a camera: no decoding, the pipeline refuses it (channel_not_allowed).
        self.queue.put(item)

    def _take_batch(self, timeout: float) -> list[Inbound] | None:
        try:
            first = self.queue.get(timeout=timeout) if timeout else self.queue.get_nowait()
        except queue.Empty:
            return None
        batch = [first]
        limit = self.cfg.batch_max
        try:
            while len(batch) < limit:
                batch.append(self.queue.get_nowait())
        except queue.Empty:
            pass
        return batch

    def _write_loop(self) -> None:
        """Run the writer; if it dies, the process dies with it.

        A writer thread that died quietly would leave an edge that is connected,
        receives, and stores nothing. Nothing of the batch in hand was
        acknowledged, so the broker redelivers it to the restarted edge (and the
        pipeline isolates any single message that caused it).
        """
        try:
            self._write_loop_inner()
        except BaseException as exc:
            if type(exc).__name__ == "WriterDied":
                log.critical("%s: exiting so that the edge restarts", exc)
            else:
                log.critical("writer thread died: exiting so that the edge restarts",
                             exc_info=True)
            logging.shutdown()
            os._exit(70)

    def _write_loop_inner(self) -> None:
        """Take batches, have them committed, then publish what they derived and ack them.

        With the writer process, up to :data:`PIPELINE_DEPTH` batches are at the
        writer at once: it starts on the next batch while this thread publishes
        and acknowledges the one it just committed. Each batch is still
        acknowledged only after its own COMMIT, and in the order received.
        """
        depth = PIPELINE_DEPTH if self.writer is not None else 1
        inflight: deque[_Job] = deque()
        retry: deque[list[Inbound]] = deque()
        while not self._stop.is_set() or inflight:
            housekeeping_due = time.time() >= self._next_housekeeping
            while (len(inflight) < depth and not self._stop.is_set()
                   and not (housekeeping_due and inflight)):
                batch = retry.popleft() if retry else self._take_batch(
                    0.0 if inflight else 0.2)
                if not batch:
                    break
                inflight.append(self._submit(batch))
                if housekeeping_due:
                    break  # housekeeping runs with nothing at the writer: let it drain
            if inflight:
                job = inflight[0]
                try:
                    result, replies = self._collect(job)
                except sqlite3.Error as exc:
                    # Disk full, I/O error: nothing was acked. Keep this batch and those sent
                    # behind it (the writer refused them) and retry them in order (device
                    # messages already committed are deduplicated on msg_id).
                    log.critical("commit failed (%s); retrying batch of %d", exc, len(job.batch))
                    retry.extendleft(reversed([j.batch for j in inflight]))
                    inflight.clear()
                    if self.writer is not None:
                        self.writer.recover()
                    time.sleep(1.0)
                    continue
                inflight.popleft()
                self._finish(job, result, replies)
            if self._commits and self.cfg.commit_notice_s > 0:
                now = time.monotonic()
                if now >= self._next_commit_notice:
                    self._next_commit_notice = now + self.cfg.commit_notice_s
                    commits, self._commits = self._commits, {}
                    self.bus.publish_commits(commits)
            if not self._new_cuts.empty():
                self._record_cuts(time.time())
            now = time.time()
            if now >= self._next_housekeeping and not inflight:
                self._next_housekeeping = now + self.cfg.stale_check_s
                self._housekeeping(now)
                self._review_cuts(now)

    def _submit(self, batch: list[Inbound]) -> _Job:
        """Hand a batch to the writer process (no wait); in-process, just hold it."""
        # Requests are answered after the device messages received with them,
        # so "I'm done" follows the taps that came before it.
        requests = [i for i in batch if is_request_topic(i.topic)]
        messages = [i for i in batch if not is_request_topic(i.topic)] if requests else batch
        if self.writer is not None:
            if messages:
                self.writer.decode_events = bool(self.listeners) or self._has_screens()
                self.writer.submit_batch(messages)
            if requests:
                self.writer.submit_requests(requests)
        return _Job(batch, messages, requests)

    def _collect(self, job: _Job) -> tuple[BatchResult | None, list[OutboundReply]]:
        """The batch's commit and its replies (raises sqlite3.Error if not committed)."""
        if self.writer is not None:
            result = self.writer.collect_batch() if job.messages else None
            return result, self.writer.collect_replies() if job.requests else []
        assert self.core is not None
        result = self.core.pipeline.process_batch(job.messages) if job.messages else None
        return result, self.core.requests.process(job.requests) if job.requests else []

    def _finish(self, job: _Job, result: BatchResult | None,
                replies: list[OutboundReply]) -> None:
        """A committed batch: publish what it derived, answer its requests, then ack it."""
        if result is not None:
            self._publish(result.events)
        if job.requests:
            self.metrics.inc("requests", len(job.requests))
        for reply in replies:
            self.bus.publish_reply(reply.topic, reply.payload)
        self.bus.ack_batch(job.batch)
        if result is not None and self.cfg.commit_notice_s > 0:
            for device_id, ids in result.done.items():
                self._commits.setdefault(device_id, []).extend(ids)

    def _record_cuts(self, now: float) -> None:
        """Record the devices just cut off for flooding (decided in the MQTT thread)."""
        while not self._new_cuts.empty():
            device_id = self._new_cuts.get_nowait()
            log.critical("device %s floods the store (> %g msg/s sustained, burst %d): cut off"
                         " at the broker for %.0f s; its queued messages are dropped",
                         device_id, self.cfg.device_rate_limit, self.cfg.device_burst,
                         self.cfg.flood_cutoff_s)
            self.metrics.inc("flood_cutoffs")
            self._write_side(
                "INSERT INTO device_cutoffs (device_id, cut_at, until, reason) VALUES (?, ?, ?,"
                " 'flood') ON CONFLICT (device_id) DO UPDATE SET cut_at = excluded.cut_at,"
                " until = excluded.until, reason = excluded.reason, dropped = 0,"
                " reinstated_at = NULL", (device_id, now, now + self.cfg.flood_cutoff_s))

    def _review_cuts(self, now: float) -> None:
        """Count what cut-off devices still had queued; reinstate those whose time is up."""
        for device_id, n in self.flood.take_dropped().items():
            self.metrics.inc("flood_dropped", n)
            self._write_side("UPDATE device_cutoffs SET dropped = dropped + ? WHERE device_id = ?",
                             (n, device_id))
        due = [r[0] for r in self.db.conn.execute(
            "SELECT device_id FROM device_cutoffs WHERE reinstated_at IS NULL AND until <= ?",
            (now,))]
        for device_id in due:
            self.bus.reinstate(device_id)
            self.flood.restore(device_id)
            self._write_side("UPDATE device_cutoffs SET reinstated_at = ? WHERE device_id = ?",
                             (now, device_id))
            log.warning("device %s reinstated at the broker after its flood cut-off", device_id)

    def _write_side(self, sql: str, args: tuple[Any, ...]) -> None:
        """A small write from this process (the writer may be elsewhere): best effort."""
        try:
            with self.db.conn:
                self.db.conn.execute(sql, args)
        except sqlite3.Error as exc:
            log.error("could not record flood cut-off: %s", exc)

    def _has_screens(self) -> bool:
        """Are there kiosks or signage to command (else event contents are not needed)?"""
        return any(d.kind in COMMAND_FAMILY for d in self.catalogue.devices.values())

    def _publish(self, events: list[tuple[str, dict[str, Any], str]]) -> None:
        by_kind: dict[str, list[str]] = {}
        for kind, event, text in events:
            by_kind.setdefault(kind, []).append(text)
            for listener in self.listeners:
                listener(kind, event)
        if self.cfg.publish_events:
            for kind, payloads in by_kind.items():
                self.bus.publish_events(kind, payloads)
            decoded = [e for e in events if e[1] is not None]
            commands = self.signage.route(commands_for(decoded, self.catalogue))
            for family, device_id, command in commands:
                self.bus.publish_command(family, device_id, command)
                for listener in self.listeners:
                    listener(f"command.{family}", {"device_id": device_id, **command})

    def send_command(self, family: str, device_id: str, command: dict[str, Any],
                     retain: bool = False) -> None:
        """Publish a command from the signage thread and tell the listeners (the panel's
        screens page, the demo's printer) what each screen and label was sent."""
        self.bus.publish_command(family, device_id, command, retain)
        for listener in self.listeners:
            try:
                listener(f"command.{family}", {"device_id": device_id, **command})
            except Exception:  # a listener's bug must not stop the screens
                log.exception("listener failed on a %s command", family)

    def request_reload(self, wait: float = 0.0) -> bool:
        """Have the writer re-read catalogue, prices and sessions (after a feed or erasure).

        With ``wait``, block until it happened (at most ``wait`` seconds).
        """
        self._reloaded.clear()
        self._reload.set()
        self._next_housekeeping = 0.0
        return self._reloaded.wait(wait) if wait else True

    def _housekeeping(self, now: float) -> None:
        reload = self._reload.is_set()
        self._reload.clear()
        if self.writer is not None:
            upkeep = self.writer.housekeeping(now, reload)
            if upkeep.catalogue_reloaded or reload:
                self.catalogue.reload()  # the parent's copy, used for commands
            else:
                self.catalogue.reload_devices()
        else:
            assert self.core is not None
            upkeep = self.core.housekeeper.run(now, reload)
        if upkeep.stale_transitions:
            self.metrics.inc("stale_transitions", upkeep.stale_transitions)
        for name, value in upkeep.gauges.items():
            self.metrics.gauge(name, value)
        if reload:
            self._reloaded.set()
