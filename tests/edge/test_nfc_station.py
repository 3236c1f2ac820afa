"""The real NFC path: nfcpy tag stack (udp frontend) -> station -> Mosquitto -> edge."""

from __future__ import annotations

from contract.ndef_codec import encode_uri
from firmware_sim.device import DeviceClient
from firmware_sim.nfc_station import NfcStation
from firmware_sim.tag_emulator import TagEmulator, free_udp_port

from .conftest import GTIN


def test_tag_read_through_nfcpy_reaches_the_edge_as_interest(edge, observer, broker):
    path = f"udp:127.0.0.1:{free_udp_port()}"
    client = DeviceClient("nfc-01", "nfc_reader", "nfc-01-pw", store_id=broker.store_id,
                          port=broker.port)
    station = NfcStation(path, client, targets=("212F",), poll_iterations=1).start()
    try:
        with TagEmulator(path) as emulator:
            shown = emulator.present(encode_uri(f"https://id.gs1.org/01/{GTIN}"),
                                     "02fe0102030405aa", timeout=10)
            assert shown.activated
            (ev,) = observer.wait_for("interest", timeout=15)
    finally:
        station.stop()
    assert ev["gtin"] == GTIN and ev["device_id"] == "nfc-01" and ev["source"] == "nfc"
    assert ev["zone"] == "shoes"
    assert station.published == 1
