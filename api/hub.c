/*
 * hub.c - the feed hub: how committed events reach long polls and Server-Sent Events streams
 * without a thread per waiting connection and without slowing the writer.
 *
 * Writers only bump a counter and signal the hub's one thread (cs_hub_notify: a mutex and a
 * condition variable, never a wait on any reader). The hub thread then reads the new events
 * from the store once, formats each as an SSE frame once, keeps the frames in a ring shared by
 * every stream, and wakes the waiters those events concern: a parked long poll goes back to the
 * worker pool, a parked stream's connection is resumed (libmicrohttpd suspend/resume). A
 * waiting connection therefore holds no thread, and a thousand streams on the global feed cost
 * one store read and one JSON encoding per event, plus a copy each.
 *
 * The ring covers a range of positions (from, to]: every event of the store in that range is in
 * it (erased ones are blanked), in position order. A stream whose position is before `from`
 * reads the store instead (catch-up) until it reaches the ring; positions make the two join
 * without a gap or a repeat. The ring is bounded (RING_FRAMES frames, RING_BYTES bytes): the
 * oldest frames go first, and a stream left behind simply reads the store. Nothing is ever
 * buffered per subscriber here, so a reader that stops reading holds nothing but its socket's
 * buffers, and libmicrohttpd's idle timeout drops it (server.c). While no stream is attached
 * the hub keeps no frames: it only moves the ring's range to the end of the log.
 *
 * Interest: the hub formats only the events some attached stream can want (its tenant's global
 * stream, or that conversation's stream: a hash of attached (tenant, conversation) pairs); the
 * others get a blank slot, so a thousand viewers of quiet conversations do not make every busy
 * conversation's events be encoded. A stream attaching after an event was blanked cannot trust
 * the ring for it, so attaching returns the ring's end at that moment: before it, the stream
 * reads the store. Attaching and publishing both hold the ring's write lock, so no event slips
 * between the two.
 *
 * Parking is race-free by a counter: a waiter reads cs_hub_published() BEFORE it looks for
 * events, and cs_hub_park() refuses (the caller looks again) when the hub has published since.
 * Waking is targeted: a waiter is woken by an event of its tenant (and conversation and types,
 * for a stream), by its deadline (the long poll's wait_ms, the stream's heartbeat), or by drain.
 *
 * Erase: the erase handler blanks the conversation's frames before it answers (cs_hub_forget)
 * and leaves a note, so that events the hub read from a snapshot older than the erase are not
 * published after it; the hub blanks them again when it reads the conversation_deleted, which
 * itself stays (followers erase on it, and a conversation's stream ends with it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#define RING_FRAMES    65536u
#define RING_BYTES     (32u << 20)
#define HUB_PAGE       1000
#define INTERESTS      1024u /* hash buckets of attached (tenant, conversation) pairs */
#define WAITER_BUCKETS 1024u /* hash buckets of parked waiters, by (tenant, conversation) */

/* An erased conversation: events of it before its conversation_deleted are not published, even
 * when the hub read them from a snapshot older than the erase. Dropped once the hub is past. */
typedef struct erasure {
	struct erasure *next;
	uint64_t deleted_at;
	char tenant[CS_MAX_ID_LEN + 1];
	char conversation[CS_MAX_ID_LEN + 1];
} erasure;

/* Streams attached to one tenant's global feed (conversation "") or one conversation. */
typedef struct interest {
	struct interest *next;
	unsigned streams;
	size_t len;
	char key[]; /* tenant '\0' conversation */
} interest;

typedef struct frame {
	uint64_t position;
	const char *tenant, *conversation, *type; /* into data */
	size_t len;				  /* of the SSE text; 0 once blanked */
	char *text;				  /* into data */
	char data[];
} frame;

struct cs_hub {
	cs_server *srv;
	pthread_t thread;
	bool started;

	/* lock: the counters, the waiters and the hub thread's wake-up */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t notified;  /* bumped by every committed write */
	uint64_t published; /* bumped after each round the hub thread makes */
	bool stop, draining;
	uint64_t nearest;		    /* the deadline the hub thread waits for (0: none) */
	cs_waiter *waiters[WAITER_BUCKETS]; /* parked waiters, hashed by their key */
	size_t n_waiters;

	/* ring_lock: the frames (read-locked by streams copying, write-locked by the hub) */
	pthread_rwlock_t ring_lock;
	frame **ring; /* circular, RING_FRAMES slots */
	size_t first, n, bytes;
	uint64_t from, to;

	interest *interests[INTERESTS]; /* under ring_lock */
	erasure *erased;		/* under ring_lock: erasures the hub has not passed yet */

	atomic_uint streams; /* attached SSE streams */
	atomic_ullong frames_total, streams_total;
};

uint64_t cs_mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

bool cs_types_has(const cs_types *t, const char *type)
{
	if (!t || !t->n)
		return true;
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->names[i], type) == 0)
			return true;
	return false;
}

/* Whether an event of (@tenant, @conversation, @type) concerns @w. */
static bool concerns(const cs_waiter *w, const char *tenant, const char *conversation,
		     const char *type)
{
	return strcmp(w->tenant, tenant) == 0 &&
	       (!w->conversation || strcmp(w->conversation, conversation) == 0) &&
	       cs_types_has(w->types, type);
}

/* ---- the ring --------------------------------------------------------------------------- */

static frame *ring_at(const cs_hub *h, size_t i)
{
	return h->ring[(h->first + i) % RING_FRAMES];
}

static void ring_drop_oldest(cs_hub *h)
{
	frame *f = ring_at(h, 0);
	h->from = f->position;
	h->bytes -= f->len;
	free(f);
	h->first = (h->first + 1) % RING_FRAMES;
	h->n--;
}

/* Add @f (taken over) at the end; the caller holds ring_lock for writing. */
static void ring_push(cs_hub *h, frame *f)
{
	while (h->n && (h->n == RING_FRAMES || h->bytes + f->len > RING_BYTES))
		ring_drop_oldest(h);
	h->ring[(h->first + h->n) % RING_FRAMES] = f;
	h->n++;
	h->bytes += f->len;
	h->to = f->position;
}

/* Blank the frames of (@tenant, @conversation) before @position (its conversation_deleted, which
 * stays, as what follows it may be a new conversation of the same id); the caller holds
 * ring_lock for writing. */
static void ring_blank(cs_hub *h, const char *tenant, const char *conversation, uint64_t position)
{
	for (size_t i = 0; i < h->n && ring_at(h, i)->position < position; i++) {
		frame *f = ring_at(h, i);
		if (f->len && strcmp(f->tenant, tenant) == 0 &&
		    strcmp(f->conversation, conversation) == 0) {
			h->bytes -= f->len;
			f->len = 0;
		}
	}
}

/* The index of the first frame after @after (h->n when none is). */
static size_t ring_find(const cs_hub *h, uint64_t after)
{
	size_t lo = 0, hi = h->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ring_at(h, mid)->position > after)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* ---- interest ------------------------------------------------------------------------- */

static size_t interest_key(char *key, const char *tenant, const char *conversation)
{
	size_t lt = strlen(tenant) + 1, lc = strlen(conversation);
	memcpy(key, tenant, lt);
	memcpy(key + lt, conversation, lc);
	return lt + lc;
}

static uint64_t fnv1a(const char *key, size_t len)
{
	uint64_t x = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		x = (x ^ (unsigned char)key[i]) * 1099511628211ull;
	return x | 1; /* never 0: 0 marks an empty slot of a round's key set */
}

/* The hash of (@tenant, @conversation): "" for the tenant's whole feed. */
static uint64_t key_hash(const char *tenant, const char *conversation)
{
	char key[2 * CS_MAX_ID_LEN + 2];
	return fnv1a(key, interest_key(key, tenant, conversation));
}

static interest **interest_slot(cs_hub *h, const char *key, size_t len)
{
	interest **p = &h->interests[fnv1a(key, len) % INTERESTS];
	while (*p && ((*p)->len != len || memcmp((*p)->key, key, len) != 0))
		p = &(*p)->next;
	return p;
}

/* Whether an attached stream can want events of (@tenant, @conversation). */
static bool interested(cs_hub *h, const char *tenant, const char *conversation)
{
	char key[2 * CS_MAX_ID_LEN + 2];
	size_t len = interest_key(key, tenant, "");
	if (*interest_slot(h, key, len))
		return true;
	len = interest_key(key, tenant, conversation);
	return *interest_slot(h, key, len) != NULL;
}

uint64_t cs_hub_attach(cs_server *srv, const char *tenant, const char *conversation)
{
	cs_hub *h = srv->hub;
	char key[2 * CS_MAX_ID_LEN + 2];
	size_t len = interest_key(key, tenant, conversation ? conversation : "");
	pthread_rwlock_wrlock(&h->ring_lock);
	interest **p = interest_slot(h, key, len);
	if (!*p && (*p = calloc(1, sizeof(**p) + len))) {
		memcpy((*p)->key, key, len);
		(*p)->len = len;
	}
	if (*p)
		(*p)->streams++;
	uint64_t trusted = *p ? h->to : UINT64_MAX; /* no memory: always read the store */
	pthread_rwlock_unlock(&h->ring_lock);
	atomic_fetch_add(&h->streams, 1);
	atomic_fetch_add(&h->streams_total, 1);
	return trusted;
}

void cs_hub_detach(cs_server *srv, const char *tenant, const char *conversation)
{
	cs_hub *h = srv->hub;
	char key[2 * CS_MAX_ID_LEN + 2];
	size_t len = interest_key(key, tenant, conversation ? conversation : "");
	pthread_rwlock_wrlock(&h->ring_lock);
	interest **p = interest_slot(h, key, len), *it = *p;
	if (it && !--it->streams) {
		*p = it->next;
		free(it);
	}
	pthread_rwlock_unlock(&h->ring_lock);
	atomic_fetch_sub(&h->streams, 1);
}

/* ---- frames ----------------------------------------------------------------------------- */

/* @ev's frame: the SSE text and what waiters are matched on; a blank one (the position alone)
 * when no attached stream can want it. NULL when out of memory. */
static frame *frame_new(const Convstore__V1__Event *ev, bool wanted)
{
	if (!wanted) {
		frame *f = calloc(1, sizeof(*f) + 1);
		if (f) {
			f->position = ev->position;
			f->tenant = f->conversation = f->type = f->text = f->data;
		}
		return f;
	}
	cs_buf text = {0};
	if (cs_sse_frame(&text, ev))
		return NULL;
	size_t lt = strlen(ev->tenant) + 1, lc = strlen(ev->conversation_id) + 1,
	       ly = strlen(ev->type) + 1;
	frame *f = malloc(sizeof(*f) + lt + lc + ly + text.len);
	if (f) {
		char *p = f->data;
		f->position = ev->position;
		f->tenant = memcpy(p, ev->tenant, lt);
		f->conversation = memcpy(p += lt, ev->conversation_id, lc);
		f->type = memcpy(p += lc, ev->type, ly);
		f->text = memcpy(p += ly, text.p, text.len);
		f->len = text.len;
	}
	free(text.p);
	return f;
}

int cs_hub_copy(cs_server *srv, const cs_waiter *filter, uint64_t trusted, uint64_t *after,
		cs_buf *out, size_t budget, bool *ended)
{
	cs_hub *h = srv->hub;
	pthread_rwlock_rdlock(&h->ring_lock);
	if (*after < h->from || *after < trusted) {
		pthread_rwlock_unlock(&h->ring_lock);
		return CS_HUB_BEHIND;
	}
	int rc = CS_OK;
	size_t i = ring_find(h, *after);
	for (; i < h->n && out->len < budget && !*ended; i++) {
		const frame *f = ring_at(h, i);
		if (f->len && concerns(filter, f->tenant, f->conversation, f->type) &&
		    (rc = cs_buf_add(out, f->text, f->len)))
			break;
		*after = f->position;
		/* a conversation's stream ends with its deletion, whatever its ?types= */
		if (filter->conversation && f->len && !strcmp(f->type, "conversation_deleted") &&
		    !strcmp(f->tenant, filter->tenant) &&
		    !strcmp(f->conversation, filter->conversation))
			*ended = true;
	}
	if (!rc && !*ended && i == h->n && h->to > *after)
		*after = h->to;
	pthread_rwlock_unlock(&h->ring_lock);
	return rc;
}

void cs_hub_forget(cs_server *srv, const char *tenant, const char *conversation,
		   uint64_t deleted_at)
{
	cs_hub *h = srv->hub;
	erasure *e = calloc(1, sizeof(*e));
	pthread_rwlock_wrlock(&h->ring_lock);
	ring_blank(h, tenant, conversation, deleted_at);
	if (e && deleted_at > h->to) { /* the hub may still publish what it read before */
		e->deleted_at = deleted_at;
		snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
		snprintf(e->conversation, sizeof(e->conversation), "%s", conversation);
		e->next = h->erased;
		h->erased = e;
		e = NULL;
	}
	pthread_rwlock_unlock(&h->ring_lock);
	free(e);
}

/* Whether @ev belongs to a conversation erased after it; drops erasures the hub is past.
 * The caller holds ring_lock for writing. */
static bool erased(cs_hub *h, const Convstore__V1__Event *ev)
{
	bool gone = false;
	for (erasure **p = &h->erased, *e; (e = *p);) {
		if (ev->position >= e->deleted_at) { /* published up to its deletion: done */
			*p = e->next;
			free(e);
			continue;
		}
		gone = gone || (strcmp(e->tenant, ev->tenant) == 0 &&
				strcmp(e->conversation, ev->conversation_id) == 0);
		p = &e->next;
	}
	return gone;
}

/* ---- waiters ---------------------------------------------------------------------------- */

uint64_t cs_hub_published(cs_server *srv)
{
	cs_hub *h = srv->hub;
	pthread_mutex_lock(&h->lock);
	uint64_t p = h->published;
	pthread_mutex_unlock(&h->lock);
	return p;
}

static void unlink_waiter(cs_hub *h, cs_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		h->waiters[w->key % WAITER_BUCKETS] = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->parked = false;
	h->n_waiters--;
}

bool cs_hub_park(cs_server *srv, cs_waiter *w, uint64_t seen)
{
	cs_hub *h = srv->hub;
	pthread_mutex_lock(&h->lock);
	bool park = h->published == seen && !h->draining;
	if (park) {
		w->key = key_hash(w->tenant, w->conversation ? w->conversation : "");
		cs_waiter **head = &h->waiters[w->key % WAITER_BUCKETS];
		w->prev = NULL;
		w->next = *head;
		if (*head)
			(*head)->prev = w;
		*head = w;
		w->parked = true;
		h->n_waiters++;
		if (w->on_park)
			w->on_park(w);
		if (!h->nearest || w->deadline_ms < h->nearest) {
			h->nearest = w->deadline_ms; /* the hub thread must wake sooner */
			pthread_cond_signal(&h->cond);
		}
	}
	pthread_mutex_unlock(&h->lock);
	return park;
}

void cs_hub_unpark(cs_server *srv, cs_waiter *w)
{
	cs_hub *h = srv->hub;
	pthread_mutex_lock(&h->lock);
	if (w->parked)
		unlink_waiter(h, w);
	pthread_mutex_unlock(&h->lock);
}

/* The keys of a round's events already looked at: a hash set of (tenant, conversation) and
 * (tenant, "") hashes. */
#define ROUND_KEYS 4096u /* > 2 * HUB_PAGE, so that it never fills */

/* Add @k; false when it was there already. */
static bool round_add(uint64_t *set, uint64_t k)
{
	size_t j = k % ROUND_KEYS;
	while (set[j] && set[j] != k)
		j = (j + 1) % ROUND_KEYS;
	if (set[j])
		return false;
	set[j] = k;
	return true;
}

static void wake_one(cs_hub *h, cs_waiter *w)
{
	unlink_waiter(h, w);
	w->wake(w);
}

/*
 * Wake the waiters @events (may be NULL) concern, those past their deadline, or all when
 * draining. Waiters are hashed by their key, so a round looks only at the buckets of its
 * events' keys - what it wakes, not every parked waiter - and walks them all only when a
 * deadline is due. The caller holds h->lock. Returns the nearest deadline left (or 0).
 */
static uint64_t wake(cs_hub *h, Convstore__V1__Event *const *events, size_t n)
{
	static uint64_t seen[ROUND_KEYS]; /* only the hub thread and drain call this, locked */
	if (n)
		memset(seen, 0, sizeof(seen));
	for (size_t i = 0; i < 2 * n; i++) {
		const Convstore__V1__Event *ev = events[i / 2];
		uint64_t k = key_hash(ev->tenant, i % 2 ? ev->conversation_id : "");
		if (!round_add(seen, k))
			continue;
		for (cs_waiter *w = h->waiters[k % WAITER_BUCKETS], *next; w; w = next) {
			next = w->next;
			bool go = false;
			for (size_t j = 0; w->key == k && !go && j < n; j++)
				go = concerns(w, events[j]->tenant, events[j]->conversation_id,
					      events[j]->type);
			if (go)
				wake_one(h, w);
		}
	}
	uint64_t now = cs_mono_ms();
	if (h->draining || (h->nearest && now >= h->nearest)) {
		uint64_t nearest = 0;
		for (size_t b = 0; b < WAITER_BUCKETS; b++)
			for (cs_waiter *w = h->waiters[b], *next; w; w = next) {
				next = w->next;
				if (h->draining || w->deadline_ms <= now)
					wake_one(h, w);
				else if (!nearest || w->deadline_ms < nearest)
					nearest = w->deadline_ms;
			}
		h->nearest = nearest;
	}
	return h->nearest;
}

/* Wake every parked waiter. The caller holds h->lock. */
static void wake_all(cs_hub *h)
{
	for (size_t b = 0; b < WAITER_BUCKETS; b++)
		while (h->waiters[b])
			wake_one(h, h->waiters[b]);
}

/* ---- the hub thread ----------------------------------------------------------------------- */

/* Move the ring's range to the end of the log without keeping frames (no stream attached). */
static void skip_to_end(cs_hub *h)
{
	cs_store_stats st;
	if (cs_store_stats_get(&st, h->srv->store, NULL))
		return;
	pthread_rwlock_wrlock(&h->ring_lock);
	while (h->n)
		ring_drop_oldest(h);
	if (st.last_position > h->to)
		h->from = h->to = st.last_position;
	pthread_rwlock_unlock(&h->ring_lock);
}

/* Put @page's events into the ring (when streams want frames) and move its range past them. */
static void publish(cs_hub *h, const cs_event_page *page, bool keep)
{
	pthread_rwlock_wrlock(&h->ring_lock);
	for (size_t i = 0; i < page->n; i++) {
		const Convstore__V1__Event *ev = page->events[i];
		bool wanted = !erased(h, ev) && interested(h, ev->tenant, ev->conversation_id);
		frame *f = keep ? frame_new(ev, wanted) : NULL;
		if (ev->payload_case == CONVSTORE__V1__EVENT__PAYLOAD_CONVERSATION_DELETED)
			ring_blank(h, ev->tenant, ev->conversation_id, ev->position);
		if (f) {
			if (f->len)
				atomic_fetch_add(&h->frames_total, 1);
			ring_push(h, f);
		} else { /* not kept (or no memory): the ring starts after it */
			while (h->n)
				ring_drop_oldest(h);
			h->from = h->to = ev->position;
		}
	}
	pthread_rwlock_unlock(&h->ring_lock);
}

/* One round: read what was committed since the ring's end, publish it, wake who it concerns.
 * Returns whether there may be more to read. */
static bool round_once(cs_hub *h)
{
	cs_event_page page = {0};
	bool keep = atomic_load(&h->streams) > 0, more = false;
	pthread_mutex_lock(&h->lock);
	bool anyone = h->n_waiters > 0;
	pthread_mutex_unlock(&h->lock);
	bool skipped = !keep && !anyone;
	if (skipped) {
		skip_to_end(h);
	} else {
		pthread_rwlock_rdlock(&h->ring_lock);
		uint64_t after = h->to;
		pthread_rwlock_unlock(&h->ring_lock);
		cs_error err = CS_ERROR_INIT;
		if (cs_store_read_feed(&page, h->srv->store, NULL, after, HUB_PAGE, &err)) {
			/* try again in a second (woken sooner by the next write), not at the next
			 * write only: a quiet server would otherwise never deliver what is there */
			cs_log(h->srv, CS_LOG_ERROR, "feed hub: %s", err.msg);
			struct timespec second = {1, 0};
			nanosleep(&second, NULL);
			more = true;
		}
		publish(h, &page, keep);
		more = more || page.n == HUB_PAGE;
	}
	pthread_mutex_lock(&h->lock);
	h->published++;
	if (skipped) /* whoever parked during this round missed the events it skipped */
		wake_all(h);
	else
		wake(h, page.events, page.n);
	pthread_mutex_unlock(&h->lock);
	cs_event_page_deinit(&page);
	return more;
}

static void *hub_main(void *arg)
{
	cs_hub *h = arg;
	uint64_t seen = 0;
	bool more = true; /* the first round starts the ring at the end of the log */
	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		if (!more && h->notified == seen) {
			uint64_t nearest = wake(h, NULL, 0);
			if (h->notified == seen) {
				if (nearest) {
					struct timespec t;
					clock_gettime(CLOCK_MONOTONIC, &t);
					uint64_t now = cs_mono_ms();
					uint64_t ms = nearest > now ? nearest - now : 0;
					t.tv_sec += (time_t)(ms / 1000);
					t.tv_nsec += (long)(ms % 1000) * 1000000L;
					if (t.tv_nsec >= 1000000000L) {
						t.tv_sec++;
						t.tv_nsec -= 1000000000L;
					}
					pthread_cond_timedwait(&h->cond, &h->lock, &t);
				} else {
					pthread_cond_wait(&h->cond, &h->lock);
				}
				continue;
			}
		}
		seen = h->notified;
		pthread_mutex_unlock(&h->lock);
		more = round_once(h);
		pthread_mutex_lock(&h->lock);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

void cs_hub_notify(cs_server *srv)
{
	cs_hub *h = srv->hub;
	pthread_mutex_lock(&h->lock);
	h->notified++;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

void cs_hub_figures(cs_server *srv, cs_hub_figures_t *out)
{
	cs_hub *h = srv->hub;
	out->streams = atomic_load(&h->streams);
	out->streams_total = atomic_load(&h->streams_total);
	out->frames_total = atomic_load(&h->frames_total);
	pthread_mutex_lock(&h->lock);
	out->waiters = h->n_waiters;
	pthread_mutex_unlock(&h->lock);
	pthread_rwlock_rdlock(&h->ring_lock);
	out->ring_frames = h->n;
	out->ring_bytes = h->bytes;
	pthread_rwlock_unlock(&h->ring_lock);
}

void cs_hub_drain(cs_server *srv)
{
	cs_hub *h = srv->hub;
	pthread_mutex_lock(&h->lock);
	h->draining = true;
	wake_all(h);
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

int cs_hub_start(cs_server *srv, cs_error *err)
{
	cs_hub *h = calloc(1, sizeof(*h));
	frame **ring = calloc(RING_FRAMES, sizeof(*ring));
	if (!h || !ring) {
		free(h);
		free(ring);
		return cs_error_set(err, CS_ENOMEM, "out of memory for the feed hub");
	}
	h->srv = srv;
	h->ring = ring;
	pthread_mutex_init(&h->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_rwlock_init(&h->ring_lock, NULL);
	srv->hub = h;
	skip_to_end(h);
	if (pthread_create(&h->thread, NULL, hub_main, h)) {
		cs_hub_stop(srv);
		return cs_error_set(err, CS_EIO, "cannot start the feed hub thread");
	}
	h->started = true;
	return CS_OK;
}

void cs_hub_stop(cs_server *srv)
{
	cs_hub *h = srv->hub;
	if (!h)
		return;
	if (h->started) {
		pthread_mutex_lock(&h->lock);
		h->stop = true;
		pthread_cond_signal(&h->cond);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	while (h->n)
		ring_drop_oldest(h);
	while (h->erased) {
		erasure *e = h->erased;
		h->erased = e->next;
		free(e);
	}
	for (size_t i = 0; i < INTERESTS; i++)
		while (h->interests[i]) {
			interest *it = h->interests[i];
			h->interests[i] = it->next;
			free(it);
		}
	free(h->ring);
	pthread_rwlock_destroy(&h->ring_lock);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
	srv->hub = NULL;
}
