"""The touch kiosk (Kivy): recognise the shopper, find a product, see stock, order it.

``flow.py`` is the kiosk's logic in plain Python (tests drive it without a window);
``app.py`` is the Kivy app that shows it, one ``.kv`` file per screen under
``screens/``. The kiosk talks to the store only through ``contract/``: its device
session (requests to the edge, commands from it) and the op schemas of
``contract/kiosk_ops.py``.
"""

import os

# Kivy reads these when it is first imported, whichever module of this package does it:
# no parsing of our command line as Kivy options, logs through Python's logging (the
# tests' error collector and the demo's output see them), no log files, and the SDL2
# clipboard (not xclip/xsel, which would be one more thing to install).
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")
