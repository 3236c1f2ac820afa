"""The edge's SQLite database: connection settings and migrations.

Migrations are plain SQL steps numbered in order and recorded in
``_migrations``; :func:`migrate` applies the missing ones at start and is safe
to re-run. WAL mode lets the panel and the forwarder read while the pipeline
writes, and keeps the group commit cheap.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

MIGRATIONS: list[tuple[str, str]] = [
    ("0001_core", """
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  received_at REAL NOT NULL,
  device_ts REAL,
  payload TEXT NOT NULL,
  UNIQUE (device_id, msg_id)
);
CREATE TABLE quarantine (
  id INTEGER PRIMARY KEY,
  received_at REAL NOT NULL,
  topic TEXT NOT NULL,
  device_id TEXT,
  reason TEXT NOT NULL,
  detail TEXT,
  size INTEGER NOT NULL,
  payload BLOB
);
CREATE INDEX quarantine_reason ON quarantine(reason);
CREATE TABLE devices (
  device_id TEXT PRIMARY KEY,
  kind TEXT,
  zone TEXT,
  shelf TEXT,
  fw TEXT,
  state TEXT NOT NULL DEFAULT 'unknown',
  heartbeat_s REAL,
  last_seen REAL,
  stale INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE products (
  gtin TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  brand TEXT,
  category TEXT,
  price_cents INTEGER,
  currency TEXT,
  updated_at REAL
);
CREATE TABLE tags (
  uid TEXT PRIMARY KEY,
  gtin TEXT,
  zone TEXT,
  shelf TEXT
);
CREATE TABLE sessions (
  session_id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL,
  customer_id TEXT,
  started_at REAL NOT NULL,
  last_at REAL NOT NULL
);
CREATE INDEX sessions_device ON sessions(device_id, last_at);
CREATE TABLE token_nonces (
  nonce TEXT PRIMARY KEY,
  expires_at REAL NOT NULL
);
CREATE TABLE security_events (
  event_id TEXT PRIMARY KEY,
  received_at REAL NOT NULL,
  device_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  customer_hint TEXT
);
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  customer_key TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at REAL NOT NULL,
  sent_at REAL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
);
CREATE INDEX outbox_unsent ON outbox(sent_at, seq);
"""),
    # Local copies of central's feeds (edge/sync.py), the store's own opinions the
    # rules weigh against them (edge/rules.py), and applied erasures (edge/erasure.py).
    ("0002_sync", """
CREATE TABLE sync_state (
  feed TEXT PRIMARY KEY,
  version INTEGER NOT NULL DEFAULT 0,
  last_success_at REAL,
  last_attempt_at REAL,
  last_error TEXT
);
CREATE TABLE sync_catalogue (
  gtin TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  brand TEXT,
  category TEXT,
  version INTEGER NOT NULL
);
CREATE TABLE sync_prices (
  store_id TEXT NOT NULL,
  gtin TEXT NOT NULL,
  kind TEXT NOT NULL,
  valid_from REAL NOT NULL,
  valid_to REAL,
  price_cents INTEGER NOT NULL,
  currency TEXT NOT NULL,
  label TEXT,
  version INTEGER NOT NULL,
  PRIMARY KEY (store_id, gtin, kind, valid_from)
);
CREATE INDEX sync_prices_gtin ON sync_prices(gtin);
CREATE TABLE sync_stock (
  location TEXT NOT NULL,
  gtin TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  observed_at REAL NOT NULL,
  PRIMARY KEY (location, gtin)
);
CREATE INDEX sync_stock_gtin ON sync_stock(gtin);
CREATE TABLE local_markdowns (
  gtin TEXT PRIMARY KEY,
  price_cents INTEGER NOT NULL,
  valid_from REAL NOT NULL DEFAULT 0,
  valid_to REAL,
  set_by TEXT,
  set_at REAL NOT NULL
);
CREATE TABLE local_stock_counts (
  gtin TEXT PRIMARY KEY,
  quantity INTEGER NOT NULL,
  counted_at REAL NOT NULL,
  counted_by TEXT
);
CREATE TABLE erasures_applied (
  seq INTEGER PRIMARY KEY,
  applied_at REAL NOT NULL,
  rows_deleted INTEGER NOT NULL
);
"""),
    # The store manager's web panel (edge/panel/): its users, with scrypt/PBKDF2 hashes
    # and a lockout after repeated failures, and the "reviewed" mark on quarantine rows.
    ("0003_panel_users", """
CREATE TABLE panel_users (
  username TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('manager', 'staff')),
  created_at REAL NOT NULL,
  failed_logins INTEGER NOT NULL DEFAULT 0,
  locked_until REAL,
  last_login_at REAL
);
ALTER TABLE quarantine ADD COLUMN reviewed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE quarantine ADD COLUMN reviewed_at REAL;
ALTER TABLE quarantine ADD COLUMN reviewed_by TEXT
"""),
    # Devices whose clock is implausible (unset RTC, far future): counted, shown on the
    # panel, and their times stored as NULL rather than as dates.
    ("0004_clock_faults", """
ALTER TABLE devices ADD COLUMN clock_faults INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN last_bad_ts TEXT
"""),
    # In-store request/response (edge/requests.py): the reply given to each request id,
    # written in the transaction that did the work, so a retry gets the same answer
    # and a "committed" reply is never repeated as a second commit.
    ("0005_request_replies", """
CREATE TABLE request_replies (
  device_id TEXT NOT NULL,
  request_id TEXT NOT NULL,
  op TEXT NOT NULL,
  reply TEXT NOT NULL,
  at REAL NOT NULL,
  PRIMARY KEY (device_id, request_id)
);
CREATE INDEX request_replies_at ON request_replies(at)
"""),
    # Attribution (edge/sessions.py): a session is anonymous, one identified read, or a
    # kiosk session that ends; event_customers says exactly which raw reads are whose, so
    # erasure deletes those and nobody else's, and whatever deletes a raw read (erasure,
    # retention) takes its attribution with it. Sessions from before are kind 'legacy'.
    ("0006_attribution", """
ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'legacy';
ALTER TABLE sessions ADD COLUMN ended_at REAL;
ALTER TABLE sessions ADD COLUMN end_reason TEXT;
UPDATE sessions SET ended_at = last_at, end_reason = 'legacy';
CREATE INDEX sessions_customer ON sessions(customer_id);
CREATE TABLE event_customers (
  device_id TEXT NOT NULL,
  msg_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  PRIMARY KEY (device_id, msg_id, customer_id)
);
CREATE INDEX event_customers_customer ON event_customers(customer_id);
CREATE TRIGGER events_forget_customers AFTER DELETE ON events BEGIN
  DELETE FROM event_customers WHERE device_id = OLD.device_id AND msg_id = OLD.msg_id;
END
"""),
    # Signage and shelf labels: product content (promotion, images in the asset cache),
    # the store's playlists, and per label what the edge sent and what the label acked.
    ("0007_signage_labels", """
CREATE TABLE product_content (
  gtin TEXT PRIMARY KEY,
  promo TEXT,
  was_price_cents INTEGER,
  images TEXT NOT NULL DEFAULT '[]',
  updated_at REAL NOT NULL
);
CREATE TABLE signage_playlists (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  doc TEXT NOT NULL,
  version TEXT NOT NULL,
  loaded_at REAL NOT NULL
);
CREATE TABLE shelf_labels (
  device_id TEXT PRIMARY KEY,
  gtin TEXT NOT NULL,
  size TEXT NOT NULL DEFAULT '2.9',
  zone TEXT,
  want_hash TEXT,
  want_price_cents INTEGER,
  sent_at REAL,
  acked_hash TEXT,
  acked_price_cents INTEGER,
  acked_at REAL,
  refused INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
);
CREATE INDEX shelf_labels_gtin ON shelf_labels(gtin)
"""),
    # Quarantine bounded: oversize payloads kept as a prefix and a hash, a quota of rows
    # per device (beyond it, counts per device and reason), retention by age.
    ("0008_quarantine_bounds", """
ALTER TABLE quarantine ADD COLUMN sha256 TEXT;
ALTER TABLE quarantine ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
CREATE INDEX quarantine_device ON quarantine(device_id);
CREATE TABLE quarantine_overflow (
  device_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  count INTEGER NOT NULL,
  first_at REAL NOT NULL,
  last_at REAL NOT NULL,
  PRIMARY KEY (device_id, reason)
)
"""),
    # Devices the edge cut off at the broker for flooding (edge/flood.py).
    ("0009_flood_cutoffs", """
CREATE TABLE device_cutoffs (
  device_id TEXT PRIMARY KEY,
  cut_at REAL NOT NULL,
  until REAL NOT NULL,
  reason TEXT NOT NULL,
  dropped INTEGER NOT NULL DEFAULT 0,
  reinstated_at REAL
)
"""),
    # Retention (edge/retention.py): what the panel's counts need once old rows are gone.
    ("0010_retention_rollups", """
CREATE TABLE event_daily (
  day TEXT NOT NULL,
  device_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (day, device_id, channel)
);
CREATE TABLE session_daily (
  day TEXT NOT NULL,
  device_id TEXT NOT NULL,
  sessions INTEGER NOT NULL,
  identified INTEGER NOT NULL,
  PRIMARY KEY (day, device_id)
);
CREATE TABLE quarantine_daily (
  day TEXT NOT NULL,
  reason TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (day, reason)
)
"""),
    # Kiosk orders (edge/kiosk_service.py): committed with their outbox row before the
    # kiosk hears "placed"; (device_id, client_order_id) makes a retried request a no-op.
    # The customer summaries fetched from central (edge/kiosk_profiles.py, also the
    # offline copy) and wish-lists added at the kiosk.
    ("0011_kiosk", """
CREATE TABLE kiosk_orders (
  order_id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL,
  client_order_id TEXT NOT NULL,
  session_id TEXT,
  customer_id TEXT,
  status TEXT NOT NULL,
  total_cents INTEGER NOT NULL,
  currency TEXT NOT NULL,
  points_spent INTEGER NOT NULL DEFAULT 0,
  points_earned INTEGER NOT NULL DEFAULT 0,
  pickup_code TEXT NOT NULL,
  payment_ref TEXT,
  payload TEXT NOT NULL,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  UNIQUE (device_id, client_order_id)
);
CREATE INDEX kiosk_orders_customer ON kiosk_orders(customer_id);
CREATE TABLE customer_cache (
  customer_id TEXT PRIMARY KEY,
  points INTEGER NOT NULL DEFAULT 0,
  consent INTEGER NOT NULL DEFAULT 0,
  consent_local INTEGER,
  recent TEXT NOT NULL DEFAULT '[]',
  fetched_at REAL NOT NULL
);
CREATE TABLE kiosk_wishlist (
  customer_id TEXT NOT NULL,
  gtin TEXT NOT NULL,
  added_at REAL NOT NULL,
  PRIMARY KEY (customer_id, gtin)
)
"""),
    # The panel as a manager's tool (edge/panel/, edge/analytics.py): users a manager can
    # disable, hourly interest aggregates that outlive the outbox rows they were counted
    # from (the cursor says how far they got), and a history of each device's state.
    ("0012_panel_analytics", """
ALTER TABLE panel_users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
CREATE TABLE interest_hourly (
  hour REAL NOT NULL,
  zone TEXT NOT NULL DEFAULT '',
  shelf TEXT NOT NULL DEFAULT '',
  gtin TEXT NOT NULL DEFAULT '',
  taps INTEGER NOT NULL,
  PRIMARY KEY (hour, zone, shelf, gtin)
);
CREATE TABLE analytics_cursor (
  name TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
);
CREATE TABLE device_state_history (
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL,
  state TEXT NOT NULL,
  at REAL NOT NULL
);
CREATE INDEX device_state_history_device ON device_state_history(device_id, at);
CREATE TABLE device_state_last (
  device_id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  since REAL NOT NULL
);
CREATE TABLE device_latest (
  device_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  received_at REAL NOT NULL,
  payload TEXT NOT NULL,
  PRIMARY KEY (device_id, channel)
);
CREATE TABLE product_daily (
  day REAL NOT NULL,
  gtin TEXT NOT NULL,
  taps INTEGER NOT NULL DEFAULT 0,
  ordered INTEGER NOT NULL DEFAULT 0,
  orders INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (day, gtin)
)
"""),
    # The layout's own price, kept apart from the price in force: a product sold only
    # locally falls back to it when a markdown is removed, and a restart re-seeding the
    # layout no longer overwrites a central price or a markdown with it.
    ("0013_layout_prices", """
ALTER TABLE products ADD COLUMN layout_price_cents INTEGER;
"""),
    # The order lifecycle between central and the store (edge/order_status.py,
    # edge/order_feed.py): kiosk_orders is the store's orders table and also holds the
    # web orders central routes here (channel 'web', device_id = the channel,
    # client_order_id = the order id); every status change, made here or in central,
    # is kept with who made it, and central's changes with their seq in its log.
    ("0014_order_lifecycle", """
ALTER TABLE kiosk_orders ADD COLUMN channel TEXT NOT NULL DEFAULT 'kiosk';
CREATE TABLE order_history (
  id INTEGER PRIMARY KEY,
  order_id TEXT NOT NULL,
  previous TEXT,
  status TEXT NOT NULL,
  origin TEXT NOT NULL,
  changed_by TEXT,
  at REAL NOT NULL,
  central_seq INTEGER UNIQUE
);
CREATE INDEX order_history_order ON order_history(order_id, id)
"""),
    # Kiosk points on central's ledger (edge/kiosk_loyalty.py): one row per order and
    # direction, from the hold at placement to central's answer; and the kiosk's own
    # consent decision with the outbox event that carries it to central.
    ("0015_kiosk_loyalty", """
CREATE TABLE kiosk_loyalty (
  order_id TEXT NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('debit', 'credit')),
  customer_id TEXT NOT NULL,
  points INTEGER NOT NULL CHECK (points > 0),
  event_id TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL CHECK (state IN ('held', 'pending', 'posted', 'refused')),
  reason TEXT,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  PRIMARY KEY (order_id, direction)
);
CREATE INDEX kiosk_loyalty_customer ON kiosk_loyalty(customer_id, state);
ALTER TABLE customer_cache ADD COLUMN consent_event TEXT
"""),
    # The latest preview of each signage screen (edge/screen_previews.py): one row per
    # screen, replaced by each new one, never in events (a thumbnail is not a fact).
    ("0016_screen_previews", """
CREATE TABLE screen_previews (
  device_id TEXT PRIMARY KEY,
  received_at REAL NOT NULL,
  device_ts REAL,
  item_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  trigger TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  frame_width INTEGER NOT NULL,
  frame_height INTEGER NOT NULL,
  jpeg BLOB NOT NULL
)
"""),
    # Why central refused an order or a status change for good (edge/forwarder.py): the
    # outbox row is a dead letter, and the order says so (the panel's operations page and
    # pickup queue show it; kept past outbox cleanup) until a manager marks it settled.
    ("0017_order_refusals", """
ALTER TABLE kiosk_orders ADD COLUMN central_error TEXT;
ALTER TABLE kiosk_orders ADD COLUMN refusal_settled_by TEXT;
ALTER TABLE kiosk_orders ADD COLUMN refusal_settled_at REAL;
CREATE INDEX kiosk_orders_refused ON kiosk_orders(central_error) WHERE central_error IS NOT NULL
"""),
]


class MigrationError(RuntimeError):
    """The database is newer than this code, or a migration failed."""


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) on an autocommit connection.

    On any error, the ``COMMIT``'s own included, it rolls back only if SQLite has
    not already: a ``COMMIT`` refused by a full disk ends the transaction itself, and
    a bare ``ROLLBACK`` then raised "no transaction is active", hiding the real error
    (it killed the writer process on a full disk). A ``COMMIT`` that fails and leaves
    the transaction open (busy) is rolled back, so the connection is never left stuck
    inside a transaction that the next ``BEGIN`` would trip over.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def connect(path: str | Path, *, synchronous: str = "NORMAL",
            busy_timeout_s: float = 30.0, create_dirs: bool = True) -> sqlite_utils.Database:
    """Open the edge database with the pragmas every process must agree on.

    The edge node itself opens it through :func:`edge.startup.open_edge_db`
    (``create_dirs=False``): a missing data directory is a fault to report, not
    to paper over with a fresh empty database on the wrong disk.
    """
    if create_dirs and str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                           timeout=busy_timeout_s)
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # no write when it is
        conn.execute("PRAGMA journal_mode=WAL")
    if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
        raise MigrationError(f"refusing synchronous={synchronous!r}: NORMAL, FULL or EXTRA")
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
    return sqlite_utils.Database(conn)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements; a trigger body's own ``;`` does not end one."""
    out: list[str] = []
    buf = ""
    for piece in sql.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \n;"):
        out.append(buf.strip())
    return out


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply missing migrations in order; return the names applied now."""
    conn = db.conn
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    known = {name for name, _ in MIGRATIONS}
    if done - known:
        raise MigrationError(f"database has unknown migrations {sorted(done - known)}: newer code?")
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO _migrations VALUES (?, strftime('%s','now'))", (name,))
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
