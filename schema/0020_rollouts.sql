-- 0020: staged canary rollouts (docs/rollouts.md). A rollout deploys one release in stages to
-- the devices its target filter matches; each device that joins gets a member row, and the
-- counters below are kept in the same transaction as every member change, so progress is read
-- without recounting. Target filters and per-tag budgets match device tags (the table is
-- 0010's; created here only if absent, with the same columns).

CREATE TABLE IF NOT EXISTS device_tags (
	device_id TEXT NOT NULL REFERENCES devices (id),
	tag       TEXT NOT NULL,                    -- "key=value" or a plain label
	PRIMARY KEY (device_id, tag)
) STRICT, WITHOUT ROWID;

CREATE TABLE rollouts (
	id               TEXT PRIMARY KEY,          -- "r-" and 32 hex digits
	name             TEXT NOT NULL,
	release_id       TEXT NOT NULL REFERENCES releases (id),
	spec             TEXT NOT NULL,             -- the definition, encoded by server/rollout
	hash_key         TEXT NOT NULL,             -- 32 random bytes, hex: the membership key
	state            TEXT NOT NULL DEFAULT 'draft'
	                 CHECK (state IN ('draft', 'running', 'paused', 'waiting_approval',
	                                  'completed', 'aborted')),
	reason           TEXT NOT NULL DEFAULT '',  -- why paused, aborted or completed
	stage            INTEGER NOT NULL DEFAULT 0,
	stage_started_at INTEGER,
	ack_failures     INTEGER NOT NULL DEFAULT 0, -- failures of the stage accepted by a resume
	ack_finished     INTEGER NOT NULL DEFAULT 0,
	retry_attempts   INTEGER NOT NULL DEFAULT 1 CHECK (retry_attempts >= 1),
	retry_backoff    INTEGER NOT NULL DEFAULT 0 CHECK (retry_backoff >= 0), -- seconds
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX rollouts_by_state ON rollouts (state, created_at);

CREATE TABLE rollout_members (
	rollout_id      TEXT NOT NULL REFERENCES rollouts (id),
	device_id       TEXT NOT NULL REFERENCES devices (id),
	stage           INTEGER NOT NULL,           -- the stage running when the device joined
	state           TEXT NOT NULL
	                CHECK (state IN ('pending', 'downloading', 'installing', 'trial',
	                                 'succeeded', 'failed', 'rolled_back', 'skipped')),
	reason          TEXT NOT NULL DEFAULT '',
	deployment_id   TEXT REFERENCES deployments (id),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,
	budget_scope    TEXT NOT NULL DEFAULT '',   -- the tag counted in a per-tag budget
	updated_at      INTEGER NOT NULL,
	PRIMARY KEY (rollout_id, device_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX rollout_members_by_state ON rollout_members (rollout_id, state, device_id);
CREATE UNIQUE INDEX rollout_members_by_deployment ON rollout_members (deployment_id)
	WHERE deployment_id IS NOT NULL;

-- Members per (rollout, stage, state), maintained incrementally.
CREATE TABLE rollout_counts (
	rollout_id TEXT NOT NULL REFERENCES rollouts (id),
	stage      INTEGER NOT NULL,
	state      TEXT NOT NULL,
	n          INTEGER NOT NULL CHECK (n >= 0),
	PRIMARY KEY (rollout_id, stage, state)
) STRICT, WITHOUT ROWID;

-- Devices updating now per (rollout, scope): scope '' is the whole rollout, else a tag.
CREATE TABLE rollout_active (
	rollout_id TEXT NOT NULL REFERENCES rollouts (id),
	scope      TEXT NOT NULL,
	n          INTEGER NOT NULL CHECK (n >= 0),
	PRIMARY KEY (rollout_id, scope)
) STRICT, WITHOUT ROWID;

-- Failure reasons per rollout, for the ranked list.
CREATE TABLE rollout_reasons (
	rollout_id TEXT NOT NULL REFERENCES rollouts (id),
	reason     TEXT NOT NULL,
	n          INTEGER NOT NULL,
	PRIMARY KEY (rollout_id, reason)
) STRICT, WITHOUT ROWID;
