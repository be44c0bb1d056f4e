"""The schema, as an append-only list of forward migrations: one statement per entry.

`PRAGMA user_version` holds how many entries a store has applied. Never edit
an entry that has shipped; append a new one.
"""

NAMESPACE_MIGRATION = "ALTER TABLE runs ADD COLUMN namespace TEXT NOT NULL DEFAULT ''"

MIGRATIONS: list[str] = [
    """CREATE TABLE definitions (
        tag TEXT NOT NULL,
        version TEXT NOT NULL,
        name TEXT,
        source_path TEXT,
        schema TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (tag, version)
    )""",
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        tag TEXT NOT NULL,
        version TEXT,
        status TEXT NOT NULL,
        env TEXT,
        input TEXT NOT NULL,
        output TEXT,
        error TEXT,
        failed_step TEXT,
        rollback_result TEXT,
        context TEXT,
        state TEXT,
        idempotency_key TEXT,
        parent_id TEXT,
        replayed_from TEXT,
        restarted_from TEXT,
        resumed_from TEXT,
        lineage TEXT,
        options TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        deadline REAL,
        owner TEXT,
        lease_expires_at REAL,
        ready_at REAL,
        waiting TEXT,
        cancel_requested TEXT,
        current_step TEXT,
        phase TEXT,
        schedule_id TEXT
    )""",
    "CREATE UNIQUE INDEX runs_idempotency ON runs (tag, idempotency_key) WHERE idempotency_key IS NOT NULL",
    "CREATE INDEX runs_created ON runs (created_at)",
    "CREATE INDEX runs_tag_created ON runs (tag, created_at)",
    "CREATE INDEX runs_status_created ON runs (status, created_at)",
    "CREATE INDEX runs_ready ON runs (ready_at) WHERE status IN ('pending', 'running')",
    "CREATE INDEX runs_parent ON runs (parent_id) WHERE parent_id IS NOT NULL",
    "CREATE INDEX runs_schedule ON runs (schedule_id) WHERE schedule_id IS NOT NULL",
    """CREATE TABLE steps (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        tag TEXT NOT NULL,
        status TEXT NOT NULL,
        input TEXT,
        output TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        started_at REAL,
        ended_at REAL,
        options TEXT,
        has_rollback INTEGER NOT NULL DEFAULT 0,
        critical INTEGER NOT NULL DEFAULT 0,
        rollback_status TEXT,
        rollback_error TEXT,
        wake_at REAL,
        source TEXT,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE attempts (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        started_at REAL NOT NULL,
        duration_ms INTEGER NOT NULL,
        error TEXT,
        PRIMARY KEY (run_id, seq, attempt)
    ) WITHOUT ROWID""",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        ts REAL NOT NULL,
        type TEXT NOT NULL,
        step TEXT,
        data TEXT
    )""",
    "CREATE INDEX events_run ON events (run_id, id)",
    """CREATE TABLE signals (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        payload TEXT,
        created_at REAL NOT NULL,
        consumed_seq INTEGER
    )""",
    "CREATE INDEX signals_run ON signals (run_id, consumed_seq, id)",
    """CREATE TABLE hooks (
        token TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        name TEXT NOT NULL,
        data TEXT,
        created_at REAL NOT NULL,
        used_at REAL
    )""",
    """CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        tag TEXT NOT NULL,
        input TEXT NOT NULL,
        env TEXT,
        kind TEXT NOT NULL,
        cron TEXT,
        timezone TEXT,
        run_at REAL,
        next_fire_at REAL,
        options TEXT,
        paused INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        last_fired_at REAL,
        last_run_id TEXT,
        fire_count INTEGER NOT NULL DEFAULT 0,
        missed TEXT
    )""",
    "CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE paused = 0",
    """CREATE TABLE topic_messages (
        broker TEXT NOT NULL,
        topic TEXT NOT NULL,
        offset INTEGER NOT NULL,
        message TEXT NOT NULL,
        run_id TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (broker, topic, offset)
    ) WITHOUT ROWID""",
    """CREATE TABLE quota_buckets (
        quota TEXT NOT NULL,
        key TEXT NOT NULL,
        tokens REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (quota, key)
    ) WITHOUT ROWID""",
    # The fencing token of the current claim (issue 14): an owner's writes succeed only while it is current.
    "ALTER TABLE runs ADD COLUMN lease TEXT",
    # Why no worker could load a run's workflow, and how often it tried (poison runs back off, then fail).
    "ALTER TABLE runs ADD COLUMN load_error TEXT",
    "ALTER TABLE runs ADD COLUMN load_attempts INTEGER NOT NULL DEFAULT 0",
    # Namespaces (issue 14): a store shared by projects keeps each one's runs, definitions and schedules apart.
    NAMESPACE_MIGRATION,
    "DROP INDEX runs_idempotency",
    "CREATE UNIQUE INDEX runs_idempotency ON runs (namespace, tag, idempotency_key) WHERE idempotency_key IS NOT NULL",
    """CREATE TABLE definitions_ns (
        namespace TEXT NOT NULL DEFAULT '',
        tag TEXT NOT NULL,
        version TEXT NOT NULL,
        name TEXT,
        source_path TEXT,
        schema TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (namespace, tag, version)
    )""",
    "INSERT INTO definitions_ns (tag, version, name, source_path, schema, created_at) "
    "SELECT tag, version, name, source_path, schema, created_at FROM definitions ORDER BY rowid",
    "DROP TABLE definitions",
    "ALTER TABLE definitions_ns RENAME TO definitions",
    "ALTER TABLE schedules ADD COLUMN namespace TEXT NOT NULL DEFAULT ''",
    "CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT)",
    """CREATE TABLE topic_messages_ns (
        namespace TEXT NOT NULL DEFAULT '',
        broker TEXT NOT NULL,
        topic TEXT NOT NULL,
        offset INTEGER NOT NULL,
        message TEXT NOT NULL,
        run_id TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (namespace, broker, topic, offset)
    ) WITHOUT ROWID""",
    "INSERT INTO topic_messages_ns (broker, topic, offset, message, run_id, created_at) "
    "SELECT broker, topic, offset, message, run_id, created_at FROM topic_messages",
    "DROP TABLE topic_messages",
    "ALTER TABLE topic_messages_ns RENAME TO topic_messages",
    """CREATE TABLE quota_buckets_ns (
        namespace TEXT NOT NULL DEFAULT '',
        quota TEXT NOT NULL,
        key TEXT NOT NULL,
        tokens REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (namespace, quota, key)
    ) WITHOUT ROWID""",
    "INSERT INTO quota_buckets_ns (quota, key, tokens, updated_at) SELECT quota, key, tokens, updated_at FROM quota_buckets",
    "DROP TABLE quota_buckets",
    "ALTER TABLE quota_buckets_ns RENAME TO quota_buckets",
    # The serve API (issue 20): caller metadata kept with a run, shown by status, list and the API.
    "ALTER TABLE runs ADD COLUMN metadata TEXT",
    # The change feed: one row per status change, event and completed step, in commit order,
    # so `serve` can tail every run of the store (written by any process) with one cursor.
    # Filled by FEED_TRIGGERS (below) once a store is first served.
    """CREATE TABLE feed (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        ref INTEGER,
        status TEXT,
        ts REAL
    )""",
    "CREATE INDEX feed_run ON feed (run_id, id)",
    # Messaging on real brokers (issue 23): message ids, consumer offsets, the transactional outbox.
    "ALTER TABLE topic_messages ADD COLUMN message_id TEXT",
    "CREATE UNIQUE INDEX topic_messages_id ON topic_messages (namespace, broker, topic, message_id) WHERE message_id IS NOT NULL",
    """CREATE TABLE consumer_offsets (
        consumer TEXT NOT NULL,
        broker TEXT NOT NULL,
        topic TEXT NOT NULL,
        next_offset INTEGER NOT NULL,
        PRIMARY KEY (consumer, broker, topic)
    ) WITHOUT ROWID""",
    """CREATE TABLE outbox (
        message_id TEXT PRIMARY KEY,
        broker TEXT NOT NULL,
        topic TEXT NOT NULL,
        message TEXT NOT NULL,
        run_id TEXT,
        step TEXT,
        created_at REAL NOT NULL,
        claimed_by TEXT,
        claimed_until REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        sent_at REAL
    )""",
    "CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL",
    # Workers that scale (issue 19): claims walk an index of what is due and stop after the
    # batch, whatever the queue depth. `runs_queue` holds unfinished runs nobody owns (queued,
    # woken, signalled, sleeping), by project and due time; `runs_leased` the ones an owner holds, by owner,
    # so that finding this host's owners, a dead owner's runs and expired leases reads only
    # the runs in flight. `runs_ready` (every unfinished run) is what they replace.
    "DROP INDEX runs_ready",
    "CREATE INDEX runs_queue ON runs (namespace, ready_at) WHERE status IN ('pending', 'running') AND owner IS NULL",
    "CREATE INDEX runs_leased ON runs (owner, lease_expires_at) WHERE status IN ('pending', 'running') AND owner IS NOT NULL",
    # `related ID` looks up each lineage column (issue 19): without these it scanned every run.
    "CREATE INDEX runs_replayed ON runs (replayed_from) WHERE replayed_from IS NOT NULL",
    "CREATE INDEX runs_restarted ON runs (restarted_from) WHERE restarted_from IS NOT NULL",
    "CREATE INDEX runs_resumed ON runs (resumed_from) WHERE resumed_from IS NOT NULL",
    # `status 9c1d7b`: a run named by the end of its id, found without reading every run (issue 19).
    "CREATE INDEX runs_tail ON runs (substr(id, -6))",
]

# The triggers that fill `feed`, so every writer (a CLI, a worker, another host's process) does,
# without knowing about it. Not migrations: `serve` installs them when it first serves a store
# (`SqliteStore.enable_feed`), because they cost every step one more row (about a fifth of the
# hot path's CPU): a store nobody serves does not pay for a stream nobody reads.
FEED_TRIGGERS: list[str] = [
    """CREATE TRIGGER IF NOT EXISTS feed_run_created AFTER INSERT ON runs BEGIN
        INSERT INTO feed (run_id, kind, status, ts) VALUES (NEW.id, 'status', NEW.status, NEW.created_at);
    END""",
    """CREATE TRIGGER IF NOT EXISTS feed_run_status AFTER UPDATE OF status ON runs WHEN OLD.status IS NOT NEW.status BEGIN
        INSERT INTO feed (run_id, kind, status, ts)
        VALUES (NEW.id, 'status', NEW.status, (julianday('now') - 2440587.5) * 86400.0);
    END""",
    """CREATE TRIGGER IF NOT EXISTS feed_event AFTER INSERT ON events BEGIN
        INSERT INTO feed (run_id, kind, ref, ts) VALUES (NEW.run_id, 'event', NEW.id, NEW.ts);
    END""",
    """CREATE TRIGGER IF NOT EXISTS feed_step AFTER INSERT ON steps WHEN NEW.kind = 'step' AND NEW.status = 'completed' BEGIN
        INSERT INTO feed (run_id, kind, ref, ts) VALUES (NEW.run_id, 'step', NEW.seq, NEW.ended_at);
    END""",
]
