"""Schema migrations, applied at start-up by every worker and safe to re-run.

Each migration is a numbered list of statements recorded in
``schema_migrations``. Workers starting together serialise on a lock (an
advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) and re-check the
applied versions under it, so exactly one of them migrates and the others see
the result. Migrations are append-only: never edit one that has shipped.
"""

from __future__ import annotations

import time

from central.db import Database, Tx
from central.errors import MigrationError

#: Arbitrary constant: the advisory lock id guarding migrations on PostgreSQL.
_PG_LOCK_ID = 0x56495452  # "VITR"

_SERIAL = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
           "postgres": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"}

#: A statement is SQL for both engines, or ``{dialect: sql}`` (a dialect left out skips it).
Statement = str | dict[str, str]

MIGRATIONS: list[tuple[int, str, list[Statement]]] = [
    (1, "core schema", [
        """CREATE TABLE credentials (
            principal TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION)""",
        """CREATE TABLE customers (
            customer_id TEXT PRIMARY KEY,
            created_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE consents (
            customer_id TEXT NOT NULL,
            purpose TEXT NOT NULL,
            granted SMALLINT NOT NULL,
            source TEXT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (customer_id, purpose))""",
        """CREATE TABLE events (
            event_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            channel TEXT NOT NULL,
            source TEXT NOT NULL,
            store_id TEXT,
            zone TEXT,
            customer_id TEXT,
            session_id TEXT,
            gtin TEXT,
            category TEXT,
            points BIGINT,
            occurred_at DOUBLE PRECISION NOT NULL,
            ingested_at DOUBLE PRECISION NOT NULL,
            payload TEXT NOT NULL)""",
        "CREATE INDEX events_customer ON events (customer_id, occurred_at)",
        "CREATE INDEX events_session ON events (session_id)",
        """CREATE TABLE identity_links (
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            linked_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (kind, value))""",
        "CREATE INDEX identity_links_customer ON identity_links (customer_id)",
        """CREATE TABLE erased_identities (
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            erased_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (kind, value))""",
        """CREATE TABLE erasures (
            seq {serial},
            customer_id TEXT NOT NULL,
            session_ids TEXT NOT NULL,
            erased_at DOUBLE PRECISION NOT NULL,
            requested_by TEXT NOT NULL)""",
        """CREATE TABLE orders (
            seq {serial},
            order_id TEXT NOT NULL UNIQUE,
            channel TEXT NOT NULL,
            customer_id TEXT,
            fulfilment TEXT NOT NULL,
            store_id TEXT NOT NULL,
            digest TEXT NOT NULL,
            payload TEXT NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            submitted_by TEXT NOT NULL)""",
        "CREATE INDEX orders_store ON orders (store_id, seq)",
    ]),
    # Feeds to the edges (central/feeds): one version counter per feed, and a
    # version per row so an edge asks for "everything after version N".
    (2, "sync feeds", [
        """CREATE TABLE feed_versions (
            feed TEXT PRIMARY KEY,
            version BIGINT NOT NULL)""",
        "INSERT INTO feed_versions (feed, version) VALUES ('catalogue', 0), ('prices', 0), "
        "('stock', 0)",
        """CREATE TABLE catalogue_products (
            gtin TEXT PRIMARY KEY,
            name TEXT,
            brand TEXT,
            category TEXT,
            deleted SMALLINT NOT NULL DEFAULT 0,
            version BIGINT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX catalogue_products_version ON catalogue_products (version)",
        """CREATE TABLE price_entries (
            store_id TEXT NOT NULL,
            gtin TEXT NOT NULL,
            kind TEXT NOT NULL,
            valid_from DOUBLE PRECISION NOT NULL,
            valid_to DOUBLE PRECISION,
            price_cents BIGINT,
            currency TEXT,
            label TEXT,
            deleted SMALLINT NOT NULL DEFAULT 0,
            version BIGINT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (store_id, gtin, kind, valid_from))""",
        "CREATE INDEX price_entries_version ON price_entries (version)",
        """CREATE TABLE stock_levels (
            location TEXT NOT NULL,
            gtin TEXT NOT NULL,
            quantity BIGINT NOT NULL,
            observed_at DOUBLE PRECISION NOT NULL,
            version BIGINT NOT NULL,
            PRIMARY KEY (location, gtin))""",
        "CREATE INDEX stock_levels_version ON stock_levels (version)",
    ]),
    # Device-scoped aliases (central/identity.py): an app installation, a web
    # cookie, a kiosk-local id. Events keep the alias they carried (scope:alias)
    # and join a profile through identity_links (kind 'alias'), like sessions.
    # Partial index: most events carry no alias, so ingest pays almost nothing.
    (3, "device-scoped aliases", [
        "ALTER TABLE events ADD COLUMN alias_key TEXT",
        "CREATE INDEX events_alias ON events (alias_key) WHERE alias_key IS NOT NULL",
        "ALTER TABLE erasures ADD COLUMN alias_keys TEXT",
    ]),
    # Real-time stock push (central/stock_push.py): the last stock feed version
    # each store's bridge published, so a restarted bridge neither skips nor floods.
    (4, "stock push cursors", [
        """CREATE TABLE stock_push_cursors (
            store_id TEXT PRIMARY KEY,
            version BIGINT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL)""",
    ]),
    # Least privilege (central/loyalty.py, central/profiles.py, central/privacy.py):
    # - loyalty points live in an append-only ledger, one entry per (order or
    #   purchase, direction): the database refuses UPDATE, and a second credit for
    #   the same purchase conflicts instead of adding up. Earlier loyalty events
    #   become "legacy" entries so balances do not change.
    # - customer_stores: which stores a customer identified in (identified_at only
    #   while tracking consent holds), to scope store lookups and route erasures.
    # - erasure_stores: which stores receive each erasure order, with the sessions
    #   aliases that store saw; orders erased before this migration go to every store.
    (5, "least privilege", [
        """CREATE TABLE loyalty_ledger (
            entry_id {serial},
            customer_id TEXT NOT NULL,
            points BIGINT NOT NULL,
            ref_kind TEXT NOT NULL,
            ref_id TEXT NOT NULL,
            direction TEXT NOT NULL,
            source TEXT NOT NULL,
            event_id TEXT NOT NULL,
            occurred_at DOUBLE PRECISION NOT NULL,
            recorded_at DOUBLE PRECISION NOT NULL,
            UNIQUE (ref_kind, ref_id, direction))""",
        "CREATE INDEX loyalty_ledger_customer ON loyalty_ledger (customer_id, recorded_at)",
        "INSERT INTO loyalty_ledger (customer_id, points, ref_kind, ref_id, direction, source, "
        "event_id, occurred_at, recorded_at) SELECT customer_id, points, 'legacy', event_id, "
        "CASE WHEN points < 0 THEN 'debit' ELSE 'credit' END, source, event_id, occurred_at, "
        "ingested_at FROM events WHERE kind = 'loyalty' AND customer_id IS NOT NULL "
        "AND points IS NOT NULL",
        {"sqlite": "CREATE TRIGGER loyalty_ledger_append_only BEFORE UPDATE ON loyalty_ledger "
                   "BEGIN SELECT RAISE(ABORT, 'loyalty_ledger is append-only'); END",
         "postgres": "CREATE FUNCTION loyalty_ledger_append_only() RETURNS trigger "
                     "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
                     "'loyalty_ledger is append-only'; END $$"},
        {"postgres": "CREATE TRIGGER loyalty_ledger_append_only BEFORE UPDATE ON loyalty_ledger "
                     "FOR EACH ROW EXECUTE FUNCTION loyalty_ledger_append_only()"},
        """CREATE TABLE customer_stores (
            customer_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            identified_at DOUBLE PRECISION,
            PRIMARY KEY (customer_id, store_id))""",
        "INSERT INTO customer_stores (customer_id, store_id, identified_at) "
        "SELECT customer_id, store_id, MAX(occurred_at) FROM events "
        "WHERE customer_id IS NOT NULL AND store_id IS NOT NULL "
        "AND kind IN ('presence', 'interest', 'identify') GROUP BY customer_id, store_id",
        """CREATE TABLE erasure_stores (
            seq BIGINT NOT NULL,
            store_id TEXT NOT NULL,
            session_ids TEXT NOT NULL,
            alias_keys TEXT NOT NULL,
            PRIMARY KEY (store_id, seq))""",
        "INSERT INTO erasure_stores (seq, store_id, session_ids, alias_keys) SELECT e.seq, "
        "c.name, e.session_ids, COALESCE(e.alias_keys, '[]') FROM erasures e, credentials c "
        "WHERE c.kind = 'store'",
    ]),
    # One token bucket per credential for the lookup rate limit, shared by every worker
    # (central/rate_limit.py); before this, each worker counted alone.
    (6, "shared rate limits", [
        """CREATE TABLE rate_buckets (
            credential TEXT PRIMARY KEY,
            tokens DOUBLE PRECISION NOT NULL,
            refilled_at DOUBLE PRECISION NOT NULL)""",
    ]),
    # Order lifecycle (central/order_status.py, contract/order_lifecycle.py): an order's
    # current status, the pickup code central issues for a web click & collect order,
    # and every change (creation included) in one log per fulfilling store: its seq is
    # the cursor an edge pulls after (``order-changes``), change_id the idempotency key.
    # Orders received before this migration enter the log as "placed".
    (7, "order lifecycle", [
        "ALTER TABLE orders ADD COLUMN status TEXT NOT NULL DEFAULT 'placed'",
        "ALTER TABLE orders ADD COLUMN pickup_code TEXT",
        "ALTER TABLE orders ADD COLUMN updated_at DOUBLE PRECISION",
        """CREATE TABLE order_changes (
            seq {serial},
            change_id TEXT NOT NULL UNIQUE,
            order_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            previous TEXT,
            status TEXT NOT NULL,
            changed_by TEXT NOT NULL,
            actor TEXT,
            occurred_at DOUBLE PRECISION NOT NULL,
            recorded_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX order_changes_store ON order_changes (store_id, seq)",
        "CREATE INDEX order_changes_order ON order_changes (order_id, seq)",
        "INSERT INTO order_changes (change_id, order_id, store_id, previous, status, "
        "changed_by, occurred_at, recorded_at) SELECT 'created:' || order_id, order_id, "
        "store_id, NULL, 'placed', submitted_by, received_at, received_at FROM orders "
        "ORDER BY seq",
    ]),
    # When a member last showed their card in a store, consent or not: that store may
    # read their points balance (nothing else) for store_points_window_s after it, so
    # its kiosk greets every member with their points (central/profiles.py).
    (8, "store points window", [
        "ALTER TABLE customer_stores ADD COLUMN present_at DOUBLE PRECISION",
    ]),
    # Proof of play from the stores' screens, and interest attributed to it
    # (central/screen_attribution.py): what each zone's screens showed, on the edge's
    # clock, and per interest event the items on screen in its zone in the previous
    # attribution_window_s. No person in either table: event ids, zones, items.
    # The partial index finds a zone's interest events when a play arrives after them.
    #
    # Catalogue content (central/media.py, central/feeds): product pictures stored by
    # their SHA-256, and per catalogue product the promotion label, the previous price
    # and its pictures (JSON; NULL when the load said nothing about content, so a
    # store's own content is left alone).
    (9, "signage: proof of play, catalogue content", [
        "ALTER TABLE catalogue_products ADD COLUMN content TEXT",
        {"sqlite": """CREATE TABLE media (
            sha256 TEXT PRIMARY KEY,
            content_type TEXT NOT NULL,
            size BIGINT NOT NULL,
            data BLOB NOT NULL,
            created_at DOUBLE PRECISION NOT NULL)""",
         "postgres": """CREATE TABLE media (
            sha256 TEXT PRIMARY KEY,
            content_type TEXT NOT NULL,
            size BIGINT NOT NULL,
            data BYTEA NOT NULL,
            created_at DOUBLE PRECISION NOT NULL)"""},
        """CREATE TABLE screen_plays (
            event_id TEXT PRIMARY KEY,
            store_id TEXT NOT NULL,
            zone TEXT NOT NULL,
            screen_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            item_kind TEXT NOT NULL,
            playlist_id TEXT,
            trigger TEXT NOT NULL,
            gtin TEXT,
            shown_from DOUBLE PRECISION NOT NULL,
            shown_until DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX screen_plays_zone ON screen_plays (store_id, zone, shown_until)",
        """CREATE TABLE screen_attributions (
            interest_event_id TEXT NOT NULL,
            play_event_id TEXT NOT NULL,
            store_id TEXT NOT NULL,
            zone TEXT NOT NULL,
            screen_id TEXT NOT NULL,
            item_id TEXT NOT NULL,
            item_kind TEXT NOT NULL,
            trigger TEXT NOT NULL,
            gtin TEXT,
            interest_at DOUBLE PRECISION NOT NULL,
            shown_until DOUBLE PRECISION NOT NULL,
            lag_s DOUBLE PRECISION NOT NULL,
            same_product SMALLINT NOT NULL,
            window_s DOUBLE PRECISION NOT NULL,
            recorded_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (interest_event_id, play_event_id))""",
        "CREATE INDEX screen_attributions_item ON screen_attributions (store_id, item_id)",
        "CREATE INDEX events_zone_interest ON events (store_id, zone, occurred_at) "
        "WHERE kind = 'interest'",
    ]),
    # Orders one store takes for another (central/orders.py): a kiosk in store A takes a
    # click & collect order for store B, or a home delivery from the warehouse. taken_by
    # is the taking store (NULL when the submitter fulfils it, or for a channel's order):
    # it reads the order and its changes (they enter its order log too) and may only pay
    # or cancel it before it is paid. Orders received before are backfilled from
    # submitted_by.
    (10, "orders taken for another store", [
        "ALTER TABLE orders ADD COLUMN taken_by TEXT",
        "UPDATE orders SET taken_by = substr(submitted_by, 7) "
        "WHERE substr(submitted_by, 1, 6) = 'store:' AND submitted_by <> 'store:' || store_id",
        "CREATE INDEX orders_taken_by ON orders (taken_by, received_at)",
    ]),
]


def _applied(tx: Tx) -> set[int]:
    return {row["version"] for row in tx.all("SELECT version FROM schema_migrations")}


def _migrate(tx: Tx) -> list[int]:
    if tx.dialect == "postgres":
        # Before anything else: concurrent CREATE TABLE IF NOT EXISTS can still collide.
        tx.execute("SELECT pg_advisory_xact_lock(?)", (_PG_LOCK_ID,))
    tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
               "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
               "applied_at DOUBLE PRECISION NOT NULL)")
    done = _applied(tx)
    newly: list[int] = []
    for version, name, statements in MIGRATIONS:
        if version in done:
            continue
        for stmt in statements:
            sql = stmt.get(tx.dialect) if isinstance(stmt, dict) else stmt
            if sql:
                tx.execute(sql.replace("{serial}", _SERIAL[tx.dialect]))
        tx.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                   (version, name, time.time()))
        newly.append(version)
    return newly


def migrate(db: Database) -> list[int]:
    """Bring the schema up to date; return the versions applied by this call."""
    try:
        return db.run(_migrate)
    except Exception as exc:
        raise MigrationError(f"migration failed: {exc}") from exc
