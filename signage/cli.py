"""``vitrine signage``: play a screen, manage the store's playlists, render an item.

    vitrine signage play --screen ID [--zone Z] [--profile landscape|portrait]
                         [--host H] [--port P] [--store-id S] [--password-file F]
                         [--cache-dir D] [--frames-dir D] [--assets-url URL]
                         [--hold-s 15] [--window auto|on|off] [--windowed]
                         [--preview-s 2] [--stop-after-s S] [--screenshot FILE]
                         [--tls-ca CA]

With a display (``--window auto``, the default, and DISPLAY or WAYLAND_DISPLAY set)
the screen plays full screen at the display's own resolution; ``--windowed`` opens a
normal window instead.
    vitrine signage playlist check FILE
    vitrine signage playlist load FILE --db EDGE_DB
    vitrine signage playlist show FILE --screen ID [--zone Z] [--at ISO-8601]
    vitrine signage render ITEM_JSON --out FILE [--profile landscape|portrait]

The password is read from ``--password-file`` or ``VITRINE_DEVICE_PASSWORD``,
never from the command line (it would show in ``ps``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from contract.playlists import PlaylistError, load_playlists, resolve
from contract.screen_items import ItemError, item_to_dict, parse_item

from .profiles import PROFILES, profile

log = logging.getLogger("vitrine.signage")


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        return Path(args.password_file).read_text("utf-8").strip()
    password = os.environ.get("VITRINE_DEVICE_PASSWORD", "")
    if not password:
        raise SystemExit("vitrine signage play: give --password-file or "
                         "VITRINE_DEVICE_PASSWORD")
    return password


def play(args: argparse.Namespace) -> int:
    """Join the store as the screen's device and play until SIGTERM/SIGINT."""
    import ssl

    from contract.session import DeviceSession

    from .cache import ScreenCache
    from .fetch import http_fetcher
    from .player import Player
    from .preview import PreviewSink
    from .sinks import DiskSink
    from .window import WindowSink, display_available, run_window

    prof = profile(args.profile)
    cache_dir = Path(args.cache_dir or f"var/signage/{args.screen}")
    disk = DiskSink(args.frames_dir or cache_dir / "frames", args.screen)
    window = args.window == "on" or (args.window == "auto" and display_available())
    shown: DiskSink | WindowSink = WindowSink(disk) if window else disk
    tls = ssl.create_default_context(cafile=args.tls_ca) if args.tls_ca else None
    session = DeviceSession(args.host, args.port, args.store_id, args.screen, _password(args),
                            kind="signage", tls=tls)
    # The panel's live preview (signage/preview.py): a thumbnail at most every preview_s.
    sink = PreviewSink(shown, lambda p: session.publish_json("preview", p),
                       lambda: session.connected, interval_s=args.preview_s)

    def tick() -> None:
        player.tick()
        if args.preview_s > 0:
            sink.poll()

    player = Player(args.screen, args.zone, prof, ScreenCache(cache_dir), sink,
                    report=lambda record: session.publish_json("play", record),
                    fetch_asset=http_fetcher(args.assets_url) if args.assets_url else None,
                    hold_s=args.hold_s)
    session.on_command(player.on_command)
    session.start()  # does not wait: the cached playlist plays while the broker is away
    log.info("screen %s (%s, zone %s) playing; frames in %s", args.screen, prof.name,
             args.zone, disk.dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if isinstance(shown, WindowSink):
            run_window(shown, tick, prof.size, fullscreen=args.fullscreen,
                       stop_after_s=args.stop_after_s, screenshot=args.screenshot,
                       stop_requested=stop.is_set)
        else:
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            deadline = time.monotonic() + args.stop_after_s if args.stop_after_s else None
            while not stop.wait(args.tick_s):
                tick()
                if deadline is not None and time.monotonic() >= deadline:
                    break
    finally:
        player.close()
        session.close()
    return 0


def _playlist(args: argparse.Namespace,
              load_into_edge: Callable[[str, bytes], object] | None) -> int:
    try:
        playlists = load_playlists(Path(args.file).read_bytes())
    except (OSError, PlaylistError) as exc:
        problems = getattr(exc, "problems", [str(exc)])
        for p in problems:
            print(f"{args.file}: {p}", file=sys.stderr)
        return 2
    if args.action == "check":
        print(f"{args.file}: {len(playlists.playlists)} playlist(s), version "
              f"{playlists.version}")
    elif args.action == "load":
        # Writing the edge's database is the edge's job: `vitrine signage` (vitrine/cli.py)
        # hands in the edge's loader, so this package never imports the edge.
        if load_into_edge is None:
            print("vitrine signage playlist load: run it as `vitrine signage ...` on the edge "
                  "host", file=sys.stderr)
            return 2
        load_into_edge(args.db, Path(args.file).read_bytes())
        print(f"loaded version {playlists.version}; the edge delivers it to its screens")
    else:
        at = datetime.fromisoformat(args.at).timestamp() if args.at else time.time()
        chosen = resolve(playlists, args.screen, args.zone, at)
        print(json.dumps(None if chosen is None else {
            "playlist": chosen.id, "items": [item_to_dict(i) for i in chosen.items]},
            ensure_ascii=False, indent=2))
    return 0


def _render(args: argparse.Namespace) -> int:
    from .render import render

    try:
        item = parse_item(json.loads(Path(args.item).read_text("utf-8")))
    except (OSError, ValueError, ItemError) as exc:
        print(f"{args.item}: {exc}", file=sys.stderr)
        return 2
    image = render(item, profile(args.profile))
    image.save(args.out)
    print(args.out)
    return 0


def main(argv: list[str] | None = None,
         load_into_edge: Callable[[str, bytes], object] | None = None) -> int:
    """``load_into_edge(db_path, file_bytes)`` stores a playlist file in the edge's database
    (``vitrine.cli`` passes ``edge.signage_service.load_playlist_file``)."""
    p = argparse.ArgumentParser(prog="vitrine signage", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pl = sub.add_parser("play", help="run a screen")
    pl.add_argument("--screen", required=True)
    pl.add_argument("--zone")
    pl.add_argument("--profile", default="landscape", choices=sorted(PROFILES))
    pl.add_argument("--host", default="127.0.0.1")
    pl.add_argument("--port", type=int, default=1883)
    pl.add_argument("--store-id", default="store-001")
    pl.add_argument("--password-file")
    pl.add_argument("--cache-dir")
    pl.add_argument("--frames-dir")
    pl.add_argument("--assets-url", help="the edge's asset server, e.g. http://edge:8081")
    pl.add_argument("--hold-s", type=float, default=15.0)
    pl.add_argument("--tick-s", type=float, default=0.05)
    pl.add_argument("--window", default="auto", choices=["auto", "on", "off"],
                    help="auto: a window when a display exists (DISPLAY/WAYLAND_DISPLAY)")
    pl.add_argument("--windowed", dest="fullscreen", action="store_false",
                    help="a normal window instead of full screen (the default)")
    pl.add_argument("--preview-s", type=float, default=2.0,
                    help="at most one live preview per this many seconds (0: none)")
    pl.add_argument("--stop-after-s", type=float, default=None,
                    help="stop after this many seconds (tests, smoke checks)")
    pl.add_argument("--screenshot", help="with a window: save a screenshot when stopping")
    pl.add_argument("--tls-ca")
    pp = sub.add_parser("playlist", help="check, load or query a playlist file")
    pp.add_argument("action", choices=["check", "load", "show"])
    pp.add_argument("file")
    pp.add_argument("--db", default="var/edge.db")
    pp.add_argument("--screen", default="")
    pp.add_argument("--zone")
    pp.add_argument("--at")
    rp = sub.add_parser("render", help="render one item to an image file")
    rp.add_argument("item")
    rp.add_argument("--out", required=True)
    rp.add_argument("--profile", default="landscape", choices=sorted(PROFILES))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "play":
        return play(args)
    if args.command == "playlist":
        return _playlist(args, load_into_edge)
    return _render(args)
