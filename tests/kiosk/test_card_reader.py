"""The kiosk's own NFC reader: the kit's nfcpy loop over nfcpy's ``udp:`` frontend, with
nfcpy's own tag emulation playing the loyalty card, through the flow to the edge."""

from __future__ import annotations

import base64
import queue

import pytest

from contract.ndef_codec import encode_uri
from firmware_sim.tag_emulator import TagEmulator, free_udp_port
from kiosk.card_reader import CardReader
from tests.edge.conftest import GTIN
from tests.edge.store_harness import card_ndef
from tests.kiosk.devices import deliver, session_opened

pytestmark = pytest.mark.timeout(60)
CUSTOMER = "C0001234"
#: A FeliCa IDm the emulator can play (Type 3 Tag), the loyalty card's UID.
CARD_UID = "03feffe0c0ffee01"


def test_card_tap_at_the_kiosk_reader_identifies_the_shopper(flow, requester, outbox):
    path = f"udp:127.0.0.1:{free_udp_port()}"
    taps: queue.Queue[tuple[str, str | None]] = queue.Queue()
    reader = CardReader(path, lambda uid, ndef: taps.put((uid, ndef))).start()
    try:
        ndef = base64.b64decode(card_ndef(CUSTOMER, uid=CARD_UID))
        with TagEmulator(path) as emulator:
            assert emulator.present(ndef, CARD_UID, timeout=10).read_complete
            uid, ndef_b64 = taps.get(timeout=10)
            assert (uid, base64.b64decode(ndef_b64)) == (CARD_UID, ndef)
            # a product tag held to the kiosk's reader: read the same way
            assert emulator.present(encode_uri(f"https://id.gs1.org/01/{GTIN}"),
                                    "03feffe0c0ffee02", timeout=10).read_complete
            product_tap = taps.get(timeout=10)
    finally:
        reader.stop()
    assert reader.taps == 2 and reader.thread.error is None

    flow.card_read(uid, ndef_b64)  # on Kivy's main thread in the app (to_main_thread)
    customer, session_id = session_opened(deliver(requester, outbox))
    assert customer == CUSTOMER  # the edge verified the card token, bound to this UID
    requester.prefetcher.fetch_now(requester.conn, customer)
    flow.customer_identified(session_id)
    assert flow.screen == "greeting" and flow.shopper.points == 800

    flow.card_read(*product_tap)
    assert flow.screen == "product" and flow.shopper.product["gtin"] == GTIN


def test_no_reader_at_that_path_is_a_clear_error_and_the_kiosk_runs_on():
    reader = CardReader("usb:ffff:ffff", lambda uid, ndef: None).start()
    reader.thread.stop()
    assert "usb:ffff:ffff" in str(reader.thread.error)
