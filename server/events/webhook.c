/*
 * events/webhook.c - the destination check and the deliverers of webhooks (webhook.h). A
 * deliverer lists the endpoints it owns, and for each one that is active, due and behind the
 * head, reads up to BATCH audit entries after its cursor and posts those of its types one at a
 * time; entries not of its types only move the cursor. Each post resolves and checks the host
 * again and pins libcurl to the checked address (no second lookup that could answer
 * otherwise), follows no redirect, uses no proxy, and reads at most OTA_WEBHOOK_ANSWER_MAX
 * bytes of the answer.
 */
#include "events/webhook.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

#include "audit/audit.h"
#include "common/log.h"
#include "events/event.h"
#include "store/webhook_store.h"

#define BATCH 100
#define MAX_THREADS 16

/* ---- addresses ---- */

struct net {
	int family;
	unsigned char addr[16];
	unsigned bits;
};

static bool in_net(const struct net *n, int family, const unsigned char *a)
{
	unsigned full = n->bits / 8, rest = n->bits % 8;

	if (n->family != family)
		return false;
	if (memcmp(n->addr, a, full) != 0)
		return false;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if ((n->addr[full] & mask) != (a[full] & mask))
			return false;
	}
	return true;
}

static bool parse_net(const char *s, struct net *n)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, buf, n->addr) == 1)
		n->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, n->addr) == 1)
		n->family = AF_INET6;
	else
		return false;
	unsigned max = n->family == AF_INET ? 32 : 128;
	n->bits = max;
	if (slash) {
		char *end;
		unsigned long b = strtoul(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end || b > max)
			return false;
		n->bits = (unsigned)b;
	}
	return true;
}

/* Calls fn for each block of the comma-separated list; false when one is malformed. */
static bool each_net(const char *list, bool (*fn)(void *ctx, const struct net *n), void *ctx)
{
	const char *p = list;

	while (*p) {
		char item[64];
		size_t n;
		struct net net;
		while (*p == ' ' || *p == ',')
			p++;
		n = strcspn(p, ", ");
		if (n == 0)
			break;
		if (n >= sizeof(item))
			return false;
		memcpy(item, p, n);
		item[n] = '\0';
		if (!parse_net(item, &net))
			return false;
		if (fn && fn(ctx, &net))
			return true;
		p += n;
	}
	return true;
}

/* Blocks a destination may not be in unless allowed: not the public internet. */
static const char *const special[] = {
    "0.0.0.0/8",       "10.0.0.0/8",    "100.64.0.0/10",  "127.0.0.0/8",   "169.254.0.0/16",
    "172.16.0.0/12",   "192.0.0.0/24",  "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
    "240.0.0.0/4",     "::/128",        "::1/128",        "fc00::/7",      "fe80::/10",
    "ff00::/8",        "64:ff9b::/96",  "100::/64",       "2001:db8::/32", "192.0.2.0/24",
    "198.51.100.0/24", "203.0.113.0/24"};

struct probe {
	int family;
	const unsigned char *a;
	bool hit;
};

static bool probe_one(void *ctx, const struct net *n)
{
	struct probe *p = ctx;
	p->hit = in_net(n, p->family, p->a);
	return p->hit;
}

/* Whether the address may be a destination; why names it when not. */
static bool address_allowed(const struct ota_config *cfg, int family, const unsigned char *a,
                            const char *text, char *why, size_t whycap)
{
	unsigned char v4[16];
	struct probe p = {family, a, false};

	/* An IPv4-mapped IPv6 address is judged as the IPv4 address it maps. */
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (family == AF_INET6 && memcmp(a, mapped, 12) == 0) {
		memcpy(v4, a + 12, 4);
		p.family = AF_INET;
		p.a = v4;
	}
	if (!each_net(cfg->webhook_allow_networks, probe_one, &p))
		p.hit = false;
	if (p.hit)
		return true;
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
		struct net n;
		if (parse_net(special[i], &n) && in_net(&n, p.family, p.a)) {
			snprintf(why, whycap,
			         "destination %s is a loopback, private, link-local or reserved "
			         "address (%s) outside [webhooks] allow_networks",
			         text, special[i]);
			return false;
		}
	}
	return true;
}

enum ota_err ota_webhook_config_check(const struct ota_config *cfg, char *msg, size_t msglen)
{
	if (!each_net(cfg->webhook_allow_networks, NULL, NULL)) {
		snprintf(msg, msglen,
		         "[webhooks] allow_networks \"%s\" is not a comma-separated list of "
		         "address/prefix blocks",
		         cfg->webhook_allow_networks);
		return OTA_ERR_CONFIG;
	}
	return OTA_OK;
}

enum ota_err ota_webhook_check(const struct ota_config *cfg, const char *url, char *pin,
                               size_t pincap, char *why, size_t whycap)
{
	enum ota_err rc = OTA_ERR_INVALID;
	CURLU *u = NULL;
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *frag = NULL;
	struct addrinfo hints = {0}, *res = NULL;

	if (pin && pincap)
		pin[0] = '\0';
	if (!each_net(cfg->webhook_allow_networks, NULL, NULL)) {
		snprintf(why, whycap, "[webhooks] allow_networks is malformed");
		return OTA_ERR_CONFIG;
	}
	size_t len = strlen(url);
	if (len == 0 || len > 2048) {
		snprintf(why, whycap, "the URL is empty or longer than 2048 bytes");
		return OTA_ERR_INVALID;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f) {
			snprintf(why, whycap, "the URL holds a space or a control character");
			return OTA_ERR_INVALID;
		}
	}
	/* The scheme first, so that "ftp://..." is refused for its scheme whatever else. */
	const char *colon = strstr(url, "://");
	if (!colon) {
		snprintf(why, whycap, "not an absolute URL (scheme://host/...)");
		return OTA_ERR_INVALID;
	}
	if (!((colon - url == 5 && strncasecmp(url, "https", 5) == 0) ||
	      (colon - url == 4 && strncasecmp(url, "http", 4) == 0))) {
		snprintf(why, whycap, "scheme \"%.*s\" is not http or https",
		         (int)(colon - url > 16 ? 16 : colon - url), url);
		return OTA_ERR_INVALID;
	}
	u = curl_url();
	if (!u)
		return OTA_ERR_NOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		snprintf(why, whycap, "not a valid URL");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		snprintf(why, whycap, "credentials in the URL are not allowed");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
		snprintf(why, whycap, "a fragment (#...) in the URL is not allowed");
		goto out;
	}
	if (strcmp(scheme, "http") == 0 && !cfg->webhook_allow_http) {
		snprintf(why, whycap,
		         "plain http is not allowed ([webhooks] allow_http = false): use https");
		goto out;
	}
	/* curl keeps an IPv6 literal's brackets in the host part. */
	char name[256];
	size_t hl = strlen(host);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		snprintf(name, sizeof(name), "%.*s", (int)(hl - 2), host + 1);
	} else if (hl < sizeof(name)) {
		snprintf(name, sizeof(name), "%s", host);
	} else {
		snprintf(why, whycap, "the host name is too long");
		goto out;
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	int g = getaddrinfo(name, port, &hints, &res);
	if (g != 0 || !res) {
		snprintf(why, whycap, "host \"%.200s\" cannot be resolved: %s", name,
		         gai_strerror(g));
		goto out;
	}
	char first[INET6_ADDRSTRLEN] = "";
	bool first_v6 = false;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		char text[INET6_ADDRSTRLEN];
		const unsigned char *a;
		if (ai->ai_family == AF_INET)
			a = (const unsigned char *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		else if (ai->ai_family == AF_INET6)
			a = (const unsigned char *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		else
			continue;
		inet_ntop(ai->ai_family, a, text, sizeof(text));
		if (!address_allowed(cfg, ai->ai_family, a, text, why, whycap))
			goto out;
		if (!first[0]) {
			snprintf(first, sizeof(first), "%s", text);
			first_v6 = ai->ai_family == AF_INET6;
		}
	}
	if (!first[0]) {
		snprintf(why, whycap, "host \"%.200s\" has no IP address", name);
		goto out;
	}
	if (pin && pincap)
		snprintf(pin, pincap, "%s:%s:%s%s%s", host, port, first_v6 ? "[" : "", first,
		         first_v6 ? "]" : "");
	rc = OTA_OK;
out:
	if (res)
		freeaddrinfo(res);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_free(frag);
	curl_url_cleanup(u);
	return rc;
}

/* ---- delivery ---- */

struct ota_webhooks;

struct worker {
	struct ota_webhooks *w;
	unsigned index;
};

struct ota_webhooks {
	const struct ota_config *cfg;
	struct ota_store *st;
	struct ota_events_hub *hub;
	unsigned n;
	pthread_t th[MAX_THREADS];
	unsigned started;
	atomic_bool stop;
	struct worker wk[MAX_THREADS];
};

/* One entry read after the cursor: its seq, and its event when of the endpoint's types. */
struct item {
	uint64_t seq;
	char type[OTA_EVENT_TYPE_MAX + 1];
	char *json;
};

struct batch {
	const char *types;
	struct item items[BATCH];
	unsigned n;
	bool nomem;
};

static int collect(void *ctx, const struct ota_audit_row *row)
{
	struct batch *b = ctx;
	struct item *it = &b->items[b->n];

	it->seq = row->seq;
	it->json = NULL;
	snprintf(it->type, sizeof(it->type), "%s", row->e.action);
	if (ota_event_types_match(b->types, row->e.action)) {
		it->json = ota_event_json(row);
		if (!it->json) {
			b->nomem = true;
			return 1;
		}
	}
	b->n++;
	return 0;
}

struct answer {
	size_t got;
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct answer *a = ctx;
	size_t len = size * n;

	(void)p;
	/* Read only to the bound: then stop the transfer (the status line decides). */
	if (a->got + len > OTA_WEBHOOK_ANSWER_MAX)
		return 0;
	a->got += len;
	return len;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct ota_webhooks *w = ctx;
	(void)dt, (void)dn, (void)ut, (void)un;
	return atomic_load(&w->stop) ? 1 : 0;
}

/* Posts one event; true on a 2xx answer, else why says what went wrong. */
static bool post(struct ota_webhooks *w, const struct ota_store_webhook *hook,
                 const struct item *it, char *why, size_t whycap)
{
	const struct ota_config *cfg = w->cfg;
	char pin[600], sig[65], hdr[5][200];
	struct curl_slist *headers = NULL, *resolve = NULL;
	struct answer ans = {0};
	long status = 0;
	bool ok = false;
	int64_t t = (int64_t)time(NULL);
	size_t len = strlen(it->json);
	CURL *c;

	if (ota_webhook_check(cfg, hook->url, pin, sizeof(pin), why, whycap) != OTA_OK)
		return false;
	if (ota_event_sign(hook->secret, t, it->json, len, sig) != OTA_OK) {
		snprintf(why, whycap, "cannot sign");
		return false;
	}
	c = curl_easy_init();
	if (!c) {
		snprintf(why, whycap, "out of memory");
		return false;
	}
	snprintf(hdr[0], sizeof(hdr[0]), "OTA-Signature: t=%lld,v1=%s", (long long)t, sig);
	snprintf(hdr[1], sizeof(hdr[1]), "OTA-Event-Id: %llu", (unsigned long long)it->seq);
	snprintf(hdr[2], sizeof(hdr[2]), "OTA-Event-Type: %s", it->type);
	snprintf(hdr[3], sizeof(hdr[3]), "OTA-Webhook-Id: %s", hook->id);
	snprintf(hdr[4], sizeof(hdr[4]), "Content-Type: application/json");
	for (unsigned i = 0; i < 5; i++)
		headers = curl_slist_append(headers, hdr[i]);
	headers = curl_slist_append(headers, "Expect:");
	resolve = curl_slist_append(NULL, pin);
	curl_easy_setopt(c, CURLOPT_URL, hook->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, it->json);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "otad-webhook/1");
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
	                 cfg->webhook_allow_http ? "http,https" : "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)cfg->webhook_timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
	                 (long)(cfg->webhook_timeout < 10 ? cfg->webhook_timeout : 10));
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (cfg->webhook_ca[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->webhook_ca);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &ans);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && status > 0)) {
		ok = status >= 200 && status < 300;
		if (!ok)
			snprintf(why, whycap, "answered HTTP %ld", status);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(why, whycap, "no answer within %u s", cfg->webhook_timeout);
	} else {
		snprintf(why, whycap, "%s", curl_easy_strerror(rc));
	}
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	curl_slist_free_all(resolve);
	return ok;
}

static int64_t backoff(const struct ota_config *cfg, unsigned attempts)
{
	uint64_t s = 1;
	for (unsigned i = 1; i < attempts && s < cfg->webhook_backoff_max; i++)
		s *= 2;
	return (int64_t)(s < cfg->webhook_backoff_max ? s : cfg->webhook_backoff_max);
}

/* Delivers what follows hook's cursor, one batch; false when it stopped on a failure. */
static void run_hook(struct ota_webhooks *w, const struct ota_store_webhook *hook)
{
	struct batch *b = calloc(1, sizeof(*b));
	struct ota_audit_filter f = {0};
	uint64_t cursor = hook->cursor, skip_to = hook->cursor;
	bool more = false;

	if (!b)
		return;
	b->types = hook->types;
	f.after_seq = hook->cursor;
	f.limit = BATCH;
	if (ota_audit_query(w->st, &f, collect, b, &more) != OTA_OK || b->nomem) {
		log_err("webhook %s: cannot read the audit log", hook->id);
		goto out;
	}
	for (unsigned i = 0; i < b->n && !atomic_load(&w->stop); i++) {
		struct item *it = &b->items[i];
		char why[300];
		if (!it->json) {
			skip_to = it->seq;
			continue;
		}
		if (skip_to > cursor) {
			if (ota_store_webhook_advance(w->st, hook->id, cursor, skip_to, 0) !=
			    OTA_OK)
				goto out;
			cursor = skip_to;
		}
		if (post(w, hook, it, why, sizeof(why))) {
			if (ota_store_webhook_advance(w->st, hook->id, cursor, it->seq, 1) !=
			    OTA_OK)
				goto out;
			cursor = skip_to = it->seq;
			continue;
		}
		unsigned attempts = hook->attempts + 1;
		bool dead = attempts >= w->cfg->webhook_max_attempts;
		int64_t next = (int64_t)time(NULL) + backoff(w->cfg, attempts);
		if (dead)
			log_warn(
			    "webhook %s: event %llu failed %u times (%s): dead until redelivered",
			    hook->id, (unsigned long long)it->seq, attempts, why);
		else
			log_info("webhook %s: event %llu failed (%s), attempt %u, next in %lld s",
			         hook->id, (unsigned long long)it->seq, why, attempts,
			         (long long)(next - (int64_t)time(NULL)));
		if (ota_store_webhook_failed(w->st, hook->id, cursor, attempts, next, dead, why) !=
		    OTA_OK)
			log_err("webhook %s: cannot record a failed attempt", hook->id);
		goto out;
	}
	if (skip_to > cursor && !atomic_load(&w->stop))
		(void)(ota_store_webhook_advance(w->st, hook->id, cursor, skip_to, 0) == OTA_OK);
out:
	for (unsigned i = 0; i < b->n; i++)
		free(b->items[i].json);
	free(b);
}

struct pass {
	struct worker *wk;
	uint64_t head;
	int64_t now;
};

static unsigned owner(const char *id, unsigned n)
{
	unsigned h = 5381;
	for (const char *p = id; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return h % n;
}

static int visit(void *ctx, const struct ota_store_webhook *hook)
{
	struct pass *p = ctx;
	struct ota_webhooks *w = p->wk->w;

	if (atomic_load(&w->stop))
		return 1;
	if (owner(hook->id, w->n) != p->wk->index || hook->dead || hook->cursor >= p->head ||
	    hook->next_at > p->now)
		return 0;
	run_hook(w, hook);
	return 0;
}

static void *deliver(void *arg)
{
	struct worker *wk = arg;
	struct ota_webhooks *w = wk->w;
	uint64_t head = 0;

	while (!atomic_load(&w->stop)) {
		struct pass p = {wk, ota_events_hub_head(w->hub), (int64_t)time(NULL)};
		head = p.head;
		if (ota_store_webhook_list(w->st, NULL, 1000000, visit, &p, NULL) != OTA_OK)
			log_err("webhooks: cannot list the endpoints");
		/* A new entry wakes at once; retries and redeliveries are seen within a second. */
		ota_events_hub_wait(w->hub, head, 1000);
	}
	return NULL;
}

enum ota_err ota_webhooks_start(const struct ota_config *cfg, struct ota_store *st,
                                struct ota_events_hub *hub, struct ota_webhooks **out, char *msg,
                                size_t msglen)
{
	struct ota_webhooks *w;
	enum ota_err rc;

	*out = NULL;
	rc = ota_webhook_config_check(cfg, msg, msglen);
	if (rc != OTA_OK)
		return rc;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(msg, msglen, "libcurl cannot be initialised");
		return OTA_ERR_IO;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return OTA_ERR_NOMEM;
	w->cfg = cfg;
	w->st = st;
	w->hub = hub;
	w->n = cfg->webhook_threads < MAX_THREADS ? cfg->webhook_threads : MAX_THREADS;
	if (w->n == 0)
		w->n = 1;
	for (unsigned i = 0; i < w->n; i++) {
		w->wk[i] = (struct worker){w, i};
		if (pthread_create(&w->th[i], NULL, deliver, &w->wk[i]) != 0) {
			snprintf(msg, msglen, "cannot start a webhook thread");
			ota_webhooks_stop(w);
			return OTA_ERR_IO;
		}
		w->started++;
	}
	*out = w;
	return OTA_OK;
}

void ota_webhooks_stop(struct ota_webhooks *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	for (unsigned i = 0; i < w->started; i++)
		pthread_join(w->th[i], NULL);
	free(w);
	curl_global_cleanup();
}
