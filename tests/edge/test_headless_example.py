"""The headless device example in docs/protocol.md section 14 is real and runs."""

from __future__ import annotations

import base64
import re
import runpy
import threading
from pathlib import Path

from contract.ndef_codec import encode_uri
from edge.node import EdgeNode

from .conftest import Device, wait_until

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "headless_device.py"


def test_the_listing_in_the_protocol_is_the_example_file():
    protocol = (REPO / "docs" / "protocol.md").read_text("utf-8")
    m = re.search(r"<!-- example: docs/examples/headless_device.py -->\n```python\n(.*?)\n```",
                  protocol, re.DOTALL)
    assert m, "docs/protocol.md section 14 lost its listing"
    assert m.group(1) + "\n" == EXAMPLE.read_text("utf-8")


def test_the_example_shows_products_and_gets_answers(broker, edge_config, capsys):
    main = runpy.run_path(str(EXAMPLE))["main"]
    with EdgeNode(edge_config):
        t = threading.Thread(target=main, args=("127.0.0.1", broker.port, broker.store_id,
                                                "sign-01-pw", "kiosk-01-pw", 3.0))
        t.start()
        nfc = Device(broker, "nfc-01")  # shoes, the screen's zone
        seen: list[str] = []

        def shown() -> bool:
            # a reader taps (it may publish only on its kind's channels: nfc)
            nfc.send("nfc", {"uid": "04a1b2c3d4e5f7", "ndef": base64.b64encode(
                encode_uri("https://id.gs1.org/01/09506000134352")).decode()})
            seen.append(capsys.readouterr().out)
            return any("screen: Trail shoe 8999 EUR" in s for s in seen)

        wait_until(shown, timeout=3.0, interval=0.3)
        nfc.close()
        t.join(15)
        assert not t.is_alive()
    out = "".join(seen) + capsys.readouterr().out
    assert "'device_id': 'kiosk-01'" in out
    assert "'name': 'Trail shoe'" in out and "'price_cents': 8999" in out
