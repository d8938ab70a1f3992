/*
 * commit.c - group commit: the request queue and the single writer thread.
 *
 * LMDB allows one write transaction at a time, and a durable commit costs an fsync, which
 * dwarfs the work of writing a few records. So callers never write: cs_committer_submit()
 * queues a prepared request and sleeps; the writer takes EVERY request queued at that moment
 * (up to max_batch_events), applies them one after another in one transaction, commits once
 * (one fsync), and wakes each caller with its own result. Under load, the requests that arrive
 * during one fsync form the next batch, so throughput grows with concurrency while a lone
 * caller still pays just one commit.
 *
 * Lingering: the callers woken by one commit come back with their next request a few
 * microseconds later, while the writer is already taking the next batch; left alone, two
 * half-sized groups alternate (measured: 16 appenders gave 8 events per commit). So after a
 * commit the writer expects back the callers it just woke plus those already queued, and
 * before taking the next batch waits until that many are queued, at most half the last
 * commit's duration (and never over CS_LINGER_MAX_NS), and not at all once the queue holds a
 * full batch. A lone caller never waits: it is the only one expected.
 *
 * Failure isolation:
 *  - A request that fails its checks or conflicts (cs_request_apply sets req->rc) wrote nothing
 *    and fails alone; the rest of the batch commits.
 *  - MDB_MAP_FULL (CS_EMAPFULL) aborts the transaction; the writer grows the map with no
 *    transaction open and runs the whole batch again (nothing of it was committed, so the retry
 *    is exact). A full disk is CS_EFULL and is never answered by growing.
 *  - Any other transaction failure (disk full, map at its cap, I/O) with more than one request
 *    in the batch: each request is retried in a transaction of its own, so the one that does not
 *    fit fails and the others still commit.
 *
 * Positions come from the meta record "last_position", read and written in the same
 * transaction, so they stay strictly increasing across restarts and never depend on the log's
 * last key (which erasure may remove).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#define CS_LINGER_MAX_NS 1000000u

#include "internal.h"

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Wait (lock held) for the last batch's callers to come back; see "Lingering" above. */
static void linger(cs_committer *c)
{
	if (c->queued >= c->linger_target || c->queued_events >= c->max_batch_events || c->closing)
		return;
	uint64_t wait = c->last_commit_ns / 2;
	uint64_t until = mono_ns() + (wait < CS_LINGER_MAX_NS ? wait : CS_LINGER_MAX_NS);
	struct timespec ts = {(time_t)(until / 1000000000u), (long)(until % 1000000000u)};
	while (c->queued < c->linger_target && c->queued_events < c->max_batch_events &&
	       !c->closing)
		if (pthread_cond_timedwait(&c->work, &c->lock, &ts) == ETIMEDOUT)
			break;
}

/* The server clock for a batch, never earlier than the previous batch's: recorded_at is then
 * in position order, which retention by age and the list's updated_after rely on. */
static void now_ts(cs_committer *c, Convstore__V1__Timestamp *ts)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	convstore__v1__timestamp__init(ts);
	ts->seconds = t.tv_sec;
	ts->nanos = (int32_t)t.tv_nsec;
	if (ts->seconds < c->last_now.seconds ||
	    (ts->seconds == c->last_now.seconds && ts->nanos < c->last_now.nanos))
		*ts = c->last_now;
	c->last_now = *ts;
}

/* One attempt at committing @reqs (a linked list of @count) in one transaction. */
static int commit_once(cs_committer *c, cs_request *reqs, size_t count, cs_error *err)
{
	cs_store *s = c->store;
	cs_batch_ctx ctx = {.store = s};
	int rc = cs_txn_begin(&ctx.txn, &s->env, true, err);
	if (rc)
		return rc;
	now_ts(c, &ctx.now);
	rc = cs_meta_get_u64(ctx.txn, &s->env, CS_META_LAST_POSITION, &ctx.next_position, err);
	if (!rc)
		rc = cs_meta_get_u64(ctx.txn, &s->env, CS_META_CONVERSATIONS, &ctx.conversations,
				     err);
	ctx.next_position++;
	uint64_t first = ctx.next_position, conversations = ctx.conversations;
	size_t done = 0;
	for (cs_request *r = reqs; !rc && done < count; r = r->next, done++)
		rc = cs_request_apply(&ctx, r, err);
	if (!rc && ctx.next_position != first)
		rc = cs_meta_put_u64(ctx.txn, &s->env, CS_META_LAST_POSITION, ctx.next_position - 1,
				     err);
	if (!rc && ctx.conversations != conversations)
		rc = cs_meta_put_u64(ctx.txn, &s->env, CS_META_CONVERSATIONS, ctx.conversations,
				     err);
	if (rc) {
		cs_txn_abort(&s->env, ctx.txn);
		return rc;
	}
	return cs_txn_commit(&s->env, ctx.txn, err);
}

/* Commit with growth: on a full map, grow and run the same batch again. */
static int commit_growing(cs_committer *c, cs_request *reqs, size_t count, cs_error *err)
{
	for (;;) {
		int rc = commit_once(c, reqs, count, err);
		if (rc != CS_EMAPFULL)
			return rc;
		/* Grow by at least the batch's size so that one huge request fits. */
		size_t need = 0;
		cs_request *r = reqs;
		for (size_t i = 0; i < count; i++, r = r->next)
			for (size_t j = 0; j < r->n; j++)
				need += cs_record_size(&r->events[j].body, 64) + 1024;
		if ((rc = cs_env_grow(&c->store->env, 2 * need, err)) != CS_OK)
			return rc; /* CS_EFULL at the cap or a full disk: err says which */
	}
}

static void fail_request(cs_request *r, int rc, const cs_error *err)
{
	r->rc = rc;
	r->err = *err;
	r->err.index = CS_NO_INDEX;
}

static void commit_batch(cs_committer *c, cs_request *reqs, size_t count)
{
	cs_error err = CS_ERROR_INIT;
	int rc = commit_growing(c, reqs, count, &err);
	if (rc == CS_OK) {
		c->commits++;
		for (cs_request *r = reqs; r; r = r->next)
			c->appends += r->rc == CS_OK;
		return;
	}
	if (count == 1) {
		fail_request(reqs, rc, &err);
		return;
	}
	/* Isolate the request that does not fit: each alone. */
	cs_request *r = reqs;
	for (size_t i = 0; i < count; i++) {
		cs_request *next = r->next;
		cs_error e1 = CS_ERROR_INIT;
		int rc1 = commit_growing(c, r, 1, &e1);
		if (rc1) {
			fail_request(r, rc1, &e1);
		} else {
			c->commits++;
			c->appends += r->rc == CS_OK;
		}
		r = next;
	}
}

static void *writer_main(void *arg)
{
	cs_committer *c = arg;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->head && !c->closing)
			pthread_cond_wait(&c->work, &c->lock);
		if (!c->head)
			break; /* closing, and every queued request is done */
		linger(c);
		/* Take a batch off the queue: whole requests up to max_batch_events. */
		cs_request *batch = c->head, *last = c->head;
		size_t count = 1, events = c->head->n;
		while (last->next && events + last->next->n <= c->max_batch_events) {
			last = last->next;
			events += last->n;
			count++;
		}
		c->head = last->next;
		if (!c->head)
			c->tail = NULL;
		last->next = NULL;
		c->queued -= count;
		c->queued_events -= events;
		pthread_mutex_unlock(&c->lock);

		uint64_t t0 = mono_ns();
		commit_batch(c, batch, count);
		c->last_commit_ns = mono_ns() - t0;

		pthread_mutex_lock(&c->lock);
		c->linger_target = count + c->queued;
		pthread_mutex_unlock(&c->lock);
		/* Wake each caller without holding the lock, so that none wakes into a mutex the
		 * writer holds. A semaphore may be destroyed as soon as its waiter returns, so r is
		 * read before the post. */
		for (cs_request *r = batch, *next; r; r = next) {
			next = r->next;
			if (r->on_done)
				r->on_done(r->done_ctx);
			else
				sem_post(&r->done);
		}
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int cs_committer_start(cs_committer *c, cs_store *store, size_t max_batch_events, cs_error *err)
{
	memset(c, 0, sizeof(*c));
	c->store = store;
	c->max_batch_events = max_batch_events;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->work, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&c->thread, NULL, writer_main, c) != 0) {
		pthread_cond_destroy(&c->work);
		pthread_mutex_destroy(&c->lock);
		return cs_error_set(err, CS_ENOMEM, "cannot start the writer thread");
	}
	c->started = true;
	return CS_OK;
}

void cs_committer_stop(cs_committer *c)
{
	if (!c->started)
		return;
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->work);
	pthread_mutex_destroy(&c->lock);
	c->started = false;
}

/* Queue @req (lock held); false when the store is closing (req->rc says so). */
static bool enqueue(cs_committer *c, cs_request *req)
{
	req->next = NULL;
	if (c->closing) {
		req->rc = cs_error_set(&req->err, CS_ECLOSED, "the store is closing");
		return false;
	}
	sem_init(&req->done, 0, 0);
	if (c->tail)
		c->tail->next = req;
	else
		c->head = req;
	c->tail = req;
	c->queued++;
	c->queued_events += req->n;
	return true;
}

/* Wake the writer only when it can act: the queue was empty (@was_empty), or it lingers and now
 * has the callers it waits for. Every other wake-up would be a context switch for nothing. */
static void wake(cs_committer *c, bool was_empty)
{
	if (was_empty || c->queued == c->linger_target || c->queued_events >= c->max_batch_events)
		pthread_cond_signal(&c->work);
}

static void wait_done(cs_request *req)
{
	while (sem_wait(&req->done) != 0)
		; /* EINTR: a signal handler ran; keep waiting */
	sem_destroy(&req->done);
}

int cs_committer_submit_async(cs_committer *c, cs_request *req)
{
	pthread_mutex_lock(&c->lock);
	bool queued = enqueue(c, req);
	if (queued)
		wake(c, c->queued == 1);
	pthread_mutex_unlock(&c->lock);
	return queued ? CS_OK : req->rc;
}

int cs_committer_submit(cs_committer *c, cs_request *req)
{
	if (cs_committer_submit_async(c, req) == CS_OK) /* no on_done: the writer posts done */
		wait_done(req);
	return req->rc;
}

int cs_committer_submit_all(cs_committer *c, cs_request *reqs, size_t n)
{
	pthread_mutex_lock(&c->lock);
	bool was_empty = c->queued == 0;
	size_t queued = 0;
	while (queued < n && enqueue(c, &reqs[queued]))
		queued++;
	if (queued)
		wake(c, was_empty);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < queued; i++)
		wait_done(&reqs[i]);
	for (size_t i = queued + 1; i < n; i++) /* the first refused one says why already */
		reqs[i].rc = cs_error_set(&reqs[i].err, CS_ECLOSED, "the store is closing");
	return CS_OK;
}
