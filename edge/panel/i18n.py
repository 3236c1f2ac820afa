"""The panel in English and French: one catalogue, chosen per request.

Strings are written in English in the templates and views, wrapped in ``_()``;
:data:`FR` maps each to French. The language is the one the user picked (a
cookie set by ``POST /lang``), else the best of ``Accept-Language``, else
English. ``tests/edge/test_panel_i18n.py`` reads every ``_("...")`` in the
templates and views and fails on any string without a French translation, so a
new page cannot ship half-translated.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, make_response, redirect, request
from werkzeug.wrappers import Response

from .roles import PUBLIC, requires

LANGUAGES = ("en", "fr")
COOKIE = "vitrine_lang"
bp = Blueprint("i18n", __name__)

FR: dict[str, str] = {
    # navigation and frame
    "Dashboard": "Tableau de bord",
    "Devices": "Appareils",
    "Quarantine": "Quarantaine",
    "Recent events": "Événements récents",
    "Users": "Utilisateurs",
    "Operations": "Exploitation",
    "Analytics": "Analyses",
    "Prices": "Prix",
    "Stock counts": "Comptages de stock",
    "Log out": "Se déconnecter",
    "Log in": "Se connecter",
    "Store panel": "Panneau du magasin",
    "Vitrine store panel": "Panneau magasin Vitrine",
    "User name": "Nom d'utilisateur",
    "Password": "Mot de passe",
    "Language": "Langue",
    "Wrong user name or password.": "Nom d'utilisateur ou mot de passe incorrect.",
    "Too many failed logins; try again in %(s)s s.":
        "Trop d'échecs de connexion ; réessayez dans %(s)s s.",
    "Error": "Erreur",
    "live": "en direct",
    "Alarms": "Alarmes",
    "manager": "responsable",
    "staff": "vendeur",
    # dashboard
    "Live counters of the running edge node, since it started.":
        "Compteurs en direct du nœud edge, depuis son démarrage.",
    "Totals from the edge database (the edge node is not in this process).":
        "Totaux de la base edge (le nœud edge ne tourne pas dans ce processus).",
    "Generated %(when)s.": "Généré le %(when)s.",
    "received": "reçus",
    "accepted": "acceptés",
    "duplicates": "doublons",
    "quarantined": "en quarantaine",
    "interest": "intérêt",
    "presence": "présence",
    "outbox backlog": "file d'envoi",
    "oldest unsent:": "plus ancien non envoyé :",
    "none": "aucun",
    "stale devices": "appareils muets",
    "Quarantined by reason": "Quarantaine par motif",
    "reason": "motif",
    "count": "nombre",
    "%(n)s not reviewed yet": "%(n)s pas encore examiné(s)",
    "Nothing quarantined.": "Rien en quarantaine.",
    "Stale devices": "Appareils muets",
    "Every device is reporting.": "Tous les appareils répondent.",
    "Live taps": "Interactions en direct",
    "New taps and identifications appear here as they happen.":
        "Les nouvelles interactions et identifications apparaissent ici en direct.",
    # tables
    "device": "appareil",
    "kind": "type",
    "zone": "zone",
    "shelf": "rayon",
    "zone / shelf": "zone / rayon",
    "state": "état",
    "firmware": "micrologiciel",
    "last seen": "vu",
    "clock": "horloge",
    "telemetry": "télémétrie",
    "uptime_s": "en marche depuis",
    "buffered": "en attente",
    "reconnects": "reconnexions",
    "temperature_c": "°C",
    "time": "heure",
    "product": "produit",
    "customer": "client",
    "anonymous": "anonyme",
    "No events yet.": "Aucun événement pour l'instant.",
    "ok": "ok",
    "never": "jamais",
    "online": "en ligne",
    "offline": "hors ligne",
    "stale": "muet",
    "never_seen": "jamais vu",
    "actions": "actions",
    # devices
    "%(n)s registered, %(stale)s stale, %(never)s never seen,"
    " %(clocks)s with an implausible clock.":
        "%(n)s enregistrés, %(stale)s muets, %(never)s jamais vus, "
        "%(clocks)s avec une horloge invraisemblable.",
    "%(n)s bad (last ts %(ts)s)": "%(n)s erronés (dernier ts %(ts)s)",
    "%(n)s cut off for flooding.": "%(n)s coupés pour inondation.",
    "flood": "inondation",
    "CUT OFF until %(when)s (%(n)s dropped)": "COUPÉ jusqu'au %(when)s (%(n)s rejetés)",
    "Add a device": "Ajouter un appareil",
    "Device id": "Identifiant de l'appareil",
    "Kind": "Type",
    "Zone": "Zone",
    "Shelf": "Rayon",
    "Add": "Ajouter",
    "Revoke": "Révoquer",
    "provisioned": "provisionné",
    "not provisioned": "non provisionné",
    "Device %(id)s added. Its credential is shown only once: copy it into the device now.":
        "Appareil %(id)s ajouté. Son identifiant n'est affiché qu'une fois : "
        "copiez-le dans l'appareil maintenant.",
    "Broker user": "Utilisateur broker",
    "Broker reloaded.": "Broker rechargé.",
    "The broker is not running: files updated only.":
        "Le broker ne tourne pas : fichiers mis à jour seulement.",
    "Device %(id)s revoked.": "Appareil %(id)s révoqué.",
    "The broker runs as another user: reload it (systemctl reload mosquitto).":
        "Le broker tourne sous un autre utilisateur : rechargez-le "
        "(systemctl reload mosquitto).",
    "Device provisioning is not configured on this edge (panel_broker_dir).":
        "Le provisionnement n'est pas configuré sur cet edge (panel_broker_dir).",
    "The panel only adds shop-floor devices, never an edge or observer principal.":
        "Le panneau n'ajoute que des appareils de magasin, jamais un principal edge ou "
        "observateur.",
    # quarantine
    "Reason": "Motif",
    "Status": "Statut",
    "all reasons": "tous les motifs",
    "all": "tous",
    "unreviewed": "non examinés",
    "reviewed": "examinés",
    "Filter": "Filtrer",
    "%(total)s message(s); page %(page)s of %(pages)s.":
        "%(total)s message(s) ; page %(page)s sur %(pages)s.",
    "bytes": "octets",
    "yes": "oui",
    "no": "non",
    "Nothing here.": "Rien ici.",
    "newer": "plus récents",
    "older": "plus anciens",
    "received at": "reçu le",
    "topic": "sujet",
    "unknown": "inconnu",
    "detail": "détail",
    "size": "taille",
    "%(size)s bytes received, %(stored)s stored": "%(size)s octets reçus, %(stored)s conservés",
    "reviewed by %(who)s at %(when)s": "examiné par %(who)s le %(when)s",
    "not reviewed": "non examiné",
    "Mark reviewed": "Marquer examiné",
    "Payload as text": "Contenu en texte",
    "Payload as hex": "Contenu en hexadécimal",
    "UTF-8, invalid bytes as U+FFFD, control characters as a middle dot.":
        "UTF-8, octets invalides en U+FFFD, caractères de contrôle en point médian.",
    "First %(limit)s of %(stored)s bytes.": "Premiers %(limit)s octets sur %(stored)s.",
    "back to the list": "retour à la liste",
    "Quarantine #%(id)s marked reviewed.": "Quarantaine n°%(id)s marquée examinée.",
    # events
    "The last %(n)s interest and presence events, newest first.":
        "Les %(n)s derniers événements d'intérêt et de présence, du plus récent au plus ancien.",
    "Customer ids are masked for your role.":
        "Les identifiants clients sont masqués pour votre rôle.",
    # users
    "Add a user": "Ajouter un utilisateur",
    "Role": "Rôle",
    "role": "rôle",
    "user": "utilisateur",
    "last login": "dernière connexion",
    "disabled": "désactivé",
    "active": "actif",
    "Reset password": "Réinitialiser le mot de passe",
    "Disable": "Désactiver",
    "Enable": "Réactiver",
    "User %(name)s: the password is shown only once.":
        "Utilisateur %(name)s : le mot de passe n'est affiché qu'une fois.",
    "User %(name)s disabled.": "Utilisateur %(name)s désactivé.",
    "User %(name)s enabled.": "Utilisateur %(name)s réactivé.",
    "You cannot disable yourself.": "Vous ne pouvez pas vous désactiver vous-même.",
    "No such user.": "Utilisateur inconnu.",
    # operations
    "Forwarder": "Transfert vers le central",
    "events waiting for central": "événements en attente du central",
    "oldest unsent": "plus ancien non envoyé",
    "Feeds": "Flux",
    "feed": "flux",
    "last success": "dernier succès",
    "age": "âge",
    "last error": "dernière erreur",
    "No feed has synchronised yet (standalone store).":
        "Aucun flux synchronisé (magasin autonome).",
    "Broker": "Broker",
    "reachable": "joignable",
    "unreachable": "injoignable",
    "Disk": "Disque",
    "free": "libre",
    "database": "base de données",
    "No alarm.": "Aucune alarme.",
    "Outbox: the oldest unsent event is %(age)s old.":
        "File d'envoi : l'événement non envoyé le plus ancien a %(age)s.",
    "Feed %(feed)s last synchronised %(age)s ago.": "Flux %(feed)s synchronisé il y a %(age)s.",
    "Feed %(feed)s never synchronised.": "Flux %(feed)s jamais synchronisé.",
    "Broker unreachable at %(addr)s.": "Broker injoignable à %(addr)s.",
    "Disk almost full: %(pct)s%% free.": "Disque presque plein : %(pct)s %% libre.",
    "%(n)s device(s) stale.": "%(n)s appareil(s) muet(s).",
    "%(n)s quarantined message(s) not reviewed.":
        "%(n)s message(s) en quarantaine non examiné(s).",
    # analytics
    "Interest per hour": "Intérêt par heure",
    "hour": "heure",
    "taps": "interactions",
    "Heatmap": "Carte de chaleur",
    "Interest per zone over the last 24 hours, on the store's zones.":
        "Intérêt par zone sur les dernières 24 heures, sur les zones du magasin.",
    "Tapped -> ordered (7 days)": "Regardé -> commandé (7 jours)",
    "ordered": "commandé",
    "orders": "commandes",
    "conversion": "conversion",
    "Device uptime (24 h)": "Disponibilité des appareils (24 h)",
    "uptime": "disponibilité",
    "Download CSV": "Télécharger en CSV",
    "First %(n)s rows; the CSV has them all.":
        "Les %(n)s premières lignes ; le CSV les contient toutes.",
    "Kept after the outbox is cleaned: counted hourly by the edge's housekeeping.":
        "Conservé après le nettoyage de la file : compté chaque heure par l'edge.",
    "No data yet.": "Pas encore de données.",
    # prices and stock
    "Local markdowns": "Démarques locales",
    "GTIN": "GTIN",
    "gtin": "GTIN",
    "name": "nom",
    "price": "prix",
    "Markdown price": "Prix démarqué",
    "markdown": "démarque",
    "Set": "Appliquer",
    "Remove": "Retirer",
    "Markdown for %(gtin)s saved; the price rule now shows %(price)s.":
        "Démarque de %(gtin)s enregistrée ; la règle de prix affiche %(price)s.",
    "Markdown for %(gtin)s removed.": "Démarque de %(gtin)s retirée.",
    "Unknown product.": "Produit inconnu.",
    "Enter a price like 12.99.": "Saisissez un prix comme 12,99.",
    "Enter a whole number of items, 0 or more.":
        "Saisissez un nombre entier d'articles, 0 ou plus.",
    "Quantity": "Quantité",
    "quantity": "quantité",
    "counted": "compté",
    "Record": "Enregistrer",
    "Count of %(n)s for %(gtin)s recorded.": "Comptage de %(n)s pour %(gtin)s enregistré.",
    "Search": "Rechercher",
    "Shown price": "Prix affiché",
    "The price each screen shows is decided by the price rule (edge/rules.py).":
        "Le prix affiché est décidé par la règle de prix (edge/rules.py).",
    "Stock on hand": "Stock en rayon",
    # screens
    "Screens": "Écrans",
    "showing": "affiche",
    "last played": "dernière diffusion",
    "on screen now": "à l'écran maintenant",
    "No preview yet.": "Pas encore d'aperçu.",
    "since": "depuis",
    "pushed by %(who)s": "envoyé par %(who)s",
    "nothing since the edge started": "rien depuis le démarrage de l'edge",
    "No signage screen is registered.": "Aucun écran n'est enregistré.",
    "Push a product to a zone": "Afficher un produit dans une zone",
    "Show now": "Afficher maintenant",
    "Pushing to screens needs the panel inside the edge node.":
        "L'envoi aux écrans demande le panneau dans le nœud edge.",
    "Pick a product and a zone that has screens.":
        "Choisissez un produit et une zone qui a des écrans.",
    "%(name)s sent to %(n)s screen(s) in %(zone)s.":
        "%(name)s envoyé à %(n)s écran(s) de la zone %(zone)s.",
    "Shelf labels out of date": "Étiquettes de rayon pas à jour",
    "%(n)s of %(total)s labels do not show the price the rules chose yet.":
        "%(n)s étiquettes sur %(total)s n'affichent pas encore le prix choisi par les règles.",
    "wanted": "voulu",
    "shows": "affiche",
    "sent": "envoyé",
    "Playlists": "Listes de diffusion",
    "Version %(v)s, loaded %(when)s.": "Version %(v)s, chargée le %(when)s.",
    "playlist": "liste",
    "screens": "écrans",
    "items": "éléments",
    "No playlist loaded.": "Aucune liste chargée.",
    "Playlist file (vitrine-playlist/1 JSON)": "Fichier de listes (JSON vitrine-playlist/1)",
    "Load": "Charger",
    "Choose a playlist file (at most 256 KiB).":
        "Choisissez un fichier de listes (256 Kio au plus).",
    "This playlist file was refused: %(why)s": "Ce fichier de listes a été refusé : %(why)s",
    "Playlists version %(v)s loaded; screens get them within a second.":
        "Listes version %(v)s chargées ; les écrans les reçoivent en une seconde.",
    # pickups
    "Pickups": "Retraits",
    "Order %(id)s collected.": "Commande %(id)s retirée.",
    "Scan the customer's pickup QR code.": "Scannez le QR de retrait du client.",
    "Collect": "Remettre",
    "order": "commande",
    "total": "total",
    "Mark %(state)s": "Passer à %(state)s",
    "pickup code": "code de retrait",
    "No order to prepare.": "Aucune commande à préparer.",
    "paid": "payée",
    "preparing": "en préparation",
    "ready": "prête",
    "collected": "retirée",
    "This is not a pickup QR code.": "Ce n'est pas un QR de retrait.",
    "Wrong pickup code for this order.": "Mauvais code de retrait pour cette commande.",
    "This order is %(status)s, not ready to collect.":
        "Cette commande est %(status)s, pas prête à être retirée.",
    "This order was just collected on another tablet.":
        "Cette commande vient d'être remise sur une autre tablette.",
    "This order cannot move on from here.": "Cette commande ne peut pas avancer d'ici.",
    "This order changed meanwhile; here is the queue as it is now.":
        "Cette commande a changé entre-temps ; voici la file à jour.",
    "Order %s (%s) to collect: customer %s in %s": "Commande %s (%s) à retirer : client %s en %s",
    "placed": "passée",
    "pay at pickup": "paiement au retrait",
    "Orders refused by central": "Commandes refusées par le central",
    "Mark settled": "Marquer réglée",
    "settled by %(user)s": "réglée par %(user)s",
    "Order %(id)s marked settled.": "Commande %(id)s marquée réglée.",
    "Nothing to settle for this order.": "Rien à régler pour cette commande.",
    "None: central took every order and change.":
        "Aucune : le central a accepté chaque commande et changement.",
    "%(n)s order(s) refused by central: see Operations.":
        "%(n)s commande(s) refusée(s) par le central : voir Exploitation.",
    "taken at store %(store)s": "prise au magasin %(store)s",
    "Refused by central: %(why)s": "Refusée par le central : %(why)s",
    "Payment taken": "Paiement encaissé",
    "Payment taken, hand over": "Paiement encaissé, remettre",
    "Cancel order": "Annuler la commande",
    "Order %(id)s cancelled.": "Commande %(id)s annulée.",
    "This order cannot be cancelled from here.": "Cette commande ne peut pas être annulée d'ici.",
    "This order is not paid yet: take the payment, then hand it over.":
        "Cette commande n'est pas encore payée : encaissez, puis remettez-la.",
    # scanning
    "Scan the code or take a photo of it.": "Scannez le code ou prenez-le en photo.",
    "The photo is too large.": "La photo est trop grande.",
    "This file is not a PNG or JPEG photo.": "Ce fichier n'est pas une photo PNG ou JPEG.",
    "No QR code found in the photo; try again closer.":
        "Aucun QR code sur la photo ; réessayez de plus près.",
    "Photo of the QR code": "Photo du QR code",
    # clienteling
    "Clienteling": "Conseil client",
    "Look up": "Rechercher",
    "Scan the customer's loyalty QR code or type their loyalty id.":
        "Scannez le QR de fidélité du client ou saisissez son identifiant de fidélité.",
    "This loyalty code is not valid (%(reason)s).":
        "Ce code de fidélité n'est pas valide (%(reason)s).",
    "Clienteling needs the link to central (central_url).":
        "Le conseil client a besoin du lien avec le central (central_url).",
    "No profile to show: unknown id, not seen in this store lately, or no consent to"
    " personalised service.":
        "Aucun profil à afficher : identifiant inconnu, client pas vu récemment dans ce "
        "magasin, ou pas de consentement au service personnalisé.",
    "Too many lookups; wait a minute.": "Trop de recherches ; attendez une minute.",
    "Central cannot be reached; try again.": "Le central est injoignable ; réessayez.",
    "This customer has not agreed to personalised service: nothing is shown."
    " They can agree in the app or at a kiosk.":
        "Ce client n'a pas accepté le service personnalisé : rien n'est affiché."
        " Il peut l'accepter dans l'application ou sur une borne.",
    "loyalty points": "points de fidélité",
    "Interests": "Centres d'intérêt",
    "Suggestions for add-on sales": "Suggestions de ventes complémentaires",
    "What shoppers who looked at the same products also looked at or bought, in this store.":
        "Ce que les clients qui ont regardé les mêmes produits ont aussi regardé ou acheté, "
        "dans ce magasin.",
    "bought it": "l'ont acheté",
    "shoppers": "clients",
    "Recent activity": "Activité récente",
    "channel": "canal",
    # playlists and schedules
    "The %(field)s holds control characters.":
        "Le champ « %(field)s » contient des caractères de contrôle.",
    "The %(field)s is too long (at most %(n)s characters).":
        "Le champ « %(field)s » est trop long (au plus %(n)s caractères).",
    "A playlist keeps at least one item: delete the playlist instead.":
        "Une liste de diffusion garde au moins un élément : supprimez plutôt la liste.",
    "A playlist named %(id)s exists already.": "Une liste de diffusion nommée %(id)s existe déjà.",
    "A promotion needs a title, a text or an image.":
        "Une promotion a besoin d'un titre, d'un texte ou d'une image.",
    "A takeover lasts 1 to %(n)s minutes.": "Une prise d'antenne dure de 1 à %(n)s minutes.",
    "A text item needs a title or a text.": "Un élément texte a besoin d'un titre ou d'un texte.",
    "Add an item": "Ajouter un élément",
    "or a new picture": "ou une nouvelle image",
    "Uploading pictures needs the panel inside the edge node.":
        "L'envoi d'images demande le panneau dans le nœud edge.",
    "The picture is too large (at most 8 MiB).": "L'image est trop lourde (8 Mio au plus).",
    "The picture is too large (at most 4096 x 4096 pixels).":
        "L'image est trop grande (4096 x 4096 pixels au plus).",
    "The picture must be a JPEG or PNG image.": "L'image doit être au format JPEG ou PNG.",
    "The picture could not be stored: %(why)s": "L'image n'a pas pu être enregistrée : %(why)s",
    "Items": "Éléments",
    "Name": "Nom",
    "Order": "Commande",
    "Playlist": "Liste de diffusion",
    "Shows": "Affiche",
    "An image item needs an image.": "Un élément image a besoin d'une image.",
    "Another change was saved meanwhile; here are the playlists as they are now."
    " Nothing was changed.":
        "Une autre modification a été enregistrée entre-temps ; voici les listes de"
        " diffusion telles qu'elles sont. Rien n'a été modifié.",
    "Choose the screens or zones this playlist plays on.":
        "Choisissez les écrans ou les zones où passe cette liste de diffusion.",
    "Choose what the item shows.": "Choisissez ce que montre l'élément.",
    "Create": "Créer",
    "Dates must be YYYY-MM-DD.": "Les dates s'écrivent AAAA-MM-JJ.",
    "Delete": "Supprimer",
    "Delete this playlist": "Supprimer cette liste de diffusion",
    "Duration must be a number of seconds.": "La durée est un nombre de secondes.",
    "Duration must be from 1 to %(max)s seconds.": "La durée va de 1 à %(max)s secondes.",
    "First item": "Premier élément",
    "From and to are the same time.": "Début et fin sont à la même heure.",
    "Image must be the SHA-256 id of a picture in the edge's cache.":
        "L'image est l'identifiant SHA-256 d'une image du cache de l'edge.",
    "Name the playlist with letters, digits, '-', '_' or '.' (at most 64, not starting with"
    " takeover-).":
        "Nommez la liste de diffusion avec des lettres, chiffres, « - », « _ » ou « . »"
        " (64 au plus, sans commencer par takeover-).",
    "New playlist": "Nouvelle liste de diffusion",
    "No playlist %(id)s (deleted meanwhile?).":
        "Pas de liste de diffusion %(id)s (supprimée entre-temps ?).",
    "No playlist yet.": "Aucune liste de diffusion pour l'instant.",
    "No such item (deleted meanwhile?).": "Élément introuvable (supprimé entre-temps ?).",
    "Pick %(what)s from the list.": "Choisissez les %(what)s dans la liste.",
    "Pick a product.": "Choisissez un produit.",
    "Pick a zone that has screens.": "Choisissez une zone équipée d'écrans.",
    "Pick at least one day.": "Choisissez au moins un jour.",
    "Pick days from the list.": "Choisissez les jours dans la liste.",
    "Playing now": "À l'antenne maintenant",
    "Plays on": "Passe sur",
    "plays on": "passe sur",
    "Priority must be a whole number from -1000 to 1000.":
        "La priorité est un nombre entier de -1000 à 1000.",
    "Push a promotion to a zone": "Diffuser une promotion dans une zone",
    "Save": "Enregistrer",
    "Saved (version %(v)s); screens get it within a second.":
        "Enregistré (version %(v)s) ; les écrans le reçoivent en une seconde.",
    "Schedules are in": "Les horaires sont à l'heure de",
    "Take over the zone": "Prendre l'antenne de la zone",
    "The first day is after the last day.": "Le premier jour est après le dernier.",
    "This change was refused: %(why)s": "Cette modification a été refusée : %(why)s",
    "Time zone": "Fuseau horaire",
    "Times must be HH:MM, both of them.": "Les deux heures s'écrivent HH:MM.",
    "Unknown time zone; use a name like Europe/Paris.":
        "Fuseau horaire inconnu ; utilisez un nom comme Europe/Paris.",
    "What the screens play, and when. Each change is delivered to the screens within a"
    " second; they keep their schedule when the edge is down.":
        "Ce que passent les écrans, et quand. Chaque modification parvient aux écrans en une"
        " seconde ; ils suivent leur programme même quand l'edge est arrêté.",
    "When (ignored for a default playlist)":
        "Quand (sans effet pour une liste de diffusion par défaut)",
    "Where and when": "Où et quand",
    "Zone %(zone)s shows this until %(end)s.": "La zone %(zone)s affiche ceci jusqu'à %(end)s.",
    "badge": "pastille",
    "body": "texte",
    "title": "titre",
    "text": "texte",
    "image": "image",
    "spotlight": "produit en vedette",
    "promotion": "promotion",
    "default": "par défaut",
    "default (plays when no schedule is active)":
        "par défaut (passe quand aucun horaire n'est actif)",
    "every day": "tous les jours",
    "every zone": "toutes les zones",
    "first day": "premier jour",
    "last day": "dernier jour",
    "from": "de",
    "to": "à",
    "item": "élément",
    "minutes": "minutes",
    "seconds": "secondes",
    "move up": "monter",
    "move down": "descendre",
    "nothing planned": "rien de prévu",
    "priority": "priorité",
    "until %(end)s": "jusqu'à %(end)s",
    "when": "quand",
    "zones": "zones",
    "mon": "lun", "tue": "mar", "wed": "mer", "thu": "jeu", "fri": "ven", "sat": "sam",
    "sun": "dim",
    # collecting with the camera, wish-list
    "Collect with the camera": "Retrait avec la caméra",
    "Confirm collection": "Confirmer le retrait",
    "Scan another": "Scanner une autre commande",
    "Frames read since the panel started: %(n)s, refused as not a picture: %(bad)s.":
        "Images lues depuis le démarrage du panneau : %(n)s, refusées (pas une image) :"
        " %(bad)s.",
    "Hold the customer's pickup QR code in front of the camera.":
        "Présentez le QR de retrait du client devant la caméra.",
    "No camera: %s. Use the scanner or type the code on the pickups page.":
        "Pas de caméra : %s. Utilisez la douchette ou saisissez le code sur la page des"
        " retraits.",
    "Read by scanner %s": "Lu par la douchette %s",
    "Send a JPEG or PNG picture.": "Envoyez une image JPEG ou PNG.",
    "Last refused: %(size)s bytes, %(why)s, SHA-256 %(sha)s, starting %(head)s, %(when)s.":
        "Dernière refusée : %(size)s octets, %(why)s, SHA-256 %(sha)s, début %(head)s,"
        " %(when)s.",
    "Starting the camera…": "Démarrage de la caméra…",
    "cancelled": "annulée",
    "Wish-list": "Liste d'envies",
    "Nothing on their wish-list.": "Rien sur sa liste d'envies.",
}


#: Keys that are identifiers rather than English (states stored in the database).
EN: dict[str, str] = {"never_seen": "never seen", "uptime_s": "up", "temperature_c": "°C"}


def current_language() -> str:
    return g.get("lang", "en")


def gettext(text: str, **params: Any) -> str:
    """``text`` in the request's language, with ``%(name)s`` parameters filled in."""
    out = FR.get(text, text) if current_language() == "fr" else EN.get(text, text)
    return out % params if params else out


def select_language() -> None:
    """``before_request``: cookie, else Accept-Language, else English."""
    chosen = request.cookies.get(COOKIE)
    g.lang = chosen if chosen in LANGUAGES else (
        request.accept_languages.best_match(LANGUAGES) or "en")


@bp.route("/lang", methods=("POST",))
@requires(PUBLIC)
def set_language() -> Response:
    from .auth import _safe_next  # the login's own same-site check: one rule for both

    lang = request.form.get("lang", "en")
    resp = make_response(redirect(_safe_next(request.form.get("back"))))
    if lang in LANGUAGES:
        resp.set_cookie(COOKIE, lang, max_age=365 * 86400, secure=True, httponly=True,
                        samesite="Strict")
    return resp
