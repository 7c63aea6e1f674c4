/*
 * The device agent's update state machine (docs/agent.md draws it). One struct fwa_agent per
 * device, driven by fwa_agent_init() once per boot and fwa_agent_step() after that.
 *
 * The invariants it keeps, whatever instant power is lost at:
 *  - nothing is written to the inactive slot before the manifest verified against the trusted
 *    root, the hardware variant and the security floor;
 *  - the slot is re-hashed in full from flash before the flash-update (trial) reboot;
 *  - a trial is bought only after every health check passed and the server acknowledged the
 *    trial report, and the floor is raised only after the bootrom confirms the buy;
 *  - a trial ends by the agent's own deadline at the latest: the watchdog is re-armed only
 *    while the trial makes progress and never past that deadline, and a failed buy (after
 *    which nothing would revert the trial on RP2350) ends in a reboot into the previous image;
 *  - every phase change is persisted (core/state.c) before the action that depends on it, so
 *    that a boot can always tell what happened: a running trial slot that is no longer a trial
 *    was bought, the previous slot running means the bootrom rolled the trial back;
 *  - reports are persisted in an outbox and resent until acknowledged (seq is the idempotency
 *    key, so a report resent after a power cut is counted once).
 */
#include <stddef.h>
#include <string.h>

#include "checkin.h"
#include "http.h"
#include "state.h"

#define API "/device/v1"
#define DEFAULT_POLL_S 300u
#define DEFAULT_RETRY_MIN_MS 1000u
#define DEFAULT_RETRY_MAX_MS 300000u
#define DEFAULT_IO_TIMEOUT_MS 10000u
/* Persist the download offset at least this often, so a resume loses little. */
#define CHECKPOINT_BYTES (64u * 1024u)
/* A delta's checkpoint, more often: its input is small, a resume re-downloads from it. */
#define DELTA_CHECKPOINT_BYTES (16u * 1024u)
/* Flash-update reboots per deployment when power is lost before the trial starts. */
#define TRIAL_TRIES 3
/* Delay between tries to reach the server during a trial (the watchdog bounds the total). */
#define TRIAL_RETRY_MS 500u
/* The trial watchdog is re-armed at most this often, so at most once per second of deadline. */
#define TRIAL_REARM_SPACING_MS 1000u

/* ---- small helpers ---- */

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static void say(struct fwa_agent *a, enum fwa_log_level lvl, const char *m1, const char *m2,
                const char *m3)
{
	char line[192];
	struct fwa_sb b;

	if (!a->port->log)
		return;
	fwa_sb_init(&b, line, sizeof(line));
	fwa_sb_str(&b, m1);
	if (m2)
		fwa_sb_str(&b, m2);
	if (m3)
		fwa_sb_str(&b, m3);
	a->port->log(a->port->ctx, lvl, b.overflow ? m1 : line);
}

static uint64_t now_ms(struct fwa_agent *a)
{
	return a->port->now_ms(a->port->ctx);
}

static const struct fwa_root *trusted(const struct fwa_agent *a)
{
	if (a->st.has_root && a->st.root.version > a->prov_root.version)
		return &a->st.root;
	return &a->prov_root;
}

/* The effective floor: the core's, raised to the hardware's when there is one. */
static uint32_t floor_now(struct fwa_agent *a)
{
	uint32_t hw = 0;

	if (a->port->hw_floor && a->port->hw_floor(a->port->ctx, &hw) == FWA_OK && hw > a->st.floor)
		return hw;
	return a->st.floor;
}

static uint32_t rand32(struct fwa_agent *a)
{
	uint32_t r = 0;

	if (a->port->random(a->port->ctx, &r, sizeof(r)) != FWA_OK)
		r = (uint32_t)now_ms(a) * 2654435761u;
	return r;
}

/* Exponential backoff with jitter: a delay in [d/2, d], d doubling per failure up to max. */
static uint32_t backoff(struct fwa_agent *a)
{
	uint32_t lo = a->cfg->retry_min_ms ? a->cfg->retry_min_ms : DEFAULT_RETRY_MIN_MS;
	uint32_t hi = a->cfg->retry_max_ms ? a->cfg->retry_max_ms : DEFAULT_RETRY_MAX_MS;
	uint64_t d = lo;
	uint32_t i;

	if (a->failures < 0xffffu)
		a->failures++;
	for (i = 1; i < a->failures && d < hi; i++)
		d *= 2;
	if (d > hi)
		d = hi;
	return (uint32_t)(d / 2 + rand32(a) % (d / 2 + 1));
}

static uint32_t io_timeout(const struct fwa_agent *a)
{
	return a->cfg->io_timeout_ms ? a->cfg->io_timeout_ms : DEFAULT_IO_TIMEOUT_MS;
}

static void feed(struct fwa_agent *a)
{
	/* Never during an unbought trial: only trial_progress() may extend a trial. */
	if (!a->boot.trial && a->port->watchdog_feed)
		a->port->watchdog_feed(a->port->ctx);
}

static uint64_t trial_end_ms(const struct fwa_agent *a)
{
	uint32_t s =
	    a->cfg->trial_deadline_s ? a->cfg->trial_deadline_s : FWA_TRIAL_DEADLINE_DEFAULT_S;

	return a->boot_ms + 1000u * (uint64_t)s;
}

/*
 * The trial moved forward (a health check passed, bytes moved to or from the server): re-arm
 * its watchdog, at most once a second, never to fire after the trial deadline, and at most
 * once per second of that deadline in all. A hung trial gets no more re-arms, and the
 * watchdog brings the previous image back within one period of its last progress.
 */
static void trial_progress(struct fwa_agent *a)
{
	uint64_t now, end = trial_end_ms(a);

	if (!a->boot.trial || a->trial_failed || !a->port->trial_rearm)
		return;
	now = now_ms(a);
	if (now >= end || 1000u * (uint64_t)a->trial_rearms >= end - a->boot_ms)
		return;
	if (a->trial_rearms && now - a->trial_rearm_ms < TRIAL_REARM_SPACING_MS)
		return;
	a->trial_rearms++;
	a->trial_rearm_ms = now;
	(void)a->port->trial_rearm(a->port->ctx,
	                           end - now > UINT32_MAX ? UINT32_MAX : (uint32_t)(end - now));
}

/* ---- state and outbox ---- */

static enum fwa_err persist(struct fwa_agent *a)
{
	enum fwa_err err;
	unsigned i, n = 0;

	/* Drop acknowledged reports now that a write happens anyway. */
	for (i = 0; i < a->st.nevents; i++)
		if (a->st.events[i].seq > a->acked)
			a->st.events[n++] = a->st.events[i];
	for (i = n; i < a->st.nevents; i++)
		memset(&a->st.events[i], 0, sizeof(a->st.events[i]));
	a->st.nevents = (uint8_t)n;
	err = fwa_state_save(a->port, &a->geo, &a->st, &a->st_area);
	if (err != FWA_OK)
		say(a, FWA_LOG_ERROR, "state write failed", NULL, NULL);
	return err;
}

/* Queue a report in RAM; the caller persists it with the phase change it belongs to. */
static void enqueue(struct fwa_agent *a, enum fwa_status status, bool on_target, const char *reason)
{
	struct fwa_event *e;
	unsigned i;

	if (a->st.nevents == FWA_OUTBOX_MAX) {
		/* Full: the oldest report gives way; the final outcome also travels in check-ins.
		 */
		for (i = 1; i < FWA_OUTBOX_MAX; i++)
			a->st.events[i - 1] = a->st.events[i];
		a->st.nevents--;
	}
	e = &a->st.events[a->st.nevents++];
	memset(e, 0, sizeof(*e));
	if (a->st.next_seq == 0)
		a->st.next_seq = 1;
	e->seq = a->st.next_seq++;
	e->status = (uint8_t)status;
	e->on_target = on_target;
	e->progress = a->st.dl_offset;
	copy_str(e->reason, sizeof(e->reason), reason);
}

static bool outbox_pending(const struct fwa_agent *a)
{
	unsigned i;

	for (i = 0; i < a->st.nevents; i++)
		if (a->st.events[i].seq > a->acked)
			return true;
	return false;
}

/* End the deployment with a final status (phase back to idle); the caller persists. */
static void finish(struct fwa_agent *a, enum fwa_status status, bool on_target, const char *why)
{
	enqueue(a, status, on_target, why);
	a->st.phase = FWA_PHASE_IDLE;
	a->st.outcome = (uint8_t)status;
	a->st.outcome_told = 0;
	a->outcome_saved = false;
	copy_str(a->st.outcome_reason, sizeof(a->st.outcome_reason), why);
	a->told_outcome = false;
}

/* ---- the connection: one per poll cycle ---- */

static void conn_close(struct fwa_agent *a)
{
	a->port->tr_close(a->port->ctx);
	a->conn_open = false;
}

/*
 * Send one request and read its answer's head. The requests of one poll cycle (the steps that
 * follow one another at once: check-in, download, reports) share a connection: the one the
 * previous answer left open carries the next request, and when it turns out to be closed before
 * a byte of the answer (a server ending an idle or used-up connection), the request goes once
 * more on a new connection. Every request of the agent is safe to repeat: check-ins and
 * downloads change nothing twice, reports are idempotent on (deployment, seq), and a renewal
 * answers the pair the server pinned.
 */
static enum fwa_err request(struct fwa_agent *a, const char *method, const char *path,
                            const char *extra, const char *body, size_t body_len,
                            struct fwa_http *h)
{
	bool reused = a->conn_open;
	enum fwa_err err;

	a->conn_open = false; /* until this answer was read whole */
	for (;;) {
		/* Each blocking part is bounded by its own timeout; each success is trial progress.
		 */
		err = fwa_http_send(a->port, !reused, method, a->cfg->host, path, extra, body,
		                    body_len, a->s->req, sizeof(a->s->req));
		if (err == FWA_OK) {
			trial_progress(a);
			err = fwa_http_read_head(h, a->port, a->s->head, sizeof(a->s->head),
			                         io_timeout(a));
			if (err == FWA_ERR_TRANSPORT && reused && h->eof && h->end == 0) {
				reused = false; /* closed by the server before answering: again */
				continue;
			}
		} else if (err == FWA_ERR_TRANSPORT && reused) {
			reused = false;
			continue;
		}
		return err;
	}
}

/* The answer was read whole: keep its connection for the next request when it allows. */
static void conn_done(struct fwa_agent *a, const struct fwa_http *h)
{
	if (fwa_http_reusable(h))
		a->conn_open = true;
	else
		conn_close(a);
}

/* One request, the whole answer body into s->body. */
static enum fwa_err call(struct fwa_agent *a, const char *method, const char *path,
                         const char *body, size_t body_len, int *status, size_t *len)
{
	struct fwa_http h;
	enum fwa_err err;

	err = request(a, method, path, NULL, body, body_len, &h);
	if (err == FWA_OK) {
		trial_progress(a);
		err = fwa_http_read_all(&h, a->s->body, sizeof(a->s->body), len);
	}
	if (err != FWA_OK) {
		conn_close(a);
		return err;
	}
	trial_progress(a);
	conn_done(a, &h);
	*status = h.resp.status;
	/* The old pair refused: the server may have pinned the pending one already. */
	if (h.resp.status == 403 && a->port->cred_refused) {
		conn_close(a); /* the next connection presents the other pair */
		a->port->cred_refused(a->port->ctx);
	}
	return FWA_OK;
}

/*
 * The answer (len bytes in a->s->body) is the problem of a report on another device's
 * deployment. Any other 403 (an identity refusal, docs/device-api.md) is passing.
 */
static bool not_your_deployment(struct fwa_agent *a, size_t len)
{
	struct fwa_json j;

	return fwa_json_parse(&j, a->s->body, len, a->s->tok, FWA_CHECKIN_MAX_TOKENS) == FWA_OK &&
	       fwa_json_str_eq(&j, fwa_json_get(&j, 0, "type"),
	                       "urn:ota:problem:not-your-deployment");
}

/* Send every unacknowledged report, oldest first; stops at the first failure. */
static enum fwa_err flush_outbox(struct fwa_agent *a)
{
	char path[sizeof(API) + 13 + FWA_DEP_ID_MAX + 8];
	struct fwa_sb b;
	enum fwa_err err;
	unsigned i;
	int status;
	size_t len;
	long n;

	if (!fwa_dep_id_valid(a->st.dep_id))
		return FWA_ERR_STATE;
	fwa_sb_init(&b, path, sizeof(path));
	fwa_sb_str(&b, API "/deployments/");
	fwa_sb_str(&b, a->st.dep_id);
	fwa_sb_str(&b, "/events");
	for (i = 0; i < a->st.nevents; i++) {
		const struct fwa_event *e = &a->st.events[i];

		if (e->seq <= a->acked)
			continue;
		n = fwa_event_encode(e, e->on_target ? a->st.target_version : a->st.base_version,
		                     (char *)a->s->io, sizeof(a->s->io));
		if (n < 0)
			return FWA_ERR_TOO_LARGE;
		err = call(a, "POST", path, (const char *)a->s->io, (size_t)n, &status, &len);
		if (err != FWA_OK)
			return err;
		if (status == 403 && !not_your_deployment(a, len)) {
			/* The device was refused, not the report: keep it for the next try. */
			say(a, FWA_LOG_WARN, "report kept, the device was refused: ",
			    fwa_status_name((enum fwa_status)e->status), NULL);
			return FWA_ERR_SERVER;
		}
		if (status == 403 || status == 404 || status == 409 || status == 400) {
			/* The server will never take it (deployment gone, or refused): drop it. */
			say(a, FWA_LOG_WARN, "report refused by the server: ",
			    fwa_status_name((enum fwa_status)e->status), NULL);
		} else if (status != 200) {
			return FWA_ERR_SERVER;
		}
		a->acked = e->seq;
	}
	return FWA_OK;
}

/* ---- settling what happened before this boot ---- */

static const char *revert_reason(const struct fwa_agent *a)
{
	if (a->st.outcome_reason[0])
		return a->st.outcome_reason; /* a health check failed and asked for the revert */
	if (a->boot.refused)
		return a->boot.refused; /* the bootrom said why it did not run the trial image */
	switch (a->boot.reset) {
	case FWA_RESET_WATCHDOG:
		return "trial not bought before the watchdog deadline";
	case FWA_RESET_POWER_ON:
		return "power lost during the trial, before the buy";
	case FWA_RESET_SOFTWARE:
		return "trial abandoned by a reboot before the buy";
	default:
		return "trial ended without a buy";
	}
}

static enum fwa_err confirm(struct fwa_agent *a)
{
	uint32_t f = floor_now(a);

	/* Raise the floor only now that the buy happened (the hardware one moved with it). */
	a->st.floor = f > a->st.target_secver ? f : a->st.target_secver;
	a->st.outcome_reason[0] = '\0';
	finish(a, FWA_ST_CONFIRMED, true, "");
	/* The health window opens with the buy (counted from the next boot). */
	a->st.health_open = 1;
	a->st.health_boots = a->st.health_wdt = a->st.health_failed = 0;
	say(a, FWA_LOG_INFO, "update confirmed: running ", a->st.target_version, NULL);
	return persist(a);
}

static enum fwa_err settle_boot(struct fwa_agent *a)
{
	struct fwa_state *st = &a->st;

	if (st->phase == FWA_PHASE_TRIAL_PENDING || st->phase == FWA_PHASE_TRIAL) {
		if (a->boot.active_slot == st->trial_slot && !a->boot.trial)
			return confirm(a); /* bought, then power went before we wrote it down */
		if (a->boot.active_slot == st->trial_slot) {
			if (st->phase == FWA_PHASE_TRIAL)
				return FWA_OK;
			st->phase = FWA_PHASE_TRIAL;
			enqueue(a, FWA_ST_TRIAL, true, "");
			say(a, FWA_LOG_INFO, "trial boot of ", st->target_version, NULL);
			return persist(a);
		}
		if (st->phase == FWA_PHASE_TRIAL_PENDING && a->boot.reset == FWA_RESET_POWER_ON &&
		    st->trial_tries < TRIAL_TRIES) {
			/* Power went before the trial began (or before it was written down): the
			 * verified slot is still there, so step() re-verifies it and tries again.
			 */
			say(a, FWA_LOG_WARN,
			    "trial did not start before a power loss; trying again", NULL, NULL);
			return FWA_OK;
		}
		/* The previous slot runs: the bootrom abandoned the trial. */
		{
			char why[FWA_REASON_MAX + 1];

			copy_str(why, sizeof(why), revert_reason(a));
			finish(a, FWA_ST_ROLLED_BACK, false, why);
			say(a, FWA_LOG_WARN, "trial rolled back: ", why, NULL);
		}
		return persist(a);
	}
	if (a->boot.trial) {
		/* A trial this agent never started: do not buy what we did not verify. */
		say(a, FWA_LOG_ERROR, "unexpected trial boot; abandoning it", NULL, NULL);
		a->trial_failed = true;
	}
	return FWA_OK;
}

/* ---- health after the confirm (docs/agent.md, "Health after the confirm") ---- */

static void health_add(uint8_t *counter)
{
	if (*counter < 255u)
		(*counter)++;
}

/* A boot inside the health window: counted, and written down (a failed write loses it). */
static void health_count_boot(struct fwa_agent *a)
{
	health_add(&a->st.health_boots);
	if (a->boot.reset == FWA_RESET_WATCHDOG)
		health_add(&a->st.health_wdt);
	if (persist(a) != FWA_OK)
		say(a, FWA_LOG_WARN, "health counters not written", NULL, NULL);
}

/*
 * Before a check-in: NULL outside the health window; else runs the health checks (a failure is
 * counted and written down), closes the window once this boot ran health_window_s, and fills
 * *h with what the check-in reports.
 */
static const struct fwa_health_counts *health_now(struct fwa_agent *a, struct fwa_health_counts *h)
{
	struct fwa_state *st = &a->st;
	uint64_t up = (now_ms(a) - a->boot_ms) / 1000u;
	uint32_t window =
	    a->cfg->health_window_s ? a->cfg->health_window_s : FWA_HEALTH_WINDOW_DEFAULT_S;
	bool changed = false;
	unsigned i;

	if (!st->health_open || st->phase != FWA_PHASE_IDLE || st->outcome != FWA_ST_CONFIRMED ||
	    !st->dep_id[0])
		return NULL;
	if (up >= window) {
		st->health_open = 0;
		if (persist(a) != FWA_OK)
			say(a, FWA_LOG_WARN, "health window end not written", NULL, NULL);
		return NULL;
	}
	for (i = 0; i < a->cfg->nchecks; i++)
		if (a->cfg->checks[i].check(a->cfg->checks[i].ctx) != FWA_OK) {
			say(a, FWA_LOG_WARN,
			    "health check failed after the buy: ", a->cfg->checks[i].name, NULL);
			health_add(&st->health_failed);
			changed = true;
		}
	if (changed && persist(a) != FWA_OK)
		say(a, FWA_LOG_WARN, "health counters not written", NULL, NULL);
	h->deployment_id = st->dep_id;
	h->reboots = st->health_boots;
	h->watchdog_resets = st->health_wdt;
	h->failed_checks = st->health_failed;
	h->uptime_s = up;
	return h;
}
/* ---- server CAs from the root ---- */

/* Whom the transport may trust: only root keys decide it, through the root's server_cas. */
static void tell_server_cas(struct fwa_agent *a)
{
	const struct fwa_root *r = trusted(a);

	conn_close(a); /* a connection verified under the old set carries nothing more */
	if (a->port->tr_server_cas)
		a->port->tr_server_cas(a->port->ctx, (const uint8_t(*)[32])r->server_ca,
		                       r->nserver_cas);
}

/* ---- end server CAs from the root ---- */

enum fwa_err fwa_agent_init(struct fwa_agent *a, const struct fwa_port *port,
                            const struct fwa_agent_config *cfg, void *scratch, size_t scratch_len)
{
	const char *why = NULL;
	unsigned from = FWA_STATE_FORMAT;
	enum fwa_err err;

	memset(a, 0, sizeof(*a));
	if (!port || !cfg || !port->crypto || !scratch || scratch_len < FWA_AGENT_SCRATCH_SIZE ||
	    ((uintptr_t)scratch & 7u) || !cfg->hw_variant || !cfg->version || !cfg->host ||
	    !cfg->root_json || cfg->trial_deadline_s > FWA_TRIAL_DEADLINE_MAX_S ||
	    cfg->renew_permille > 999)
		return FWA_ERR_BUSY;
	a->port = port;
	a->cfg = cfg;
	a->s = scratch;
	err = port->flash_geometry(port->ctx, &a->geo);
	if (err != FWA_OK)
		return FWA_ERR_FLASH;
	if (a->geo.prog_size == 0 || a->geo.prog_size > 256 || a->geo.erase_size == 0 ||
	    a->geo.erase_size > sizeof(a->s->io) || a->geo.erase_size % a->geo.prog_size ||
	    sizeof(a->s->io) % a->geo.erase_size || a->geo.state_size < sizeof(struct fwa_state))
		return FWA_ERR_FLASH;
	err = fwa_root_load(port->crypto, cfg->root_json, cfg->root_len, &a->prov_root,
	                    &a->s->verify, &why);
	if (err != FWA_OK) {
		say(a, FWA_LOG_ERROR, "provisioned root does not verify: ", why, NULL);
		return err;
	}
	err = port->boot_info(port->ctx, &a->boot);
	if (err != FWA_OK)
		return FWA_ERR_FLASH;
	err = fwa_state_load_from(port, &a->st, &a->st_area, &from);
	if (err == FWA_ERR_STATE) {
		fwa_state_init(&a->st);
		a->st_area = 1; /* so that the first write goes to area 0 */
		err = FWA_OK;
	} else {
		a->st_valid = true;
	}
	if (err == FWA_OK && a->st_valid && from != FWA_STATE_FORMAT) {
		/* An older agent's record: written back into the other area; its copy stays. */
		say(a, FWA_LOG_INFO, "state migrated from an older agent's format", NULL, NULL);
		err = persist(a);
	}
	if (err != FWA_OK)
		return err;
	tell_server_cas(a);
	a->boot_ms = now_ms(a);
	a->next_checkin_ms = a->boot_ms;
	a->told_outcome = a->st.outcome == FWA_ST_NONE || a->st.outcome_told;
	a->outcome_saved = a->st.outcome_told;
	bool health_boot = a->st.health_open && a->st.phase == FWA_PHASE_IDLE;
	err = settle_boot(a);
	if (err == FWA_OK && health_boot)
		health_count_boot(a);
	if (err == FWA_OK && a->st.phase == FWA_PHASE_TRIAL)
		trial_progress(a); /* the trial image booted and its agent runs */
	return err;
}

bool fwa_agent_idle(const struct fwa_agent *a)
{
	return a->st.phase == FWA_PHASE_IDLE && !outbox_pending(a) && !a->trial_failed;
}

/* ---- trial ---- */

static void trial_fail(struct fwa_agent *a, const char *why, struct fwa_step *out)
{
	say(a, FWA_LOG_WARN, "trial failed: ", why, "; rebooting to the previous image");
	/* Keep the reason for the report after the revert; the phase stays TRIAL. */
	copy_str(a->st.outcome_reason, sizeof(a->st.outcome_reason), why);
	(void)persist(a);
	a->trial_failed = true;
	a->port->reboot(a->port->ctx);
	out->rebooting = true;
}

static enum fwa_err do_trial(struct fwa_agent *a, struct fwa_step *out)
{
	char why[FWA_REASON_MAX + 1];
	struct fwa_boot_info bi;
	struct fwa_sb b;
	enum fwa_err err;
	unsigned i;

	if (now_ms(a) >= trial_end_ms(a)) {
		/* Only a port that armed more than asked lets a trial get here. */
		trial_fail(a, "trial deadline passed before the buy", out);
		return FWA_ERR_HEALTH;
	}
	if (strcmp(a->cfg->version, a->st.target_version) != 0) {
		trial_fail(a, "running version differs from the manifest", out);
		return FWA_ERR_HEALTH;
	}
	for (i = 0; i < a->cfg->nchecks; i++) {
		const struct fwa_health_check *c = &a->cfg->checks[i];

		if (c->check(c->ctx) != FWA_OK) {
			fwa_sb_init(&b, why, sizeof(why));
			fwa_sb_str(&b, "health check ");
			fwa_sb_str(&b, c->name ? c->name : "?");
			fwa_sb_str(&b, " failed");
			trial_fail(a, b.overflow ? "health check failed" : why, out);
			return FWA_ERR_HEALTH;
		}
		trial_progress(a);
	}
	/* "Reached the server and reported": the trial report must be acknowledged. */
	err = flush_outbox(a);
	if (err != FWA_OK) {
		out->wait_ms = TRIAL_RETRY_MS;
		return err;
	}
	err = a->port->buy(a->port->ctx);
	if (err == FWA_OK)
		err = a->port->boot_info(a->port->ctx, &bi);
	if (err != FWA_OK || bi.trial) {
		/*
		 * Not bought. The RP2350 bootrom turned the watchdog off before it failed, so
		 * waiting would wait forever: reboot now, and the previous image boots.
		 */
		trial_fail(a, "the bootrom refused the buy", out);
		return FWA_ERR_HEALTH;
	}
	a->boot = bi;
	err = confirm(a);
	if (err == FWA_OK && flush_outbox(a) == FWA_OK)
		a->failures = 0;
	return err;
}

/* ---- check-in and accepting an update ---- */

static bool wall_now(struct fwa_agent *a, int64_t *t)
{
	if (a->port->wall_time && a->port->wall_time(a->port->ctx, t))
		return true;
	/* Signed time: once the root names a time key, only a verified token counts. */
	if (trusted(a)->time.nkeys) {
		if (!a->has_signed_time)
			return false;
		*t = a->signed_time + (int64_t)((now_ms(a) - a->signed_time_ms) / 1000u);
		return true;
	}
	if (a->server_time) {
		*t = a->server_time + (int64_t)((now_ms(a) - a->server_time_ms) / 1000u);
		return true;
	}
	return false;
}

/* Start a new deployment record, keeping what outlives deployments (floor, root). */
static void new_deployment(struct fwa_agent *a, const struct fwa_checkin_answer *ans)
{
	uint32_t floor = a->st.floor, seq = a->st.seq;
	uint8_t has_root = a->st.has_root;

	/* The root is the last member before the CRC: clear everything ahead of it. */
	memset(&a->st, 0, offsetof(struct fwa_state, root));
	a->st.magic = FWA_STATE_MAGIC;
	a->st.format = FWA_STATE_FORMAT;
	a->st.seq = seq;
	a->st.floor = floor;
	a->st.has_root = has_root;
	copy_str(a->st.dep_id, sizeof(a->st.dep_id), ans->deployment_id);
	copy_str(a->st.base_version, sizeof(a->st.base_version), a->cfg->version);
	a->acked = 0;
}

static void refuse(struct fwa_agent *a, const struct fwa_checkin_answer *ans, const char *why)
{
	say(a, FWA_LOG_WARN, "update refused: ", why, NULL);
	new_deployment(a, ans);
	finish(a, FWA_ST_FAILED, false, why);
}

/*
 * Take the offered delta when its metadata verifies against the trusted root, names this
 * release and the image this device runs. Returns NULL when taken, else why not (the full
 * image is downloaded instead, and the reason reported with the downloading event).
 */
static const char *take_delta(struct fwa_agent *a, const struct fwa_checkin_answer *ans,
                              const struct fwa_manifest *m)
{
	struct fwa_delta_meta dm;
	const char *why = NULL;

	if (!a->port->active_read || !a->active_known)
		return "this device cannot apply deltas";
	if (fwa_delta_meta_verify(a->port->crypto, trusted(a), ans->delta_meta.p,
	                          ans->delta_meta.len, &dm, &a->s->verify, &why) != FWA_OK ||
	    fwa_delta_meta_check(&dm, m, &why) != FWA_OK)
		return why;
	if (dm.base_size != a->cfg->image_size || memcmp(dm.base_sha256, a->active_sha256, 32))
		return "made for another base image";
	if (dm.delta_size != ans->delta_size)
		return "offered size differs from its metadata";
	a->st.delta = 1;
	a->st.delta_params.base_size = dm.base_size;
	a->st.delta_params.target_size = dm.target_size;
	a->st.delta_params.delta_size = dm.delta_size;
	memcpy(a->st.delta_params.head_sha256, dm.delta_sha256, 32);
	memset(&a->st.delta_ck, 0, sizeof(a->st.delta_ck));
	memcpy(a->st.delta_ck.next_sha256, dm.delta_sha256, 32);
	copy_str(a->st.delta_url, sizeof(a->st.delta_url), ans->delta_url);
	return NULL;
}

static enum fwa_err accept_update(struct fwa_agent *a, const struct fwa_checkin_answer *ans)
{
	char no_delta[FWA_REASON_MAX + 1] = "";
	struct fwa_manifest m;
	const char *why = NULL;
	enum fwa_err err;
	int64_t t;

	if (wall_now(a, &t)) {
		err = fwa_root_check_expiry(trusted(a), t, &why);
		if (err != FWA_OK)
			goto refused;
	}
	err = fwa_manifest_verify(a->port->crypto, trusted(a), ans->manifest.p, ans->manifest.len,
	                          &m, &a->s->verify, &why);
	if (err != FWA_OK)
		goto refused;
	err = fwa_manifest_check_target(&m, a->cfg->hw_variant, floor_now(a), &why);
	if (err != FWA_OK)
		goto refused;
	if (a->cfg->image_format && strcmp(m.image_format, a->cfg->image_format) != 0) {
		err = FWA_ERR_MALFORMED;
		why = "image format not supported by this device";
		goto refused;
	}
	if (m.image_size == 0 || m.image_size > a->geo.slot_size) {
		err = FWA_ERR_IMAGE_SIZE;
		why = "image does not fit the slot";
		goto refused;
	}
	if (ans->image_size && ans->image_size != m.image_size) {
		err = FWA_ERR_IMAGE_SIZE;
		why = "offered image size differs from the manifest";
		goto refused;
	}
	new_deployment(a, ans);
	copy_str(a->st.target_version, sizeof(a->st.target_version), m.version);
	a->st.target_secver = m.security_version;
	a->st.image_size = (uint32_t)m.image_size;
	memcpy(a->st.image_sha256, m.image_sha256, 32);
	memcpy(a->st.manifest_digest, m.digest, 32);
	copy_str(a->st.image_url, sizeof(a->st.image_url), ans->image_url);
	a->st.trial_slot = a->boot.active_slot ? FWA_SLOT_A : FWA_SLOT_B;
	a->st.phase = FWA_PHASE_DOWNLOADING;
	if (ans->has_delta) {
		const char *no = take_delta(a, ans, &m);

		if (no) {
			struct fwa_sb b;

			fwa_sb_init(&b, no_delta, sizeof(no_delta));
			fwa_sb_str(&b, "delta refused: ");
			fwa_sb_str(&b, no);
			say(a, FWA_LOG_WARN, no_delta, "; taking the full image", NULL);
		}
	}
	enqueue(a, FWA_ST_DOWNLOADING, false, no_delta);
	say(a, FWA_LOG_INFO,
	    a->st.delta ? "update accepted as a delta: " : "update accepted: ", m.version, NULL);
	return persist(a);

refused:
	refuse(a, ans, why ? why : "manifest refused");
	(void)persist(a);
	return err;
}

/* Walk the offered roots one version at a time; stops at the first that does not verify. */
static void apply_roots(struct fwa_agent *a, const struct fwa_checkin_answer *ans)
{
	struct fwa_root next;
	const char *why = NULL;
	bool changed = false;
	unsigned i;

	for (i = 0; i < ans->nroots; i++) {
		const struct fwa_root *cur = trusted(a);

		if (fwa_root_update(a->port->crypto, cur, ans->roots[i].p, ans->roots[i].len, &next,
		                    &a->s->verify, &why) != FWA_OK) {
			say(a, FWA_LOG_WARN, "root update refused: ", why, NULL);
			break;
		}
		a->st.root = next;
		a->st.has_root = 1;
		changed = true;
	}
	if (changed) {
		say(a, FWA_LOG_INFO, "root metadata rotated", NULL, NULL);
		tell_server_cas(a);
		(void)persist(a);
	}
}

/*
 * The SHA-256 of the running image, once per boot: what the server offers deltas from. Only
 * with the port's active_read and a configured image size; otherwise unknown (no deltas).
 */
static void learn_active(struct fwa_agent *a)
{
	uint32_t size = a->cfg->image_size, off = 0, n;
	struct fwa_sha256 *h = &a->s->delta.sha; /* the decoder is idle during a check-in */

	if (a->active_known || !a->port->active_read || size == 0)
		return;
	a->port->crypto->sha256_init(h);
	while (off < size) {
		n = size - off < sizeof(a->s->io) ? size - off : (uint32_t)sizeof(a->s->io);
		if (a->port->active_read(a->port->ctx, off, a->s->io, n) != FWA_OK) {
			say(a, FWA_LOG_WARN, "running image unreadable; no delta updates", NULL,
			    NULL);
			return;
		}
		a->port->crypto->sha256_update(h, a->s->io, n);
		off += n;
		feed(a);
	}
	a->port->crypto->sha256_final(h, a->active_sha256);
	a->active_known = true;
}

/* ---- signed time ---- */

/* A fresh nonce for this check-in; none when the port has no randomness. */
static void time_nonce(struct fwa_agent *a, struct fwa_checkin_req *r)
{
	a->nonce_sent =
	    a->port->random && a->port->random(a->port->ctx, a->nonce, sizeof(a->nonce)) == FWA_OK;
	if (a->nonce_sent) {
		r->nonce = a->nonce;
		r->nonce_len = sizeof(a->nonce);
	}
}

/*
 * Take the answer's time token when the trusted root names a time key: it must verify against
 * that key and answer the nonce just sent (a replayed or another device's token does not).
 * The nonce is spent either way.
 */
static void take_time_token(struct fwa_agent *a, const struct fwa_checkin_answer *ans)
{
	const char *why = NULL;
	int64_t t;

	if (!a->nonce_sent || !ans->time_token.p || trusted(a)->time.nkeys == 0)
		goto out;
	if (fwa_time_token_verify(a->port->crypto, trusted(a), ans->time_token.p,
	                          ans->time_token.len, a->nonce, sizeof(a->nonce), &t,
	                          &a->s->verify, &why) != FWA_OK) {
		say(a, FWA_LOG_WARN, "time token refused: ", why, NULL);
		goto out;
	}
	a->has_signed_time = true;
	a->signed_time = t;
	a->signed_time_ms = now_ms(a);
out:
	a->nonce_sent = false;
	memset(a->nonce, 0, sizeof(a->nonce));
}

/* ---- end signed time ---- */

/* ---- credential renewal ---- */

#define RENEW_RETRY_MS (3600u * 1000u) /* after a failed renewal, try again in an hour */

static bool renewal_due(struct fwa_agent *a)
{
	int64_t nb, na, now;
	bool pending = false;

	if (!a->cfg->renew_permille || !a->port->cred_lifetime || !a->port->cred_csr ||
	    !a->port->cred_install || now_ms(a) < a->renew_after_ms)
		return false;
	if (a->port->cred_lifetime(a->port->ctx, &nb, &na, &pending) != FWA_OK || pending ||
	    na <= nb || !wall_now(a, &now))
		return false;
	return now >= nb + (na - nb) / 1000 * (int64_t)a->cfg->renew_permille;
}

/*
 * After an answered check-in with nothing else to do: when the certificate has lived its
 * configured share, ask for a new one over a key the port makes
 * and persists first (docs/device-api.md, POST /device/v1/certificate). A failure only
 * delays the next try: the current pair stays in use.
 */
static void renew_credentials(struct fwa_agent *a)
{
	char *csr = (char *)a->s->verify.payload, *pem = (char *)a->s->verify.payload;
	const size_t cap = sizeof(a->s->verify.payload);
	struct fwa_json j;
	struct fwa_sb b;
	size_t len = 0;
	int status, t;
	enum fwa_err err;

	if (!renewal_due(a))
		return;
	a->renew_after_ms = now_ms(a) + RENEW_RETRY_MS;
	if (a->port->cred_csr(a->port->ctx, csr, cap, &len) != FWA_OK) {
		say(a, FWA_LOG_WARN, "renewal: cannot make a key and request", NULL, NULL);
		return;
	}
	struct fwa_jw w;
	fwa_jw_init(&w, (char *)a->s->io, sizeof(a->s->io));
	fwa_jw_obj_open(&w);
	fwa_jw_str(&w, "csr", csr);
	fwa_jw_obj_close(&w);
	long n = fwa_jw_end(&w);
	if (n < 0)
		return;
	err = call(a, "POST", API "/certificate", (const char *)a->s->io, (size_t)n, &status, &len);
	if (err != FWA_OK || status != 200) {
		say(a, FWA_LOG_WARN, "renewal: the server issued no certificate", NULL, NULL);
		return;
	}
	if (fwa_json_parse(&j, a->s->body, len, a->s->tok, FWA_CHECKIN_MAX_TOKENS) != FWA_OK ||
	    a->s->tok[0].type != FWA_JSON_OBJECT || (t = fwa_json_get(&j, 0, "certificate")) < 0 ||
	    fwa_json_str(&j, t, pem, cap, &len) != FWA_OK) {
		say(a, FWA_LOG_WARN, "renewal: malformed answer", NULL, NULL);
		return;
	}
	err = a->port->cred_install(a->port->ctx, pem, len);
	fwa_sb_init(&b, (char *)a->s->io, sizeof(a->s->io));
	fwa_sb_str(&b, fwa_strerror(err));
	say(a, err ? FWA_LOG_WARN : FWA_LOG_INFO,
	    err ? "renewal: certificate not installed: " : "renewal: new certificate pending",
	    err ? (const char *)a->s->io : NULL, NULL);
	if (err == FWA_OK) {
		a->renew_after_ms = 0;
		conn_close(a); /* the next connection presents the new pair */
	}
}

/* ---- end credential renewal ---- */

static enum fwa_err do_checkin(struct fwa_agent *a)
{
	struct fwa_checkin_req r;
	struct fwa_checkin_answer ans;
	const char *why = NULL;
	enum fwa_err err;
	int status;
	size_t len;
	long n;

	memset(&r, 0, sizeof(r));
	r.hw_variant = a->cfg->hw_variant;
	r.version = a->cfg->version;
	r.floor = floor_now(a);
	r.root_version = trusted(a)->version;
	r.active_slot = a->boot.active_slot;
	r.trial = a->boot.trial;
	r.deployment_id = a->st.dep_id;
	learn_active(a);
	r.active_sha256 = a->active_known ? a->active_sha256 : NULL;
	time_nonce(a, &r);
	if (!a->told_outcome) {
		r.outcome = a->st.outcome;
		r.reason = a->st.outcome_reason;
	}
	struct fwa_health_counts health;
	r.health = health_now(a, &health);
	n = fwa_checkin_encode(&r, (char *)a->s->io, sizeof(a->s->io));
	if (n < 0)
		return FWA_ERR_TOO_LARGE;
	err = call(a, "POST", API "/checkin", (const char *)a->s->io, (size_t)n, &status, &len);
	if (err != FWA_OK)
		return err;
	if (status != 200) {
		say(a, FWA_LOG_WARN, "check-in answered with an error status", NULL, NULL);
		return FWA_ERR_SERVER;
	}
	err = fwa_checkin_decode(a->s->body, len, a->s->tok, FWA_CHECKIN_MAX_TOKENS, &ans, &why);
	if (err != FWA_OK) {
		say(a, FWA_LOG_WARN, "check-in answer refused: ", why, NULL);
		return err;
	}
	if (!a->told_outcome) {
		a->told_outcome = true;
		a->st.outcome_told = 1;
	}
	if (ans.has_server_time) {
		a->server_time = ans.server_time;
		a->server_time_ms = now_ms(a);
	}
	a->next_checkin_ms =
	    now_ms(a) +
	    1000u * (uint64_t)(ans.poll_after ? ans.poll_after
	                                      : (a->cfg->poll_s ? a->cfg->poll_s : DEFAULT_POLL_S));
	apply_roots(a, &ans);
	take_time_token(a, &ans);
	if (a->port->cred_accepted)
		a->port->cred_accepted(a->port->ctx);
	/* Renewal reuses the answer's memory: only when nothing in the answer is needed. */
	if (!ans.update && a->st.phase == FWA_PHASE_IDLE && !outbox_pending(a))
		renew_credentials(a);
	if (!ans.update || a->st.phase != FWA_PHASE_IDLE)
		return FWA_OK;
	if (a->st.outcome != FWA_ST_NONE && strcmp(ans.deployment_id, a->st.dep_id) == 0)
		return FWA_OK; /* already finished; the server has not taken our outcome in yet */
	if (outbox_pending(a))
		return FWA_OK; /* reports of the last deployment first */
	return accept_update(a, &ans);
}

/* ---- download and install ---- */

static enum fwa_err fail_deployment(struct fwa_agent *a, enum fwa_err err, const char *why)
{
	say(a, FWA_LOG_WARN, "update failed: ", why, NULL);
	finish(a, FWA_ST_FAILED, false, why);
	(void)persist(a);
	return err;
}

/* SHA-256 of the slot's first len bytes, read back from flash. */
static enum fwa_err hash_slot(struct fwa_agent *a, struct fwa_sha256 *h, uint32_t len)
{
	uint32_t off = 0, n;

	while (off < len) {
		n = len - off < sizeof(a->s->io) ? len - off : (uint32_t)sizeof(a->s->io);
		if (a->port->slot_read(a->port->ctx, off, a->s->io, n) != FWA_OK)
			return FWA_ERR_FLASH;
		a->port->crypto->sha256_update(h, a->s->io, n);
		off += n;
		feed(a);
	}
	return FWA_OK;
}

/* Erase the sector at off and program n bytes of io (padded to pages). */
static enum fwa_err write_sector(struct fwa_agent *a, uint32_t off, uint32_t n)
{
	uint32_t p = a->geo.prog_size;
	uint32_t padded = (n + p - 1) / p * p;

	memset(a->s->io + n, 0xff, padded - n);
	if (a->port->slot_erase(a->port->ctx, off, a->geo.erase_size) != FWA_OK)
		return FWA_ERR_FLASH;
	if (a->port->slot_program(a->port->ctx, off, a->s->io, padded) != FWA_OK)
		return FWA_ERR_FLASH;
	return FWA_OK;
}

static void delta_fallback(struct fwa_agent *a, const char *why);

static enum fwa_err install(struct fwa_agent *a, struct fwa_step *out)
{
	struct fwa_sha256 h;
	uint8_t digest[32];
	enum fwa_err err;

	/* Full re-verification from flash, whatever the incremental hash said. */
	a->port->crypto->sha256_init(&h);
	err = hash_slot(a, &h, a->st.image_size);
	if (err != FWA_OK)
		return err;
	a->port->crypto->sha256_final(&h, digest);
	if (memcmp(digest, a->st.image_sha256, 32) != 0 && a->st.delta) {
		delta_fallback(a, "result differs from the release image");
		return FWA_ERR_IMAGE_HASH;
	}
	if (memcmp(digest, a->st.image_sha256, 32) != 0) {
		/* Flash did not keep what was written: start the download over. */
		a->st.dl_offset = 0;
		a->st.phase = FWA_PHASE_DOWNLOADING;
		(void)persist(a);
		say(a, FWA_LOG_ERROR, "slot read-back differs from the image; downloading again",
		    NULL, NULL);
		return FWA_ERR_IMAGE_HASH;
	}
	if (a->st.phase != FWA_PHASE_TRIAL_PENDING) {
		enqueue(a, FWA_ST_DOWNLOADED, false, "");
		enqueue(a, FWA_ST_INSTALLING, false, "");
		enqueue(a, FWA_ST_REBOOTING, false, "");
		a->st.phase = FWA_PHASE_TRIAL_PENDING;
		a->st.outcome_reason[0] = '\0';
	}
	a->st.trial_tries++;
	err = persist(a);
	if (err != FWA_OK)
		return err;
	(void)flush_outbox(a); /* best effort: they stay in the outbox otherwise */
	say(a, FWA_LOG_INFO, "rebooting into the trial image ", a->st.target_version, NULL);
	err = a->port->boot_trial(a->port->ctx, a->st.image_size);
	if (err == FWA_ERR_MALFORMED)
		return fail_deployment(a, err,
		                       "image refused for a trial boot: not a try-before-you-buy "
		                       "executable");
	if (err != FWA_OK)
		return fail_deployment(a, FWA_ERR_FLASH, "flash-update reboot refused");
	out->rebooting = true;
	return FWA_OK;
}

/*
 * The delta failed: go on with the full image of the same deployment, from its start, and say
 * why in a downloading report ("delta failed: ..."). The caller returns its own error.
 */
static void delta_fallback(struct fwa_agent *a, const char *why)
{
	char reason[FWA_REASON_MAX + 1];
	struct fwa_sb b;

	fwa_sb_init(&b, reason, sizeof(reason));
	fwa_sb_str(&b, "delta failed: ");
	fwa_sb_str(&b, why && why[0] ? why : "unknown");
	say(a, FWA_LOG_WARN, reason, "; taking the full image", NULL);
	a->st.delta = 0;
	memset(&a->st.delta_params, 0, sizeof(a->st.delta_params));
	memset(&a->st.delta_ck, 0, sizeof(a->st.delta_ck));
	a->st.delta_url[0] = '\0';
	a->st.dl_offset = 0;
	a->st.phase = FWA_PHASE_DOWNLOADING;
	enqueue(a, FWA_ST_DOWNLOADING, false, reason);
	(void)persist(a);
}

/* Keep the decoder's checkpoint: a power cut from here on resumes after its last sector. */
static enum fwa_err delta_checkpoint(struct fwa_agent *a, const struct fwa_delta *d)
{
	a->st.delta_ck = d->ck;
	a->st.dl_offset = d->ck.out_off;
	return persist(a);
}

/*
 * Download the delta from the checkpoint on (HTTP Range) and feed it to the decoder, which
 * authenticates each unit, writes its sector and moves its checkpoint; persisted every
 * CHECKPOINT_BYTES of output. A delta that fails (bad unit, not applicable, gone from the
 * server) falls back to the full image; a transport error resumes later.
 */
static enum fwa_err do_delta(struct fwa_agent *a, struct fwa_step *out)
{
	struct fwa_delta *d = &a->s->delta;
	uint32_t saved, skip = 0;
	struct fwa_http http;
	char range[48];
	struct fwa_sb b;
	enum fwa_err err;
	size_t got, used;

	err = fwa_delta_begin(d, a->port, &a->st.delta_params, &a->st.delta_ck, a->s->io);
	if (err != FWA_OK) {
		delta_fallback(a, d->why);
		return err;
	}
	saved = d->ck.out_off;
	if (!fwa_delta_done(d)) {
		fwa_sb_init(&b, range, sizeof(range));
		fwa_sb_str(&b, "Range: bytes=");
		fwa_sb_u64(&b, d->ck.in_off);
		fwa_sb_str(&b, "-\r\n");
		err =
		    request(a, "GET", a->st.delta_url, d->ck.in_off ? range : NULL, NULL, 0, &http);
		if (err != FWA_OK)
			goto out;
		if (http.resp.status == 200) {
			skip = d->ck.in_off; /* the server ignored the range: drop what we have */
		} else if (http.resp.status == 206) {
			if (!http.resp.has_range || http.resp.range_first != d->ck.in_off ||
			    http.resp.range_total != a->st.delta_params.delta_size ||
			    http.resp.range_last != a->st.delta_params.delta_size - 1u) {
				err = FWA_ERR_HTTP;
				goto out;
			}
		} else if (http.resp.status == 404 || http.resp.status == 403 ||
		           http.resp.status == 410) {
			conn_close(a);
			delta_fallback(a, "no longer offered by the server");
			return FWA_ERR_SERVER;
		} else {
			err = FWA_ERR_SERVER;
			goto out;
		}
		while (!fwa_delta_done(d)) {
			err = fwa_http_read_body(&http, a->s->body, 4096, &got);
			if (err == FWA_OK && got == 0)
				err = FWA_ERR_TRANSPORT; /* body ended early */
			if (err != FWA_OK)
				goto out;
			if (skip) {
				uint32_t k = got < skip ? (uint32_t)got : skip;

				skip -= k;
				memmove(a->s->body, a->s->body + k, got - k);
				got -= k;
			}
			for (size_t at = 0; at < got; at += used) {
				err = fwa_delta_feed(d, (const uint8_t *)a->s->body + at, got - at,
				                     &used);
				if (err == FWA_ERR_FLASH)
					goto out;
				if (err != FWA_OK) {
					conn_close(a);
					delta_fallback(a, d->why);
					return err;
				}
				feed(a);
				if (!fwa_delta_done(d) &&
				    d->ck.out_off - saved >= DELTA_CHECKPOINT_BYTES) {
					err = delta_checkpoint(a, d);
					if (err != FWA_OK)
						goto out;
					saved = d->ck.out_off;
				}
			}
		}
		/* Anything after the promised bytes is a framing error. */
		err = fwa_http_read_body(&http, a->s->body, 1, &got);
		if (err == FWA_OK && got)
			err = FWA_ERR_HTTP;
		if (err != FWA_OK)
			goto out;
		conn_done(a, &http);
	}
	a->st.delta_ck = d->ck;
	a->st.dl_offset = a->st.image_size;
	return install(a, out);
out:
	conn_close(a);
	if (d->ck.out_off != saved)
		(void)delta_checkpoint(a, d);
	say(a, FWA_LOG_WARN, "delta download interrupted; will resume", NULL, NULL);
	return err;
}

static enum fwa_err do_download(struct fwa_agent *a, struct fwa_step *out)
{
	struct fwa_sha256 hash, *h = &hash;
	char range[48];
	struct fwa_sb b;
	struct fwa_http http;
	uint32_t size = a->st.image_size, off = a->st.dl_offset, fill = 0, saved;
	uint8_t digest[32];
	enum fwa_err err;
	size_t got;

	if (a->st.delta)
		return do_delta(a, out);
	if (off > size || off % a->geo.erase_size) {
		off = 0; /* only sector-aligned checkpoints are written; anything else is damage */
		a->st.dl_offset = 0;
	}
	saved = off;
	a->port->crypto->sha256_init(h);
	if (off) {
		err = hash_slot(a, h, off);
		if (err != FWA_OK)
			return err;
	}
	if (off < size) {
		fwa_sb_init(&b, range, sizeof(range));
		fwa_sb_str(&b, "Range: bytes=");
		fwa_sb_u64(&b, off);
		fwa_sb_str(&b, "-\r\n");
		err = request(a, "GET", a->st.image_url, off ? range : NULL, NULL, 0, &http);
		if (err != FWA_OK)
			goto out;
		if (http.resp.status == 200 && off) {
			/* The server ignored the range: take the whole image from the start. */
			off = saved = 0;
			a->port->crypto->sha256_init(h);
		} else if (http.resp.status == 206) {
			if (!http.resp.has_range || http.resp.range_first != off ||
			    http.resp.range_total != size || http.resp.range_last != size - 1u) {
				err = FWA_ERR_HTTP;
				goto out;
			}
		} else if (http.resp.status != 200) {
			if (http.resp.status == 404 || http.resp.status == 403 ||
			    http.resp.status == 410) {
				conn_close(a);
				return fail_deployment(a, FWA_ERR_SERVER,
				                       "image no longer offered by the server");
			}
			err = FWA_ERR_SERVER;
			goto out;
		}
		if (http.resp.has_length && http.resp.length != (uint64_t)(size - off)) {
			err = FWA_ERR_HTTP;
			goto out;
		}
		while (off + fill < size) {
			uint32_t want = a->geo.erase_size - fill;

			if (want > size - off - fill)
				want = size - off - fill;
			err = fwa_http_read_body(&http, a->s->io + fill, want, &got);
			if (err == FWA_OK && got == 0)
				err = FWA_ERR_TRANSPORT; /* body ended early */
			if (err != FWA_OK)
				goto out;
			fill += (uint32_t)got;
			if (fill == a->geo.erase_size || off + fill == size) {
				a->port->crypto->sha256_update(h, a->s->io, fill);
				err = write_sector(a, off, fill);
				if (err != FWA_OK)
					goto out;
				off += fill;
				fill = 0;
				feed(a);
				if (off < size && off - saved >= CHECKPOINT_BYTES) {
					a->st.dl_offset = off;
					err = persist(a);
					if (err != FWA_OK)
						goto out;
					saved = off;
				}
			}
		}
		/* Anything after the promised bytes is a framing error. */
		err = fwa_http_read_body(&http, digest, 1, &got);
		if (err == FWA_OK && got)
			err = FWA_ERR_HTTP;
		if (err != FWA_OK)
			goto out;
		conn_done(a, &http);
	}
	a->port->crypto->sha256_final(h, digest);
	if (memcmp(digest, a->st.image_sha256, 32) != 0)
		return fail_deployment(a, FWA_ERR_IMAGE_HASH,
		                       "image SHA-256 differs from the manifest");
	a->st.dl_offset = size;
	return install(a, out);
out:
	conn_close(a);
	if (off != saved) {
		/* Resume from the last good offset next time. */
		a->st.dl_offset = off;
		(void)persist(a);
	}
	say(a, FWA_LOG_WARN, "download interrupted; will resume", NULL, NULL);
	return err;
}

/* ---- the step ---- */

static enum fwa_err step(struct fwa_agent *a, struct fwa_step *out)
{
	enum fwa_err err = FWA_OK;
	uint64_t now;

	memset(out, 0, sizeof(*out));
	if (a->trial_failed) {
		/* Waiting for the revert: ask for it again while this is still the trial. */
		if (a->boot.trial) {
			a->port->reboot(a->port->ctx);
			out->rebooting = true;
		}
		out->wait_ms = 1000;
		return FWA_OK;
	}
	feed(a);
	if (a->st.phase == FWA_PHASE_TRIAL) {
		err = do_trial(a, out);
		return err;
	}
	if (outbox_pending(a)) {
		err = flush_outbox(a);
		if (err != FWA_OK)
			goto backoff;
	}
	if (a->st.phase == FWA_PHASE_DOWNLOADING) {
		err = do_download(a, out);
		if (err != FWA_OK)
			goto backoff;
		a->failures = 0;
		return FWA_OK;
	}
	if (a->st.phase == FWA_PHASE_TRIAL_PENDING) {
		/* Persisted, but the reboot did not happen (an error, or power back too soon). */
		err = install(a, out);
		if (err != FWA_OK)
			goto backoff;
		return FWA_OK;
	}
	now = now_ms(a);
	if (now < a->next_checkin_ms) {
		out->wait_ms = (uint32_t)(a->next_checkin_ms - now);
		return FWA_OK;
	}
	err = do_checkin(a);
	if (err != FWA_OK)
		goto backoff;
	out->checked_in = true;
	a->failures = 0;
	if (a->st.phase == FWA_PHASE_DOWNLOADING || outbox_pending(a))
		return FWA_OK; /* wait_ms 0: go on at once */
	if (a->st.phase == FWA_PHASE_IDLE && a->st.outcome_told &&
	    (a->st.nevents > 0 || !a->outcome_saved)) {
		/* Deployment over and told: write down the empty outbox and the told outcome once,
		 * so that neither is repeated after a reboot. */
		if (persist(a) == FWA_OK)
			a->outcome_saved = true;
	}
	now = now_ms(a);
	out->wait_ms = a->next_checkin_ms > now ? (uint32_t)(a->next_checkin_ms - now) : 0;
	return FWA_OK;
backoff:
	out->wait_ms = backoff(a);
	if (a->st.phase == FWA_PHASE_IDLE && !outbox_pending(a))
		a->next_checkin_ms = now_ms(a) + out->wait_ms;
	return err;
}

enum fwa_err fwa_agent_step(struct fwa_agent *a, struct fwa_step *out)
{
	enum fwa_err err = step(a, out);

	/* A poll cycle ends where the agent waits, fails or reboots: so does its connection. */
	if (a->conn_open && (err != FWA_OK || out->wait_ms > 0 || out->rebooting))
		conn_close(a);
	return err;
}
