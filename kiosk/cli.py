"""``vitrine kiosk --kiosk ID``: run one kiosk, full screen, logged in as its device.

Settings are layered: defaults, then ``VITRINE_*`` environment variables
(``VITRINE_MQTT_HOST``, ``VITRINE_MQTT_PORT``, ``VITRINE_STORE_ID``,
``VITRINE_KIOSK_PASSWORD``, ``VITRINE_MQTT_CAFILE``, ``VITRINE_ASSETS_URL``,
``VITRINE_KIOSK_CACHE``), then the flags. The password is never a flag (it
would show in ``ps``): environment or ``--password-file``.

The kiosk's own devices: ``--nfc PATH`` runs the kit's nfcpy reader loop
(``usb``, ``tty:...``, or ``udp:HOST:PORT`` against nfcpy's simulated
frontend); ``--camera kivy[:INDEX]`` reads the app's QR from the camera,
``--camera dir:PATH`` from image files appearing in a directory. Product
pictures come from the edge's asset server (``--assets-url``) into
``--cache-dir``; ``--stores FILE`` names the other stores and how far they are
(the click & collect picker). Full screen and borderless unless ``--windowed``;
``--touch-keyboard`` docks Kivy's on-screen keyboard.

``--script FILE`` runs a simulated shopper (``kiosk/driver.py``) on the real
window, ``--screenshots DIR`` saves what it shows, ``--result FILE`` writes
what happened (steps, timings, cold start) as JSON; ``--exit-after-script``
leaves when the shopper is done. Tests, ``make demo`` and ``bench.kiosk`` use
these.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

T0 = time.monotonic()
log = logging.getLogger("vitrine.kiosk")


def parse_args(argv: list[str], env: dict[str, str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="vitrine kiosk", description=__doc__.split("\n\n")[0])
    p.add_argument("--kiosk", required=True, help="this kiosk's device id (= broker username)")
    p.add_argument("--host", default=env.get("VITRINE_MQTT_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env.get("VITRINE_MQTT_PORT", "1883")))
    p.add_argument("--store-id", default=env.get("VITRINE_STORE_ID", "store-001"))
    p.add_argument("--password-file", help="file holding the kiosk's broker password")
    p.add_argument("--cafile", default=env.get("VITRINE_MQTT_CAFILE"),
                   help="store CA: connect with TLS")
    p.add_argument("--protocol", default="5", choices=["5", "3.1.1"])
    p.add_argument("--zones", default="", help="comma-separated zones for the store map")
    p.add_argument("--lang", default="fr", choices=["fr", "en"])
    p.add_argument("--idle-timeout", type=float, default=60.0, help="seconds without a touch")
    p.add_argument("--windowed", action="store_true", help="not full screen")
    p.add_argument("--touch-keyboard", action="store_true",
                   help="dock Kivy's on-screen keyboard (a kiosk without a keyboard)")
    p.add_argument("--nfc", help="the kiosk's NFC reader: nfcpy path (usb, tty:..., udp:H:P)")
    p.add_argument("--camera", help="the kiosk's camera: kivy, kivy:INDEX or dir:PATH")
    p.add_argument("--assets-url", default=env.get("VITRINE_ASSETS_URL"),
                   help="the edge's asset server (product pictures), e.g. http://edge:8081")
    p.add_argument("--cache-dir", type=Path, default=Path(env.get(
        "VITRINE_KIOSK_CACHE", Path.home() / ".cache" / "vitrine-kiosk")),
        help="where product pictures are kept")
    p.add_argument("--stores", type=Path, help="other stores: JSON [{id, name, distance_km}]")
    p.add_argument("--size", default="1280x800", help="window size when windowed")
    p.add_argument("--payments", default="", help="simulated terminal script, e.g. "
                                                  "'timeout,approved' (default: approve)")
    p.add_argument("--script", type=Path, help="simulated shopper steps (JSON list)")
    p.add_argument("--screenshots", type=Path)
    p.add_argument("--result", type=Path)
    p.add_argument("--exit-after-script", action="store_true")
    p.add_argument("--no-transitions", action="store_true", help="switch screens at once")
    return p.parse_args(argv)


def _password(args: argparse.Namespace, env: dict[str, str]) -> str:
    if args.password_file:
        return Path(args.password_file).read_text().strip()
    password = env.get("VITRINE_KIOSK_PASSWORD")
    if not password:
        raise SystemExit("vitrine kiosk: set VITRINE_KIOSK_PASSWORD or --password-file")
    return password


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    args = parse_args(list(sys.argv[1:] if argv is None else argv), env)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    password = _password(args, env)

    from kivy.config import Config

    width, height = (int(v) for v in args.size.lower().split("x"))
    Config.set("graphics", "fullscreen", "0" if args.windowed else "auto")
    Config.set("graphics", "borderless", "0" if args.windowed else "1")
    if not args.windowed:  # at the screen's origin: with no window manager (a kiosk's X
        # server, Xvfb) nothing else moves a full-screen window there
        Config.set("graphics", "position", "custom")
        Config.set("graphics", "left", "0")
        Config.set("graphics", "top", "0")
    if args.touch_keyboard:
        Config.set("kivy", "keyboard_mode", "dock")
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("kivy", "exit_on_escape", "0")

    from contract.asset_fetch import http_fetcher
    from contract.commands import CustomerIdentified
    from contract.session import DeviceSession

    from .app import KioskApp
    from .camera import CameraScanner, open_camera
    from .flow import KioskFlow
    from .images import ImageCache
    from .payment import SimulatedPayments
    from .store import StoreClient
    from .stores import DirectoryError, load_directory

    try:
        directory = load_directory(args.stores)
    except DirectoryError as exc:
        raise SystemExit(f"vitrine kiosk: --stores {exc}") from None
    session = DeviceSession(args.host, args.port, args.store_id, args.kiosk, password,
                            kind="kiosk", cafile=args.cafile, protocol=args.protocol)
    script = [s for s in args.payments.split(",") if s]
    flow = KioskFlow(StoreClient(session), SimulatedPayments(script), publisher=session,
                     idle_timeout_s=args.idle_timeout, lang=args.lang,
                     store_directory=directory)
    images = ImageCache(args.cache_dir / args.kiosk / "assets",
                        http_fetcher(args.assets_url) if args.assets_url else None)
    devices: list[Any] = []
    result: dict[str, Any] = {"kiosk": args.kiosk, "ok": None}
    steps = json.loads(args.script.read_text()) if args.script else None

    def ready(app: KioskApp) -> None:
        from kivy.core.window import Window

        result["cold_start_s"] = round(time.monotonic() - T0, 3)
        result["first_frame_wall"] = time.time()
        result["window_size"] = list(Window.size)
        log.info("kiosk %s: first frame after %.2f s", args.kiosk, result["cold_start_s"])
        if args.camera:
            try:  # a kiosk without its camera still works: cards, touch
                devices.append(CameraScanner(open_camera(args.camera),
                                             flow.code_scanned).start())
            except (RuntimeError, ValueError, OSError) as exc:
                log.error("kiosk %s: camera %s unavailable: %s", args.kiosk, args.camera, exc)
        if steps is None:
            return
        from .driver import ShopperDriver

        def done(driver: ShopperDriver) -> None:
            result.update(ok=driver.error is None, error=driver.error, steps=driver.log,
                          marks=driver.marks,
                          timings=driver.timings, texts=driver.texts(),
                          screen=app.sm.current if app.sm else None)
            if args.exit_after_script:
                app.stop()

        camera_dir = args.camera[4:] if args.camera and args.camera.startswith("dir:") else None
        ShopperDriver(app, steps, screenshots=args.screenshots, on_done=done,
                      camera_dir=Path(camera_dir) if camera_dir else None).start()

    app = KioskApp(flow, store_zones=[z for z in args.zones.split(",") if z], on_ready=ready,
                   transition_s=0 if args.no_transitions else 0.15, images=images,
                   cover_screen=not args.windowed)
    if args.nfc:  # the same nfcpy reader loop as the shelf stations (contract/nfc_reader.py)
        from .card_reader import CardReader, to_main_thread  # nfcpy: only with a reader

        devices.append(CardReader(args.nfc, to_main_thread(flow.card_read)).start())

    def on_command(cmd: Any) -> None:
        if isinstance(cmd, CustomerIdentified):
            app.customer_identified(cmd.session_id)

    session.on_command(on_command)
    session.start(wait=10)
    try:
        app.run()
    finally:
        for device in devices:
            device.stop()
        result["devices"] = {type(d).__name__: d.taps if hasattr(d, "taps") else d.reader.codes
                              for d in devices}
        session.close()
        if args.result:
            args.result.write_text(json.dumps(result, default=str))
    return 0 if result.get("ok") in (None, True) else 1
