"""``python -m edge``: run the store's edge node (same as ``vitrine edge``)."""

from .cli import main

raise SystemExit(main())
