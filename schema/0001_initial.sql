-- 0001: devices and their pinned identities, revoked certificates, images, root metadata,
-- releases, deployments and their event reports. Applied by otad in one transaction;
-- PRAGMA user_version records the number of the last applied migration.

CREATE TABLE devices (
	id             TEXT PRIMARY KEY,            -- certificate subject CN
	fingerprint    TEXT NOT NULL,               -- SHA-256 of the certificate DER, lowercase hex
	status         TEXT NOT NULL DEFAULT 'admitted'
	               CHECK (status IN ('admitted', 'decommissioned')),
	admitted_at    INTEGER NOT NULL,            -- Unix seconds
	last_seen      INTEGER,
	hw_variant     TEXT,
	version        TEXT,
	security_floor INTEGER,
	root_version   INTEGER,
	active_slot    TEXT,
	boot_state     TEXT,
	last_outcome   TEXT                         -- JSON object as last reported
) STRICT;

CREATE TABLE revoked_certificates (
	fingerprint TEXT PRIMARY KEY,
	reason      TEXT NOT NULL DEFAULT '',
	revoked_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE images (
	sha256     TEXT PRIMARY KEY,                -- lowercase hex; file images/<sha256>
	size       INTEGER NOT NULL CHECK (size >= 0),
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE roots (
	version    INTEGER PRIMARY KEY CHECK (version >= 1),
	envelope   TEXT NOT NULL,                   -- the DSSE envelope as uploaded
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE releases (
	id               TEXT PRIMARY KEY,          -- SHA-256 of the manifest payload, hex
	name             TEXT NOT NULL,
	version          TEXT NOT NULL,
	security_version INTEGER NOT NULL CHECK (security_version >= 0),
	image_sha256     TEXT NOT NULL REFERENCES images (sha256),
	image_size       INTEGER NOT NULL,
	image_format     TEXT NOT NULL,
	manifest_created INTEGER NOT NULL,
	envelope         TEXT NOT NULL,             -- the DSSE envelope as uploaded
	created_at       INTEGER NOT NULL,
	UNIQUE (name, version)
) STRICT;

CREATE TABLE release_hw_variants (
	release_id TEXT NOT NULL REFERENCES releases (id),
	hw_variant TEXT NOT NULL,
	PRIMARY KEY (release_id, hw_variant)
) STRICT, WITHOUT ROWID;

CREATE TABLE deployments (
	id          TEXT PRIMARY KEY,               -- "d-" and 32 hex digits
	device_id   TEXT NOT NULL REFERENCES devices (id),
	release_id  TEXT NOT NULL REFERENCES releases (id),
	status      TEXT NOT NULL DEFAULT 'active'
	            CHECK (status IN ('active', 'succeeded', 'failed', 'rolled_back', 'cancelled')),
	reason      TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	finished_at INTEGER
) STRICT;

-- One device has at most one active deployment.
CREATE UNIQUE INDEX deployments_one_active ON deployments (device_id) WHERE status = 'active';
CREATE INDEX deployments_by_device ON deployments (device_id, created_at);

CREATE TABLE deployment_events (
	deployment_id TEXT NOT NULL REFERENCES deployments (id),
	seq           INTEGER NOT NULL CHECK (seq >= 1),
	device_id     TEXT NOT NULL REFERENCES devices (id),
	status        TEXT NOT NULL,
	reason        TEXT NOT NULL DEFAULT '',
	version       TEXT,
	progress      INTEGER,
	received_at   INTEGER NOT NULL,
	PRIMARY KEY (deployment_id, seq)
) STRICT, WITHOUT ROWID;
