-- 0050: health after the confirm (docs/rollouts.md, "Health after the confirm"). A member
-- that succeeded keeps the largest counters its device reported in the check-in's `health`
-- object (docs/device-api.md) during the post-confirm soak of its rollout: reboots, watchdog
-- resets and failed health checks since the buy, and the uptime of its boot. regressed_at is
-- the time the first report showed a watchdog reset or a failed health check (0: none).
-- Counters only grow, so a retried or reordered check-in changes nothing.

ALTER TABLE rollout_members ADD COLUMN health_reboots INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollout_members ADD COLUMN health_watchdog_resets INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollout_members ADD COLUMN health_failed_checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollout_members ADD COLUMN health_uptime INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollout_members ADD COLUMN health_at INTEGER NOT NULL DEFAULT 0; -- first report, or last that raised one
ALTER TABLE rollout_members ADD COLUMN regressed_at INTEGER NOT NULL DEFAULT 0;

-- Regressions an operator accepted by resuming a rollout halted for them.
ALTER TABLE rollouts ADD COLUMN ack_regressed INTEGER NOT NULL DEFAULT 0;

CREATE INDEX rollout_members_regressed ON rollout_members (rollout_id, regressed_at)
	WHERE regressed_at > 0;
