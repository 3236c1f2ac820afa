"""The real QR path: rendered label pixels -> pyzbar at the station -> edge interest."""

from __future__ import annotations

from firmware_sim.device import DeviceClient
from firmware_sim.frames import ean_image, qr_frame, shelf_frame
from firmware_sim.qr_station import QrStation

from .conftest import GTIN, GTIN_2


def test_station_decodes_labels_and_the_edge_enriches_them(edge, observer, broker):
    client = DeviceClient("qr-01", "qr_scanner", "qr-01-pw", store_id=broker.store_id,
                          port=broker.port)
    client.start(wait=5)
    station = QrStation(client)
    try:
        held = qr_frame(f"https://id.gs1.org/01/{GTIN}", rotate_deg=20, noise=0.04, seed=1)
        assert station.feed(held) == [f"]Q1https://id.gs1.org/01/{GTIN}"]
        assert station.feed(held) == []  # same code still in view: reported once
        assert station.feed(shelf_frame(ean_image(GTIN_2[1:]), seed=2)) == [f"]E0{GTIN_2[1:]}"]
        assert station.feed(b"not an image") == [] and station.unreadable == 1
        events = observer.wait_for("interest", 2, timeout=10)
    finally:
        client.close()
    assert [e["gtin"] for e in events] == [GTIN, GTIN_2]
    assert {e["source"] for e in events} == {"qr"} and events[0]["zone"] == "kitchen"
