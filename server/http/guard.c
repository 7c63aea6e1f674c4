/*
 * http/guard.c - the per-address connection count and the header and body deadlines of one
 * listener (guard.h): a list of open connections and a small hash of addresses to counts,
 * both under one mutex; the sweep collects the overdue connections under it, shuts their
 * sockets down and reports them after releasing it.
 */
#include "http/guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 1024
#define ADDR_MAX 48
#define KEY_MAX (ADDR_MAX + 4) /* an address, or an IPv6 /64 with its "/64" */
#define CUT_BATCH 64           /* connections reported per sweep pass (the rest on the next pass) */
#define STRIKES_MAX 65536      /* addresses with strikes tracked at once (guard.h) */

struct addr_count {
	char addr[ADDR_MAX];
	unsigned n;
	struct addr_count *next;
};

/* Refused certificates of one address (an IPv6 address's /64), and its block. */
struct strike {
	char addr[KEY_MAX];
	unsigned n;
	int64_t since_ms; /* the first strike of the count */
	int64_t until_ms; /* blocked until then; 0: not blocked */
	struct strike *next;
};

struct ota_guard_conn {
	int fd;
	char addr[ADDR_MAX];
	enum ota_guard_phase phase;
	int64_t deadline_ms; /* 0: none */
	bool cut;            /* shut down already */
	struct ota_guard_conn *prev, *next;
};

struct ota_guard {
	pthread_mutex_t mu;
	struct ota_guard_limits lim;
	unsigned open, nstrikes;
	ota_guard_refused_fn refused;
	void *ctx;
	struct ota_guard_conn *conns;
	struct addr_count *bucket[BUCKETS];
	struct strike *strikes[BUCKETS];
};

int64_t ota_guard_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void addr_text(const struct sockaddr *sa, char out[ADDR_MAX])
{
	out[0] = '\0';
	if (!sa)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, ADDR_MAX);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, ADDR_MAX);
	if (!out[0])
		snprintf(out, ADDR_MAX, "(unknown)");
}

/* The address a strike counts against: an IPv4 address, or an IPv6 address's /64. */
static void strike_key(const char *addr, char out[KEY_MAX])
{
	struct in6_addr a6;

	if (inet_pton(AF_INET6, addr, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
		memset(a6.s6_addr + 8, 0, 8);
		char p[INET6_ADDRSTRLEN];
		if (inet_ntop(AF_INET6, &a6, p, sizeof(p))) {
			snprintf(out, KEY_MAX, "%s/64", p);
			return;
		}
	}
	snprintf(out, KEY_MAX, "%s", addr);
}

static unsigned hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % BUCKETS;
}

static struct addr_count **slot(struct ota_guard *g, const char *addr)
{
	struct addr_count **p = &g->bucket[hash(addr)];

	while (*p && strcmp((*p)->addr, addr) != 0)
		p = &(*p)->next;
	return p;
}

static struct strike **strike_slot(struct ota_guard *g, const char *key)
{
	struct strike **p = &g->strikes[hash(key)];

	while (*p && strcmp((*p)->addr, key) != 0)
		p = &(*p)->next;
	return p;
}

enum ota_err ota_guard_new(const struct ota_guard_limits *lim, ota_guard_refused_fn refused,
                           void *ctx, struct ota_guard **out)
{
	struct ota_guard *g = calloc(1, sizeof(*g));

	*out = NULL;
	if (!g)
		return OTA_ERR_NOMEM;
	pthread_mutex_init(&g->mu, NULL);
	g->lim = *lim;
	g->refused = refused;
	g->ctx = ctx;
	*out = g;
	return OTA_OK;
}

void ota_guard_free(struct ota_guard *g)
{
	if (!g)
		return;
	for (unsigned i = 0; i < BUCKETS; i++) {
		while (g->bucket[i]) {
			struct addr_count *a = g->bucket[i];
			g->bucket[i] = a->next;
			free(a);
		}
		while (g->strikes[i]) {
			struct strike *k = g->strikes[i];
			g->strikes[i] = k->next;
			free(k);
		}
	}
	while (g->conns) {
		struct ota_guard_conn *c = g->conns;
		g->conns = c->next;
		free(c);
	}
	pthread_mutex_destroy(&g->mu);
	free(g);
}

bool ota_guard_admit(struct ota_guard *g, const struct sockaddr *addr, socklen_t len)
{
	char a[ADDR_MAX], key[KEY_MAX], detail[200];
	unsigned limit = g->lim.per_ip, open = 0;
	int64_t blocked_s = 0;

	(void)len;
	if (!limit && !g->lim.strikes)
		return true;
	addr_text(addr, a);
	strike_key(a, key);
	int64_t now = ota_guard_now_ms();
	pthread_mutex_lock(&g->mu);
	struct strike *k = g->lim.strikes ? *strike_slot(g, key) : NULL;
	if (k && k->until_ms > now)
		blocked_s = (k->until_ms - now + 999) / 1000;
	struct addr_count *c = *slot(g, a);
	if (c)
		open = c->n;
	pthread_mutex_unlock(&g->mu);
	if (blocked_s) {
		snprintf(detail, sizeof(detail),
		         "connection refused: %s is blocked for %lld s more (%u refused client "
		         "certificates within %u s)",
		         key, (long long)blocked_s, g->lim.strikes, g->lim.block_s);
		g->refused(g->ctx, "address-blocked", a, detail);
		return false;
	}
	if (limit && open >= limit) {
		snprintf(
		    detail, sizeof(detail),
		    "connection refused: %u connections from this address are open (the limit)",
		    limit);
		g->refused(g->ctx, "per-address-limit", a, detail);
		return false;
	}
	return true;
}

bool ota_guard_strike(struct ota_guard *g, struct ota_guard_conn *c)
{
	char key[KEY_MAX];
	bool blocked = false;

	if (!c || !g->lim.strikes)
		return false;
	strike_key(c->addr, key);
	int64_t now = ota_guard_now_ms(), span = (int64_t)g->lim.block_s * 1000;
	pthread_mutex_lock(&g->mu);
	struct strike **p = strike_slot(g, key);
	if (!*p && g->nstrikes < STRIKES_MAX && (*p = calloc(1, sizeof(**p)))) {
		snprintf((*p)->addr, sizeof((*p)->addr), "%s", key);
		g->nstrikes++;
	}
	struct strike *k = *p;
	if (k && k->until_ms <= now) {
		if (k->n == 0 || now - k->since_ms >= span) {
			k->n = 0;
			k->since_ms = now;
		}
		if (++k->n >= g->lim.strikes) {
			k->until_ms = now + span;
			k->n = 0;
			blocked = true;
		}
	}
	pthread_mutex_unlock(&g->mu);
	return blocked;
}

/* Forgets the addresses whose strikes and block are over (under the lock). */
static void forget_strikes(struct ota_guard *g, int64_t now_ms)
{
	int64_t span = (int64_t)g->lim.block_s * 1000;

	for (unsigned i = 0; i < BUCKETS && g->nstrikes; i++) {
		for (struct strike **p = &g->strikes[i]; *p;) {
			struct strike *k = *p;
			if (k->until_ms <= now_ms && now_ms - k->since_ms >= span) {
				*p = k->next;
				free(k);
				g->nstrikes--;
			} else
				p = &k->next;
		}
	}
}

static void set_phase(struct ota_guard *g, struct ota_guard_conn *c, enum ota_guard_phase phase)
{
	c->phase = phase;
	switch (phase) {
	case OTA_GUARD_HEADERS:
		c->deadline_ms = ota_guard_now_ms() + (int64_t)g->lim.header_s * 1000;
		break;
	case OTA_GUARD_BODY:
		c->deadline_ms = ota_guard_now_ms() + (int64_t)g->lim.body_s * 1000;
		break;
	case OTA_GUARD_BUSY:
		c->deadline_ms = 0;
		break;
	}
}

struct ota_guard_conn *ota_guard_open(struct ota_guard *g, int fd, const struct sockaddr *addr)
{
	struct ota_guard_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	addr_text(addr, c->addr);
	set_phase(g, c, OTA_GUARD_HEADERS);
	pthread_mutex_lock(&g->mu);
	struct addr_count **p = slot(g, c->addr);
	if (!*p)
		*p = calloc(1, sizeof(**p));
	if (*p) {
		snprintf((*p)->addr, sizeof((*p)->addr), "%s", c->addr);
		(*p)->n++;
	}
	c->next = g->conns;
	if (g->conns)
		g->conns->prev = c;
	g->conns = c;
	g->open++;
	pthread_mutex_unlock(&g->mu);
	return c;
}

const char *ota_guard_conn_addr(const struct ota_guard_conn *c)
{
	return c->addr;
}

void ota_guard_close(struct ota_guard *g, struct ota_guard_conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&g->mu);
	struct addr_count **p = slot(g, c->addr);
	if (*p && --(*p)->n == 0) {
		struct addr_count *gone = *p;
		*p = gone->next;
		free(gone);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		g->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	g->open--;
	pthread_mutex_unlock(&g->mu);
	free(c);
}

void ota_guard_phase(struct ota_guard *g, struct ota_guard_conn *c, enum ota_guard_phase phase)
{
	if (!c)
		return;
	pthread_mutex_lock(&g->mu);
	set_phase(g, c, phase);
	pthread_mutex_unlock(&g->mu);
}

void ota_guard_sweep(struct ota_guard *g, int64_t now_ms)
{
	struct {
		char addr[ADDR_MAX];
		enum ota_guard_phase phase;
	} cut[CUT_BATCH];
	unsigned n = 0;

	pthread_mutex_lock(&g->mu);
	forget_strikes(g, now_ms);
	for (struct ota_guard_conn *c = g->conns; c && n < CUT_BATCH; c = c->next) {
		if (c->cut || !c->deadline_ms || now_ms < c->deadline_ms)
			continue;
		/* Registered, so the descriptor is still this connection's (guard.h). */
		(void)shutdown(c->fd, SHUT_RDWR);
		c->cut = true;
		memcpy(cut[n].addr, c->addr, sizeof(c->addr));
		cut[n++].phase = c->phase;
	}
	pthread_mutex_unlock(&g->mu);
	for (unsigned i = 0; i < n; i++) {
		char detail[160];
		bool body = cut[i].phase == OTA_GUARD_BODY;
		snprintf(detail, sizeof(detail),
		         "connection closed: the request's %s did not arrive within %u s",
		         body ? "body" : "headers", body ? g->lim.body_s : g->lim.header_s);
		g->refused(g->ctx, body ? "body-timeout" : "header-timeout", cut[i].addr, detail);
	}
}

unsigned ota_guard_open_count(struct ota_guard *g)
{
	pthread_mutex_lock(&g->mu);
	unsigned n = g->open;
	pthread_mutex_unlock(&g->mu);
	return n;
}
