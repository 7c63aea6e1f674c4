-- Webhooks (docs/events.md): endpoints that receive the audit log's events, each with a
-- durable cursor, the seq of the last audit entry it is done with (delivered, or not of its
-- types), so delivery resumes after a restart or a crash exactly where it stopped.
CREATE TABLE webhooks (
	id TEXT PRIMARY KEY,                  -- "w-" and 32 hex digits
	url TEXT NOT NULL,                    -- http(s)://host[:port][/path], checked at creation
	types TEXT NOT NULL,                  -- comma-separated event types or "prefix.*" or "*"
	secret TEXT NOT NULL,                 -- HMAC-SHA-256 key (64 hex digits), shown once
	created_at INTEGER NOT NULL,
	created_by TEXT NOT NULL,
	cursor INTEGER NOT NULL CHECK (cursor >= 0),
	state TEXT NOT NULL CHECK (state IN ('active', 'dead')),
	attempts INTEGER NOT NULL DEFAULT 0,  -- failed attempts at the event after the cursor
	next_at INTEGER NOT NULL DEFAULT 0,   -- Unix seconds of the next attempt (backoff)
	last_error TEXT,                      -- why the last attempt failed
	delivered INTEGER NOT NULL DEFAULT 0  -- events delivered so far
) STRICT;
