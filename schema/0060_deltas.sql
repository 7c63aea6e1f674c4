-- 0060: deltas (docs/formats.md, "Delta metadata"; docs/device-api.md, "Delta offers"). A
-- delta's bytes are an image of the image folder (content-addressed by the SHA-256 of the whole
-- file); this table holds its signed metadata and what it says, one delta per release and base.
-- delta_offers remembers which delta each deployment was last offered (so that its file is
-- served to that device alone, and a "delta failed" report names it); delta_failures counts the
-- failures and refusals devices reported, one row per delta and device.

CREATE TABLE deltas (
	id           TEXT PRIMARY KEY,              -- SHA-256 of the metadata payload, hex
	release_id   TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
	base_sha256  TEXT NOT NULL,
	base_size    INTEGER NOT NULL CHECK (base_size >= 1),
	image_sha256 TEXT NOT NULL REFERENCES images (sha256),  -- the delta file
	size         INTEGER NOT NULL CHECK (size >= 1),
	head_sha256  TEXT NOT NULL,                 -- the metadata's delta.sha256 (first unit)
	envelope     TEXT NOT NULL,                 -- the DSSE envelope as uploaded
	created_at   INTEGER NOT NULL,
	UNIQUE (release_id, base_sha256)
) STRICT;

CREATE INDEX deltas_by_image ON deltas (image_sha256);

CREATE TABLE delta_offers (
	deployment_id TEXT PRIMARY KEY REFERENCES deployments (id),
	delta_id      TEXT NOT NULL REFERENCES deltas (id) ON DELETE CASCADE,
	offered_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX delta_offers_by_delta ON delta_offers (delta_id);

CREATE TABLE delta_failures (
	delta_id      TEXT NOT NULL REFERENCES deltas (id) ON DELETE CASCADE,
	device_id     TEXT NOT NULL,
	kind          TEXT NOT NULL CHECK (kind IN ('failed', 'refused')),
	count         INTEGER NOT NULL CHECK (count >= 1),
	deployment_id TEXT NOT NULL,                -- of the last report
	reason        TEXT NOT NULL,                -- the last reason reported
	at            INTEGER NOT NULL,
	PRIMARY KEY (delta_id, device_id, kind)
) STRICT, WITHOUT ROWID;
