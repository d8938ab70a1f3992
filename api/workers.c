/*
 * workers.c - the pool of threads that run the route handlers.
 *
 * libmicrohttpd runs a few event-loop threads (server.c) that only move bytes. A handler may
 * block: an append waits for the store's group commit, and a full state view of a long
 * conversation takes milliseconds. So when a request is complete, its connection is suspended
 * and the request is queued here; a worker runs the handler, which queues the response on the
 * suspended connection (libmicrohttpd allows that), and then resumes it. --threads workers run
 * at once, so 64 appends from 64 clients still go into one group commit together, while idle
 * connections and parked long polls and streams hold no thread at all.
 *
 * The queue is bounded: a request that finds --max-queue others waiting for a worker is answered
 * 503 with Retry-After at once (server.c), so a burst larger than the server can absorb costs
 * its clients a retry rather than growing memory without limit.
 *
 * A handler that wants to wait for the feed (a long poll with nothing to return yet) sets
 * r->park instead of answering; the worker then parks the request in the hub (hub.c), which
 * queues it here again when an event for it is committed or its wait is over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

struct cs_workers {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	cs_req *head, *tail; /* the queue, linked through cs_req.work_next */
	atomic_size_t queued;
	bool stop;
	unsigned n;
	pthread_t threads[];
};

static void run(cs_req *r);

void cs_workers_submit(cs_server *srv, cs_req *r)
{
	cs_workers *w = srv->workers;
	r->work_next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->stop) { /* cannot happen (server.c refuses requests while draining): close it */
		pthread_mutex_unlock(&w->lock);
		r->failed = true;
		MHD_resume_connection(r->conn);
		return;
	}
	if (w->tail)
		w->tail->work_next = r;
	else
		w->head = r;
	w->tail = r;
	atomic_fetch_add(&w->queued, 1);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* The hub's wake-up of a parked long poll: run its handler again. */
static void wake_request(cs_waiter *wt)
{
	cs_req *r = (cs_req *)((char *)wt - offsetof(cs_req, waiter));
	cs_workers_submit(r->srv, r);
}

/* Run @r's handler until it answers or parks; then let libmicrohttpd have the connection. */
static void run(cs_req *r)
{
	for (;;) {
		r->park = false;
		enum MHD_Result ok = cs_routes[r->route].handler(r);
		if (r->answered)
			break;
		if (ok == MHD_NO || !r->park) {
			r->failed =
			    true; /* on_request() closes the connection when it is resumed */
			break;
		}
		r->waiter.wake = wake_request;
		r->waiter.on_park = NULL;
		if (cs_hub_park(r->srv, &r->waiter, r->park_seen))
			return; /* the hub owns it until it submits it again */
	}
	MHD_resume_connection(r->conn);
}

static void *worker_main(void *arg)
{
	cs_workers *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->head)
			break;
		cs_req *r = w->head;
		atomic_fetch_sub(&w->queued, 1);
		w->head = r->work_next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->lock);
		run(r);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

bool cs_workers_admit(cs_server *srv)
{
	return atomic_load(&srv->workers->queued) < srv->cfg.max_queue;
}

int cs_workers_start(cs_server *srv, unsigned n, cs_error *err)
{
	cs_workers *w = calloc(1, sizeof(*w) + n * sizeof(pthread_t));
	if (!w)
		return cs_error_set(err, CS_ENOMEM, "out of memory for %u workers", n);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	srv->workers = w;
	for (; w->n < n; w->n++)
		if (pthread_create(&w->threads[w->n], NULL, worker_main, w))
			break;
	if (w->n < n) {
		cs_workers_free(srv);
		return cs_error_set(err, CS_EIO, "cannot start %u worker threads", n);
	}
	return CS_OK;
}

void cs_workers_stop(cs_server *srv)
{
	cs_workers *w = srv->workers;
	if (!w || w->stop)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
}

void cs_workers_free(cs_server *srv)
{
	cs_workers *w = srv->workers;
	if (!w)
		return;
	cs_workers_stop(srv);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
	srv->workers = NULL;
}
