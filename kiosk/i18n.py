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
    "points_provisional": {"fr": "{points} points fidélité (en attente de confirmation)",
                           "en": "{points} loyalty points (awaiting confirmation)"},
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
    "wishlist_added": {"fr": "Ajouté à votre liste d'envies", "en": "Added to your wish-list"},
    "no_picture": {"fr": "Pas de photo", "en": "No picture"},
    "collect_elsewhere": {"fr": "Retrait dans un autre magasin",
                          "en": "Collect in another store"},
    "collect_at": {"fr": "Retrait : {store}", "en": "Collect at: {store}"},
    "collect_here_note": {"fr": "Retrait dans ce magasin", "en": "Collect in this store"},
    "deliver_to": {"fr": "Livraison : {address}", "en": "Deliver to: {address}"},
    "change_address": {"fr": "Modifier l'adresse", "en": "Change address"},
    "stores_title": {"fr": "Où voulez-vous retirer ?", "en": "Where will you collect?"},
    "store_row": {"fr": "{name}", "en": "{name}"},
    "store_in_stock": {"fr": "En stock : {n}", "en": "In stock: {n}"},
    "store_no_stock": {"fr": "Pas assez en stock", "en": "Not enough in stock"},
    "store_distance": {"fr": "à {km} km", "en": "{km} km away"},
    "stores_none": {"fr": "Aucun autre magasin connu", "en": "No other store known"},
    "address_title": {"fr": "Adresse de livraison", "en": "Delivery address"},
    "address_name": {"fr": "Nom du destinataire", "en": "Recipient's name"},
    "address_line1": {"fr": "Numéro et rue", "en": "Number and street"},
    "address_line2": {"fr": "Bâtiment, étage (facultatif)",
                      "en": "Building, floor (optional)"},
    "address_postcode": {"fr": "Code postal", "en": "Postcode"},
    "address_city": {"fr": "Ville", "en": "City"},
    "address_continue": {"fr": "Continuer", "en": "Continue"},
    "address_required": {"fr": "À remplir", "en": "Required"},
    "address_bad_street": {"fr": "Numéro et nom de rue", "en": "A number and a street name"},
    "address_bad_postcode": {"fr": "5 chiffres, ex. 69003", "en": "5 digits, e.g. 69003"},
    "address_bad_city": {"fr": "Lettres uniquement", "en": "Letters only"},
    "address_bad_name": {"fr": "Un nom, en lettres", "en": "A name, in letters"},
}


def tr(key: str, lang: str, **params: object) -> str:
    """The message ``key`` in ``lang``, with ``params`` filled in."""
    return STRINGS[key][lang].format(**params)


def points_line(points: int | None, provisional: bool, lang: str) -> str:
    """The greeting's points line; "awaiting confirmation" while central has not yet
    confirmed what this store spent or earned (the edge's provisional balance)."""
    if points is None:
        return tr("points_unknown", lang)
    return tr("points_provisional" if provisional else "points", lang, points=points)


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
