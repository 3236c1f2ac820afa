"""How a price is written on every display, so screen, label and kiosk agree to the character.

French convention for the euro ("119,99 €", narrow no-break space before the
sign and as thousands separator); other currencies print their ISO code after
the amount. Prices are integer cents everywhere in Vitrine: no float ever
rounds a price.
"""

from __future__ import annotations

NNBSP = "\u202f"
SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$", "CHF": "CHF"}


def format_price(cents: int | None, currency: str | None) -> str:
    """``11999, "EUR"`` -> ``"119,99 €"``; empty when there is no price to show."""
    if cents is None:
        return ""
    units, rest = divmod(abs(int(cents)), 100)
    grouped = f"{units:,}".replace(",", NNBSP)
    sign = "-" if cents < 0 else ""
    symbol = SYMBOLS.get(currency or "", currency or "")
    return f"{sign}{grouped},{rest:02d}{NNBSP}{symbol}".rstrip()
