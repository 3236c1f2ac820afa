"""A QR code from the shop floor: typed by a store scanner, or photographed by the tablet.

Store scanners are keyboards: they type the code into the focused field
(``code``). A tablet without one uses its camera through a plain file input
(``<input type=file accept=image/* capture=environment>``, no script, no
camera permission prompt); the photo is decoded here with the same zbar path
the edge uses for camera frames (:func:`contract.qr_image.decode_image`), so
an unreadable or hostile image is a clear message, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Request, current_app, request

from contract.qr_image import FrameError, decode_image

from .i18n import gettext as _

#: A phone photo, downscaled or not; the app-wide limit stays at 64 KiB for forms.
MAX_PHOTO_BYTES = 8 * 1024 * 1024


F = TypeVar("F", bound=Callable[..., Any])
_ATTR = "_panel_takes_photo"


def takes_photo(view: F) -> F:
    """Mark a view that receives a photo or a camera frame (a larger body limit)."""
    setattr(view, _ATTR, True)
    return view


def photo_body_limit() -> None:
    """``before_request``, registered before CSRF protection: raise the body limit for views
    marked :func:`takes_photo`.

    It must run first: the CSRF check reads ``request.form``, which opens the input stream
    with the limit in force at that moment, so a limit raised inside the view came too late
    and every photo over the app's 64 KiB was a 413.
    """
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, _ATTR, False):
        request.max_content_length = MAX_PHOTO_BYTES + 64 * 1024


class ScanError(ValueError):
    """No code could be read (message translated, safe to show)."""


def scanned_text(request: Request) -> str:
    """The typed code, or the first QR code in the uploaded photo."""
    typed = request.form.get("code", "").strip()
    if typed:
        return typed[:2048]
    photo = request.files.get("photo")
    if photo is None or not photo.filename:
        raise ScanError(_("Scan the code or take a photo of it."))
    data = photo.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise ScanError(_("The photo is too large."))
    try:
        found = decode_image(data)
    except FrameError:
        raise ScanError(_("This file is not a PNG or JPEG photo.")) from None
    if not found:
        raise ScanError(_("No QR code found in the photo; try again closer."))
    return found[0].text[:2048]
