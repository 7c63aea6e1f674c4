-- 0010: the audit log (append-only, hash-chained; UPDATE and DELETE refused by triggers) and
-- its signed checkpoints; principals and API tokens; device admission states and tags.

CREATE TABLE audit_log (
	seq        INTEGER PRIMARY KEY CHECK (seq >= 1),
	at         INTEGER NOT NULL,               -- Unix seconds
	actor      TEXT NOT NULL,
	role       TEXT,
	action     TEXT NOT NULL,
	device_id  TEXT,
	rollout_id TEXT,
	release_id TEXT,
	object     TEXT,
	before     TEXT,                           -- JSON text
	after      TEXT,                           -- JSON text
	detail     TEXT,
	prev       TEXT NOT NULL,                  -- hash of entry seq - 1 (64 zeros for seq 1)
	hash       TEXT NOT NULL                   -- SHA-256 of the canonical entry, hex
) STRICT;

CREATE INDEX audit_by_at ON audit_log (at);
CREATE INDEX audit_by_actor ON audit_log (actor, seq);
CREATE INDEX audit_by_action ON audit_log (action, seq);
CREATE INDEX audit_by_device ON audit_log (device_id, seq) WHERE device_id IS NOT NULL;
CREATE INDEX audit_by_rollout ON audit_log (rollout_id, seq) WHERE rollout_id IS NOT NULL;
CREATE INDEX audit_by_release ON audit_log (release_id, seq) WHERE release_id IS NOT NULL;

-- Append only, in order: the database itself refuses anything else.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_in_order BEFORE INSERT ON audit_log
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit_log)
  OR NEW.prev IS NOT coalesce((SELECT hash FROM audit_log WHERE seq = NEW.seq - 1),
                              '0000000000000000000000000000000000000000000000000000000000000000')
BEGIN
	SELECT RAISE(ABORT, 'audit_log entries are appended in order onto the chain head');
END;

CREATE TABLE audit_checkpoints (
	seq  INTEGER PRIMARY KEY REFERENCES audit_log (seq),
	hash TEXT NOT NULL,                        -- the chain head signed (hash of entry seq)
	at   INTEGER NOT NULL,
	sig  TEXT NOT NULL                         -- base64 DER ECDSA P-256 / SHA-256
) STRICT;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
	SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
	SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;

-- Principals that hold API tokens (certificate holders need no row: CN and OU say it all,
-- but a row with the same name that is disabled refuses the certificate too).
CREATE TABLE principals (
	name       TEXT PRIMARY KEY,
	role       TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'auditor')),
	disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at INTEGER NOT NULL,
	created_by TEXT NOT NULL
) STRICT;

CREATE TABLE api_tokens (
	id         TEXT PRIMARY KEY,               -- "t-" and 16 hex digits, public
	principal  TEXT NOT NULL REFERENCES principals (name),
	hash       TEXT NOT NULL UNIQUE,           -- SHA-256 of the secret, hex; the secret is not kept
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER,
	created_by TEXT NOT NULL
) STRICT;

-- Admission: approved devices may use the device API; pending wait for an operator; rejected
-- are refused. Existing devices were admitted under the auto policy: approved.
ALTER TABLE devices ADD COLUMN admission TEXT NOT NULL DEFAULT 'approved'
	CHECK (admission IN ('pending', 'approved', 'rejected'));
CREATE INDEX devices_by_admission ON devices (admission, id);

CREATE TABLE device_tags (
	device_id TEXT NOT NULL REFERENCES devices (id),
	tag       TEXT NOT NULL,
	PRIMARY KEY (device_id, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX device_tags_by_tag ON device_tags (tag, device_id);
