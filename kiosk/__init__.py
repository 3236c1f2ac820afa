"""The touch kiosk (Kivy): recognise the shopper, find a product, see stock, order it.

``flow.py`` is the kiosk's logic in plain Python (tests drive it without a window);
``app.py`` is the Kivy app that shows it, one ``.kv`` file per screen under
``screens/``. The kiosk talks to the store only through ``contract/``: its device
session (requests to the edge, commands from it) and the op schemas of
``contract/kiosk_ops.py``.
"""
