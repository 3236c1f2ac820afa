"""``python -m central``: see :mod:`central.cli`."""

import sys

from central.cli import main

sys.exit(main())
