"""A headless screen and kiosk built on contract/ alone (docs/protocol.md section 14).

Run against a store: python docs/examples/headless_device.py HOST PORT STORE
with SCREEN_PW and KIOSK_PW in the environment (ids sign-01 and kiosk-01).
"""

import os
import sys
import time

from contract.commands import Command, ShowProduct
from contract.requests import RequestError, RequestTimeout
from contract.session import DeviceSession


def main(host: str, port: int, store: str, screen_pw: str, kiosk_pw: str,
         listen_s: float = 10.0) -> None:
    screen = DeviceSession(host, port, store, "sign-01", screen_pw, kind="signage")
    kiosk = DeviceSession(host, port, store, "kiosk-01", kiosk_pw, kind="kiosk")

    def show(cmd: Command) -> None:  # runs on the network thread: keep it short
        if isinstance(cmd, ShowProduct):
            print(f"screen: {cmd.name} {cmd.price_cents} {cmd.currency}", flush=True)

    screen.on_command(show)
    if not (screen.start(wait=10) and kiosk.start(wait=10)):
        sys.exit("broker unreachable")
    try:
        print("kiosk:", kiosk.request("ping", {}), flush=True)
        try:
            print("kiosk:", kiosk.request("product", {"gtin": "09506000134352"}), flush=True)
        except RequestError as exc:  # a structured answer, e.g. not_found
            print(f"kiosk: edge said {exc.code}: {exc.message}", flush=True)
        time.sleep(listen_s)  # meanwhile the screen shows what shoppers tap in its zone
    except RequestTimeout as exc:
        print(f"kiosk: no answer; retry with request_id={exc.request_id}", flush=True)
    finally:
        kiosk.close()
        screen.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], os.environ["SCREEN_PW"],
         os.environ["KIOSK_PW"])
