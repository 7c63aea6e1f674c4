-- 0040: the verdicts the rollout engine took (docs/rollouts.md, "Progress"): one row per halt,
-- stage success, wait for approval or completion, with the numbers it judged and the rule, so
-- the rollout's detail shows why it moved. Written in the transaction of the move itself.

CREATE TABLE rollout_verdicts (
	id          INTEGER PRIMARY KEY,           -- order of the verdicts
	rollout_id  TEXT NOT NULL REFERENCES rollouts (id),
	at          INTEGER NOT NULL,              -- Unix seconds
	stage       INTEGER NOT NULL,              -- counted from 1
	verdict     TEXT NOT NULL
	            CHECK (verdict IN ('halt', 'advance', 'wait_approval', 'complete')),
	rule        TEXT NOT NULL,                 -- failure_threshold | statistical_halt | success_threshold
	numbers     TEXT NOT NULL,                 -- JSON: the counts the verdict read
	reason      TEXT NOT NULL
) STRICT;

CREATE INDEX rollout_verdicts_by_rollout ON rollout_verdicts (rollout_id, id);
