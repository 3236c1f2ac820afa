"""A whole store's simulated devices and shoppers, driven from one scheduler thread.

:class:`Fleet` starts one :class:`~firmware_sim.device.DeviceClient` per NFC
reader, QR scanner and camera of a layout (kiosks and signage are separate
apps), each with its own broker credentials, then runs shoppers
(:mod:`firmware_sim.shoppers`) and faults (:mod:`firmware_sim.faults`) against
them.

Everything that happens is scheduled on a single heap and executed by the
thread calling :meth:`Fleet.run`, in due-time order: that single ordering is
what makes a seeded run reproducible (the same shoppers, taps and faults), even
though network timing is not. ``speed`` compresses simulated shopper time
(dwell, walking); network outages are real time, since they exercise real
reconnects. ``rate`` (device events per real second: taps, scans,
identifications; heartbeats, duplicates and garbage come on top) sets the
shopper arrival rate from the mean number of events per journey; without it a
shopper arrives every 30 simulated seconds (``arrival_s``). Each thing that
happens is reported as one readable line to ``on_story``, and each device read a
shopper made as a :class:`Read` to ``on_read``: the ground truth of who tapped
what, which ``bench.attribution`` compares with the profiles central builds.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.layout import Layout
from contract.ndef_codec import encode_uri, encode_uris
from contract.nfc_tags import TagRead
from contract.requests import RequestError, RequestTimeout
from firmware_sim.device import DeviceClient
from firmware_sim.faults import FaultConfig, FaultInjector
from firmware_sim.shoppers import DEVICE_ACTIONS, KIOSK_ACTIONS, Shopper, ShopperPlanner, Step

log = logging.getLogger("firmware_sim.fleet")

#: Device kinds this simulator plays; kiosks and signage are other apps.
SIMULATED_KINDS = ("nfc_reader", "qr_scanner", "camera")
#: Simulated seconds a kiosk app waits, after its shopper walked away, before it ends
#: the session itself (``session_end`` with reason ``timeout``).
KIOSK_TIMEOUT_S = 30.0
#: Where a loyalty card's NDEF URI record points; the token is the last path segment.
LOYALTY_URL = "https://loyalty.vitrine.example/t/"
#: Simulated seconds between shopper arrivals when no ``rate`` is asked for.
DEFAULT_ARRIVAL_S = 30.0


@dataclass(frozen=True)
class Read:
    """One message a shopper caused: the truth the edge and central must not get wrong."""

    shopper_id: str
    #: The loyalty member behind the shopper; None for an anonymous shopper.
    customer_id: str | None
    device_id: str
    msg_id: str
    #: Product picked up; None for an identification.
    gtin: str | None
    action: str
    #: The read carries the shopper's identity (phone tap, app QR naming the product).
    with_app: bool = False


class _Recorder:
    """A device stand-in for a :class:`QrStation` that remembers the msg_ids it published."""

    def __init__(self, device: DeviceClient) -> None:
        self.device = device
        self.sent: list[str] = []

    def scan(self, text: str, symbology: str | None = None) -> str:
        msg_id = self.device.scan(text)
        self.sent.append(msg_id)
        return msg_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.device, name)


def load_creds(path: str | Path) -> dict[str, str]:
    """Read a ``{device_id: password}`` JSON file (as written at provisioning time)."""
    data = json.loads(Path(path).read_text("utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: expected a JSON object of device_id -> password")
    return data


class Fleet:
    """Simulated devices plus shoppers plus faults for one store layout."""

    def __init__(
        self,
        layout: Layout,
        *,
        creds: Mapping[str, str] | str | Path,
        loyalty_key: bytes,
        host: str = "127.0.0.1",
        port: int = 1883,
        store_id: str | None = None,
        speed: float = 1.0,
        rate: float | None = None,
        seed: int = 0,
        faults: FaultConfig | None = None,
        loyalty_key_id: str = "k1",
        on_story: Callable[[str], None] | None = None,
        device_options: Mapping[str, Any] | None = None,
        on_read: Callable[[Read], None] | None = None,
        identified_share: float | None = None,
        arrival_s: float = DEFAULT_ARRIVAL_S,
        kiosks: bool = False,
    ) -> None:
        """``store_id`` overrides the layout's (tests run the demo layout on their own store);
        ``device_options`` are extra :class:`DeviceClient` keyword arguments (heartbeat_s,
        reconnect_min_s, cafile...). ``kiosks``: also play the layout's kiosks (their
        scanner and their ``session_end`` requests), used by one shopper at a time."""
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.layout = layout
        self.store_id = store_id or layout.store_id
        self.speed = speed
        self.rate = rate
        self.seed = seed
        self.faults = FaultInjector(faults or FaultConfig(), loyalty_key, seed=seed,
                                    key_id=loyalty_key_id)
        self.on_story = on_story or (lambda line: log.info("%s", line))
        self.on_read = on_read
        self.arrival_s = arrival_s
        self.stats: Counter[str] = Counter()
        self._in_store = 0
        #: Kiosk id -> the shopper using it (one at a time), until done or timed out.
        self._kiosk_user: dict[str, str] = {}
        creds = load_creds(creds) if isinstance(creds, (str, Path)) else dict(creds)
        self.devices: dict[str, DeviceClient] = {}
        for spec in layout.devices:
            if spec.kind not in SIMULATED_KINDS and not (kiosks and spec.kind == "kiosk"):
                continue
            if spec.id not in creds:
                log.warning("no credentials for %s: not simulated", spec.id)
                continue
            self.devices[spec.id] = DeviceClient(
                spec.id, spec.kind, creds[spec.id], store_id=self.store_id, host=host,
                port=port, clock_skew_s=self.faults.clock_skew(),
                duplicate_rate=self.faults.config.duplicate_rate, seed=f"{seed}:{spec.id}",
                **dict(device_options or {}))
        self.planner = (ShopperPlanner(layout, self.devices) if identified_share is None else
                        ShopperPlanner(layout, self.devices, identified_share=identified_share))
        #: For ``rate``: arrivals per second = rate / device events per shopper.
        self._events_per_shopper = self.planner.expected_events() if rate else 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._shopper_rng = random.Random(f"{seed}:arrivals")
        self._shoppers = itertools.count(1)
        self._frames: Any = None  # firmware_sim.frames, imported on first camera use
        #: device id -> (QrStation (pyzbar decode), the recorder it publishes through)
        self._qr_stations: dict[str, tuple[Any, _Recorder]] = {}

    # -- lifecycle ------------------------------------------------------------
    def start(self, wait: float = 10.0) -> int:
        """Connect every device; return how many connected within ``wait`` seconds."""
        for dev in self.devices.values():
            dev.start()
            if dev.clock_skew_s:
                self._story(f"fault: {dev.device_id} clock is off by {dev.clock_skew_s:+.0f}s")
        deadline = time.monotonic() + wait
        return sum(d.wait_connected(max(0.0, deadline - time.monotonic()))
                   for d in self.devices.values())

    def run(self, duration: float) -> Counter[str]:
        """Simulate for ``duration`` real seconds (or until :meth:`stop`); return the stats."""
        self._t0 = time.monotonic()
        self._stop.clear()
        self._schedule(0.0, self._arrival)
        for dev in self.devices.values():
            self._schedule_disconnect(dev)
        end = self._t0 + duration
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= end:
                break
            if self._heap and self._heap[0][0] <= now:
                _, _, action = heapq.heappop(self._heap)
                action()
                continue
            next_due = self._heap[0][0] if self._heap else end
            self._stop.wait(min(1.0, max(0.0, min(next_due, end) - now)))
        self._heap.clear()
        self.stats["fault.duplicate"] = sum(d.stats.duplicates for d in self.devices.values())
        self.stats["device.dropped_oldest"] = sum(d.stats.dropped_oldest
                                                  for d in self.devices.values())
        return self.stats

    def stop(self) -> None:
        self._stop.set()

    def close(self, flush_timeout: float = 5.0) -> bool:
        """Flush and disconnect every device; True if nothing was left unacknowledged."""
        self.stop()
        # One shared deadline: devices drain in parallel, not 5 s each in turn.
        deadline = time.monotonic() + flush_timeout
        flushed = [d.flush(max(0.0, deadline - time.monotonic())) for d in self.devices.values()]
        for d in self.devices.values():
            d.close(flush_timeout=0.0)
        return all(flushed)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scheduling -----------------------------------------------------------
    def _story(self, text: str) -> None:
        self.on_story(f"{time.monotonic() - self._t0:7.1f}s  {text}")

    def _schedule(self, delay_real_s: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay_real_s, next(self._seq), action))

    def _arrival(self) -> None:
        index = next(self._shoppers)
        rng = random.Random(f"{self.seed}:shopper:{index}")
        shopper = self.planner.new_shopper(index, rng)
        self.stats["shoppers"] += 1
        self._advance(shopper, self.planner.journey(shopper, rng))
        if self.rate:
            mean_gap = self._events_per_shopper / self.rate
        else:
            mean_gap = self.arrival_s / self.speed
        self._schedule(self._shopper_rng.expovariate(1.0 / mean_gap), self._arrival)

    def _advance(self, shopper: Shopper, steps: Iterator[Step]) -> None:
        step = next(steps, None)
        if step is None:
            return

        def run_step() -> None:
            self._do(shopper, step)
            self._advance(shopper, steps)

        self._schedule(step.after_s / self.speed, run_step)

    def _schedule_disconnect(self, dev: DeviceClient) -> None:
        delay = self.faults.next_disconnect_in()
        if delay is None:
            return

        def cut() -> None:
            offline = self.faults.offline_duration()
            if dev.drop_connection(offline):
                self.stats["fault.disconnect"] += 1
                self._story(f"fault: {dev.device_id} loses its network for {offline:.1f}s")
            self._schedule_disconnect(dev)

        self._schedule(delay, cut)

    # -- what shoppers do -----------------------------------------------------
    def _zone_name(self, zone: str | None) -> str:
        return next((z.name for z in self.layout.zones if z.id == zone), zone or "the store")

    def _do(self, shopper: Shopper, step: Step) -> None:
        who = shopper.name
        if step.action == "enter":
            how = f", loyalty member using the {shopper.method}" if shopper.method else ""
            self._in_store += 1
            self.stats["in_store_max"] = max(self.stats["in_store_max"], self._in_store)
            self._story(f"{who} enters{how}")
        elif step.action == "zone":
            self._story(f"{who} walks to {self._zone_name(step.zone)}")
        elif step.action == "leave":
            self._in_store -= 1
            self._story(f"{who} leaves")
        elif step.action in KIOSK_ACTIONS:
            dev = self.devices[step.device_id or ""]
            sent = self._kiosk(shopper, dev, step)
            if self.on_read is not None:
                action = "identify" if step.action == "kiosk_identify" else "scan"
                for msg_id in sent:
                    self.on_read(Read(shopper.id, shopper.customer.id if shopper.customer
                                      else None, dev.device_id, msg_id,
                                      step.product.gtin if step.product else None, action))
        elif step.action in DEVICE_ACTIONS:
            dev = self.devices[step.device_id or ""]
            if step.action == "tap":
                sent = self._tap(shopper, dev, step)
            elif step.action == "scan":
                sent = self._scan(shopper, dev, step)
            else:
                sent = [self._identify(shopper, dev)]
            if self.on_read is not None:
                gtin = step.product.gtin if step.product else None
                for msg_id in sent:
                    self.on_read(Read(shopper.id, shopper.customer.id if shopper.customer
                                      else None, dev.device_id, msg_id, gtin, step.action,
                                      step.with_app))
            self.stats[step.action] += 1
            if self.faults.garbage():
                kind = dev.inject_garbage()
                self.stats["fault.garbage"] += 1
                self._story(f"fault: {dev.device_id} firmware glitch, sends garbage ({kind})")

    def _tap(self, shopper: Shopper, dev: DeviceClient, step: Step) -> list[str]:
        assert step.tag is not None and step.product is not None
        who = shopper.name
        if step.with_app and shopper.customer is not None:
            # The phone (NFC card emulation, random UID) presents the product the app just
            # scanned and a fresh app token: one read that says who picked what up.
            token = self.faults.app_token(shopper.customer.id, time.time())
            ndef = encode_uris(self.layout.digital_link(step.tag.gtin), LOYALTY_URL + token.value)
            uid = "08" + random.Random(f"{self.seed}:phone:{self.stats['tap']}").randbytes(3).hex()
            msg_id = dev.tap(TagRead(uid=uid, ndef=ndef, tag_type="Type4Tag"))
            fault = f"  [fault: {token.fault} token]" if token.fault else ""
            self._story(f"{who} taps the phone on {dev.device_id} to save {step.product.name}"
                        f"{fault}")
            return [msg_id]
        ndef = encode_uri(self.layout.digital_link(step.tag.gtin)) if step.tag.ndef else None
        msg_id = dev.tap(TagRead(uid=step.tag.uid, ndef=ndef, tag_type="Type2Tag"))
        blank = "" if ndef else " (tag without NDEF)"
        self._story(f"{who} taps {step.product.name} ({step.product.brand}) "
                    f"on {dev.device_id}{blank}")
        return [msg_id]

    def _scan(self, shopper: Shopper, dev: DeviceClient, step: Step) -> list[str]:
        assert step.product is not None
        who = shopper.name
        gtin = step.product.gtin
        link = self.layout.digital_link(gtin)
        if step.with_app and shopper.customer is not None:
            # Scanned with the app: its QR code carries a token signed for this product.
            token = self.faults.app_token(shopper.customer.id, time.time(), gtin=gtin)
            if dev.kind == "camera":
                msg_id = self._show_to_camera(dev, token.value)
            else:
                msg_id = dev.scan("]Q1" + token.value)
            fault = f"  [fault: {token.fault} token]" if token.fault else ""
            self._story(f"{who} saves {step.product.name} with the app on {dev.device_id}{fault}")
            return [msg_id]
        if dev.kind == "camera":
            msg_id = self._show_to_camera(dev, link)
            self._story(f"{who} holds the {step.product.name} label up to {dev.device_id}")
            return [msg_id]
        label = step.label or "qr"
        if label in ("qr", "ean"):
            # The real scanner path: pixels rendered, decoded by pyzbar, published.
            frames = self._frames_module()
            rng = random.Random(f"{self.seed}:scan:{self.stats['scan_frames']}")
            tile = (frames.qr_image(link, scale=3) if label == "qr"
                    else frames.ean_image(gtin[1:]))
            img = frames.shelf_frame(tile, rotate_deg=rng.uniform(-8, 8),
                                     noise=rng.uniform(0.0, 0.03), seed=rng.randrange(2**31))
            self.stats["scan_frames"] += 1
            entry = self._qr_stations.get(dev.device_id)
            if entry is None:
                from firmware_sim.qr_station import QrStation

                recorder = _Recorder(dev)
                entry = self._qr_stations[dev.device_id] = (QrStation(recorder, dedupe_s=0),
                                                             recorder)
            station, recorder = entry
            recorder.sent.clear()
            if not station.feed(img):
                self._story(f"{who} scans {step.product.name} on {dev.device_id}: unreadable")
                return []
            sent = list(recorder.sent)
        else:  # GS1 QR with FNC1: our renderer cannot set the FNC1 mode, send as read
            sent = [dev.scan(f"]Q301{gtin}")]
        label = {"qr": "QR label", "gs1qr": "GS1 QR label", "ean": "barcode"}[step.label or "qr"]
        self._story(f"{who} scans the {label} of {step.product.name} on {dev.device_id}")
        return sent

    def _kiosk(self, shopper: Shopper, dev: DeviceClient, step: Step) -> list[str]:
        """A kiosk used by one shopper at a time: identify, check products, leave."""
        kiosk, who = dev.device_id, shopper.name
        user = self._kiosk_user.get(kiosk)
        if step.action == "kiosk_identify":
            if user is not None:  # someone is using it: walk on
                self.stats["kiosk_busy"] += 1
                self._story(f"{who} finds {kiosk} busy and walks on")
                return []
            assert shopper.customer is not None
            self._kiosk_user[kiosk] = shopper.id
            token = self.faults.app_token(shopper.customer.id, time.time())
            self.stats["kiosk_sessions"] += 1
            self._story(f"{who} shows the app QR code to {kiosk}")
            return [dev.scan("]Q1" + token.value)]
        if user != shopper.id:
            return []  # they never got the kiosk
        if step.action == "kiosk_scan":
            assert step.product is not None
            self.stats["kiosk_scan"] += 1
            self._story(f"{who} checks {step.product.name} on {kiosk}")
            return [dev.scan(self.layout.digital_link(step.product.gtin))]
        if step.action == "kiosk_done":
            self._end_kiosk_session(dev, shopper.id, "done")
            self._story(f"{who} presses \"I'm done\" on {kiosk}")
            return []
        self._story(f"{who} walks away from {kiosk}")  # the kiosk app times out later
        self._schedule(KIOSK_TIMEOUT_S / self.speed,
                       lambda: self._end_kiosk_session(dev, shopper.id, "timeout"))
        return []

    def _end_kiosk_session(self, dev: DeviceClient, shopper_id: str, reason: str) -> None:
        """The kiosk app's ``session_end``; the kiosk is free once the edge committed it."""
        if self._kiosk_user.get(dev.device_id) != shopper_id:
            return
        try:
            dev.request("session_end", {"reason": reason})
            self.stats[f"kiosk_{reason}"] += 1
        except (RequestError, RequestTimeout) as exc:
            # The next shopper identifies before using it, which ends this session anyway.
            self.stats["kiosk_end_failed"] += 1
            log.warning("%s: session_end failed: %s", dev.device_id, exc)
        del self._kiosk_user[dev.device_id]

    def _identify(self, shopper: Shopper, dev: DeviceClient) -> str:
        customer = shopper.customer
        assert customer is not None
        now = time.time()
        if shopper.method == "card":
            token = self.faults.card_token(customer.id, customer.card_uid, now)
            read = TagRead(uid=token.card_uid or customer.card_uid,
                           ndef=encode_uri(LOYALTY_URL + token.value), tag_type="Type2Tag")
            msg_id = dev.tap(read)
            what = f"taps loyalty card on {dev.device_id}"
        else:
            token = self.faults.app_token(customer.id, now)
            if dev.kind == "camera":
                msg_id = self._show_to_camera(dev, token.value)
            else:
                msg_id = dev.scan("]Q1" + token.value)
            what = f"shows the app QR code to {dev.device_id}"
        if token.fault:
            self.stats[f"fault.token_{token.fault}"] += 1
            what += f"  [fault: {token.fault} token]"
        self._story(f"{shopper.name} {what}")
        return msg_id

    def _frames_module(self) -> Any:
        if self._frames is None:
            from firmware_sim import frames  # Pillow + segno: only needed for pixels

            self._frames = frames
        return self._frames

    def _show_to_camera(self, dev: DeviceClient, text: str) -> str:
        self._frames_module()
        rng = random.Random(f"{self.seed}:frame:{self.stats['frame']}")
        img = self._frames.qr_frame(text, scale=3, rotate_deg=rng.uniform(-12, 12),
                                    noise=rng.uniform(0.0, 0.05), seed=rng.randrange(2**31))
        msg_id = dev.frame(self._frames.encode_frame(img, "png"), "png")
        self.stats["frame"] += 1
        return msg_id
