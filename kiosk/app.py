"""The Kivy app: shows :class:`kiosk.flow.KioskFlow` on eight screens, full screen.

State the ``.kv`` files bind to is kept as App properties (``lang``,
``cart_count``, ``message_text``...), copied from the flow after every change;
the screens rebuild their lists in :meth:`KioskScreen.refresh`. Commands from
the edge (``customer_identified``) arrive on the network thread and are handed
to Kivy's main thread with ``Clock.schedule_once``: the flow only ever runs on
one thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.screenmanager import FadeTransition, NoTransition, ScreenManager

from .flow import SCREENS, KioskFlow
from .i18n import money, tr
from .images import ImageCache
from .screens import SCREEN_CLASSES, KioskScreen, load_kv

log = logging.getLogger("vitrine.kiosk.app")


class KioskApp(App):
    title = "Vitrine kiosk"
    flow: KioskFlow = ObjectProperty(None)
    lang = StringProperty("fr")
    screen_name = StringProperty("attract")
    cart_count = NumericProperty(0)
    cart_total_text = StringProperty("")
    message_text = StringProperty("")
    message_error = BooleanProperty(False)
    identified = BooleanProperty(False)
    consent = BooleanProperty(False)
    use_points = BooleanProperty(False)
    fulfilment = StringProperty("click_and_collect")
    collect_elsewhere = BooleanProperty(False)
    store_zones = ListProperty([])

    def __init__(self, flow: KioskFlow, *, store_zones: list[str] | None = None,
                 on_ready: Callable[[KioskApp], None] | None = None,
                 transition_s: float = 0.15, images: ImageCache | None = None,
                 cover_screen: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cover_screen = cover_screen
        self.flow = flow
        self.images = images
        if images is not None:  # a picture arrived (worker thread): show it on main
            images.on_ready = lambda asset_id: Clock.schedule_once(
                lambda _dt: self._image_ready(asset_id), 0)
        self.store_zones = store_zones or []
        self.on_ready = on_ready
        self.transition_s = transition_s
        self._refreshed_lang = ""
        self.sm: ScreenManager | None = None
        self.first_frame_at: float | None = None
        #: The simulated shopper driving this window, if any (kiosk/driver.py).
        self.driver: Any = None

    # -- kv helpers -------------------------------------------------------------------
    def t(self, key: str, lang: str, **params: Any) -> str:
        """Translation for kv rules; ``lang`` is passed so the rule re-evaluates on a switch."""
        return tr(key, lang, **params)

    # -- building -------------------------------------------------------------------------
    def build(self) -> ScreenManager:
        load_kv()
        sm = ScreenManager(transition=FadeTransition(duration=self.transition_s)
                           if self.transition_s > 0 else NoTransition())
        for name in SCREENS:
            screen = SCREEN_CLASSES[name](name=name)
            screen.flow = self.flow
            screen.images = self.images
            sm.add_widget(screen)
        self.sm = sm
        self.flow.on_change(self._on_flow_change)
        self._on_flow_change(self.flow)
        Clock.schedule_interval(lambda _dt: self.flow.tick(), 1.0)
        Clock.schedule_interval(lambda _dt: self._attract_step(), 4.0)
        Clock.schedule_once(self._cover if self.cover_screen else self._first_frame, 0)
        return sm

    def _cover(self, _dt: float) -> None:
        """Cover the whole screen, with or without a window manager.

        Kivy's ``fullscreen = auto`` sizes its GL view to the desktop but asks a window
        manager to make the window itself full screen; a kiosk's bare X server (and
        Xvfb) has none, so the window would keep its configured size and show part of
        the view. So: a borderless window of the desktop's size at the origin (set a
        frame later: leaving fullscreen restores the configured size first).
        """
        from kivy.core.window import Window

        desktop = tuple(Window.size)
        Window.fullscreen = False
        Window.borderless = True

        def place(_dt: float) -> None:
            Window.size = desktop
            Window.left, Window.top = 0, 0
            Clock.schedule_once(self._first_frame, 0)

        Clock.schedule_once(place, 0.05)

    def _first_frame(self, _dt: float) -> None:
        import time

        self.first_frame_at = time.monotonic()
        if self.on_ready is not None:
            self.on_ready(self)

    def _attract_step(self) -> None:
        if self.sm is not None and self.sm.current == "attract":
            screen = self.sm.get_screen("attract")
            screen.next_promo()  # type: ignore[attr-defined]

    # -- flow -> properties -> screens ------------------------------------------------------
    def _on_flow_change(self, flow: KioskFlow) -> None:
        s = flow.shopper
        self.lang = flow.lang
        self.cart_count = flow.cart_count
        self.cart_total_text = money(flow.pay_estimate_cents, flow.lang)
        self.identified = s.identified
        self.consent = s.consent
        self.use_points = s.use_points
        self.fulfilment = s.fulfilment
        self.collect_elsewhere = s.collect_store is not None
        msg = flow.message
        self.message_text = tr(msg.key, flow.lang, **msg.params) if msg else ""
        self.message_error = bool(msg and msg.error)
        if self.sm is None:
            return
        # The screen on show is rebuilt on every change (a keystroke must stay cheap);
        # all of them when the shopper leaves (nothing of theirs may linger on a hidden
        # screen) or the language changes.
        wipe = flow.screen == "attract" or flow.lang != self._refreshed_lang
        self._refreshed_lang = flow.lang
        for name in SCREENS if wipe else (flow.screen,):
            screen = self.sm.get_screen(name)
            assert isinstance(screen, KioskScreen)
            screen.refresh(flow)
        if self.sm.current != flow.screen:
            self.sm.current = flow.screen
        self.screen_name = flow.screen
        if s.profile_pending:  # central's answer is on its way to the edge
            Clock.schedule_once(lambda _dt: flow.refresh_profile(), 0.05)

    def _image_ready(self, asset_id: str) -> None:
        """A product picture reached the disk: show it if its product is still on screen."""
        if self.sm is None:
            return
        screen = self.sm.get_screen("product")
        if getattr(screen, "image_id", None) == asset_id:
            assert isinstance(screen, KioskScreen)
            screen.refresh(self.flow)

    # -- touches that need more than one flow call -------------------------------------------
    def on_query(self, text: str) -> None:
        if text != self.flow.shopper.query:
            self.flow.type_query(text)

    def show_cart(self) -> None:
        self.flow.show_cart()

    def checkout(self) -> None:
        self.flow.checkout()

    # -- from the network thread -------------------------------------------------------------
    def customer_identified(self, session_id: str) -> None:
        """Thread-safe: called by the device session's command handler."""
        Clock.schedule_once(lambda _dt: self.flow.customer_identified(session_id), 0)
