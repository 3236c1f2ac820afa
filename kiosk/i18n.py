"""What the kiosk says, in French and English (switchable on screen at any time).

One table, keyed by message id; a missing translation is a test failure
(``tests/kiosk/test_flow.py``), never an English word on a French screen.
"""

from __future__ import annotations

LANGUAGES = ("fr", "en")

STRINGS: dict[str, dict[str, str]] = {
    "attract_title": {"fr": "Trouvez tout, ici ou ailleurs",
                      "en": "Find anything, here or elsewhere"},
    "attract_hint": {"fr": "Touchez l'écran ou posez votre carte",
                     "en": "Touch the screen or tap your card"},
    "attract_promo_1": {"fr": "Commandez en rayon, retirez en magasin",
                        "en": "Order at the shelf, collect in store"},
    "attract_promo_2": {"fr": "Vos points fidélité, en magasin comme en ligne",
                        "en": "Your loyalty points, in store and online"},
    "attract_promo_3": {"fr": "Le stock de tous nos magasins en un coup d'œil",
                        "en": "Stock in every store at a glance"},
    "hello": {"fr": "Bonjour !", "en": "Hello!"},
    "points": {"fr": "{points} points fidélité", "en": "{points} loyalty points"},
    "points_unknown": {"fr": "Points indisponibles pour l'instant",
                       "en": "Points unavailable right now"},
    "recent": {"fr": "Vus récemment", "en": "Recently viewed"},
    "wishlist": {"fr": "Ma liste d'envies", "en": "My wish-list"},
    "consent_ask": {"fr": "Afficher mon historique sur cet écran ?",
                    "en": "Show my history on this screen?"},
    "consent_yes": {"fr": "Oui, afficher", "en": "Yes, show it"},
    "consent_no": {"fr": "Non, masquer", "en": "No, hide it"},
    "search": {"fr": "Rechercher", "en": "Search"},
    "search_hint": {"fr": "Tapez un produit, une marque…", "en": "Type a product, a brand…"},
    "no_results": {"fr": "Aucun résultat", "en": "No results"},
    "categories": {"fr": "Rayons", "en": "Departments"},
    "price": {"fr": "{price}", "en": "{price}"},
    "promo_was": {"fr": "au lieu de {price}", "en": "was {price}"},
    "where": {"fr": "Ici : rayon {zone}, étagère {shelf}",
              "en": "Here: aisle {zone}, shelf {shelf}"},
    "not_here": {"fr": "Pas en rayon ici", "en": "Not on a shelf here"},
    "stock_here": {"fr": "En stock ici : {n}", "en": "In stock here: {n}"},
    "stock_other": {"fr": "Autres magasins : {n}", "en": "Other stores: {n}"},
    "stock_web": {"fr": "Entrepôt web : {n}", "en": "Web warehouse: {n}"},
    "add_to_cart": {"fr": "Ajouter au panier", "en": "Add to cart"},
    "add_to_wishlist": {"fr": "Ajouter à ma liste", "en": "Add to wish-list"},
    "cart": {"fr": "Panier ({n})", "en": "Cart ({n})"},
    "total": {"fr": "Total : {price}", "en": "Total: {price}"},
    "collect_here": {"fr": "Retrait ici", "en": "Collect here"},
    "home_delivery": {"fr": "Livraison à domicile", "en": "Home delivery"},
    "use_points": {"fr": "Utiliser mes points", "en": "Use my points"},
    "pay": {"fr": "Payer {price}", "en": "Pay {price}"},
    "back": {"fr": "Retour", "en": "Back"},
    "done": {"fr": "J'ai terminé", "en": "I'm done"},
    "order_placed": {"fr": "Commande confirmée", "en": "Order confirmed"},
    "pickup_code": {"fr": "Code de retrait : {code}", "en": "Pickup code: {code}"},
    "points_earned": {"fr": "+{points} points", "en": "+{points} points"},
    "store_unreachable": {
        "fr": "Le magasin ne répond pas. Aucun paiement n'a été pris. Réessayez dans un instant.",
        "en": "The store is not answering. No payment was taken. Please try again shortly."},
    "payment_declined": {"fr": "Paiement refusé. Rien n'a été débité.",
                         "en": "Payment declined. Nothing was charged."},
    "payment_timeout": {
        "fr": "Le terminal ne répond pas. Vous ne serez pas débité deux fois : réessayez.",
        "en": "The terminal is not answering. You will never be charged twice: try again."},
    "refused": {"fr": "Action impossible ({code})", "en": "Not possible ({code})"},
    "session_ended": {"fr": "Session terminée", "en": "Session ended"},
    "language": {"fr": "English", "en": "Français"},
}


def tr(key: str, lang: str, **params: object) -> str:
    """The message ``key`` in ``lang``, with ``params`` filled in."""
    return STRINGS[key][lang].format(**params)


def money(cents: int | None, lang: str, currency: str = "EUR") -> str:
    """``12,50 €`` in French, ``€12.50`` in English; an em dash when there is no price."""
    if cents is None:
        return "—"
    units, rest = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    symbol = {"EUR": "€", "USD": "$", "GBP": "£"}.get(currency, currency)
    if lang == "fr":
        return f"{sign}{units},{rest:02d} {symbol}"
    return f"{sign}{symbol}{units}.{rest:02d}"
