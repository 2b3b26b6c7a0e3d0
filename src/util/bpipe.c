/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bpipe.h. One producer and one consumer thread share a ring of nbufs buffers:
 *
 *   producer: fills bufs[head]; when it is full (or the next bytes are not contiguous with
 *             it, or have another flag) it hands it over (queued++) and waits for a free
 *             buffer (queued < nbufs): bufs[head] is never one the consumer looks at;
 *   consumer: calls fn on bufs[tail], then frees it (queued--).
 */
#include "bpipe.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

struct bpipe_buf {
	uint8_t *data;
	size_t len;
	uint64_t pos;
	bool flag;
};

struct bpipe {
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv_free; /* a buffer was freed */
	pthread_cond_t cv_work; /* a buffer was queued, or stop */
	struct bpipe_buf *bufs;
	size_t nbufs, bufsize;
	size_t head;   /* the producer's buffer being filled */
	size_t tail;   /* the consumer's next buffer */
	size_t queued; /* buffers handed over and not yet freed */
	bool stop;
	bpipe_fn fn;
	void *userdata;
	int rc; /* fn's first error (mu) */
	otter_error err;
};

static void *consumer(void *arg)
{
	bpipe *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct bpipe_buf *b;
		otter_error e = OTTER_ERROR_INIT;
		bool failed;
		int r = 0;

		while (q->queued == 0 && !q->stop)
			pthread_cond_wait(&q->cv_work, &q->mu);
		if (q->queued == 0)
			break;
		b = &q->bufs[q->tail];
		failed = q->rc < 0;
		pthread_mutex_unlock(&q->mu);

		if (!failed)
			r = q->fn(q->userdata, b->data, b->len, b->pos, b->flag, &e);

		pthread_mutex_lock(&q->mu);
		if (r < 0 && q->rc == 0) {
			q->rc = r;
			q->err = e;
		}
		b->len = 0;
		q->tail = (q->tail + 1) % q->nbufs;
		q->queued--;
		pthread_cond_signal(&q->cv_free);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

bpipe *bpipe_free(bpipe *q)
{
	if (!q)
		return NULL;
	if (q->started) {
		pthread_mutex_lock(&q->mu);
		q->stop = true;
		pthread_cond_signal(&q->cv_work);
		pthread_mutex_unlock(&q->mu);
		pthread_join(q->thread, NULL);
	}
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv_free);
	pthread_cond_destroy(&q->cv_work);
	if (q->bufs)
		for (size_t i = 0; i < q->nbufs; i++)
			free(q->bufs[i].data);
	free(q->bufs);
	free(q);
	return NULL;
}

int bpipe_new(bpipe **out, size_t nbufs, size_t bufsize, bpipe_fn fn, void *userdata,
	      const char *name, otter_error *err)
{
	bpipe *q;
	int r;

	if (nbufs < 2 || bufsize == 0 || !fn)
		return otter_error_set(err, OTTER_E_INVALID,
				       "%s: a pipe needs 2 or more buffers (got %zu) of 1 or more "
				       "bytes (got %zu) and a function",
				       name, nbufs, bufsize);
	q = otter_calloc(1, sizeof(*q));
	if (!q)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv_free, NULL);
	pthread_cond_init(&q->cv_work, NULL);
	q->nbufs = nbufs;
	q->bufsize = bufsize;
	q->fn = fn;
	q->userdata = userdata;
	q->bufs = otter_calloc(nbufs, sizeof(*q->bufs));
	if (!q->bufs) {
		bpipe_free(q);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < nbufs; i++) {
		q->bufs[i].data = otter_malloc(bufsize);
		if (!q->bufs[i].data) {
			bpipe_free(q);
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		}
	}
	r = pthread_create(&q->thread, NULL, consumer, q);
	if (r != 0) {
		bpipe_free(q);
		return otter_error_set_errno(err, r, "%s: starting its thread", name);
	}
	q->started = true;
	*out = q;
	return 0;
}

/* Hands bufs[head] over (if it has bytes); waits for a free one if wait. mu held. */
static void hand_over(bpipe *q, bool wait)
{
	if (q->bufs[q->head].len > 0) {
		q->queued++;
		q->head = (q->head + 1) % q->nbufs;
		pthread_cond_signal(&q->cv_work);
	}
	while (wait && q->queued == q->nbufs)
		pthread_cond_wait(&q->cv_free, &q->mu);
}

static int thread_error(bpipe *q, otter_error *err)
{
	if (err)
		*err = q->err;
	return q->rc;
}

int bpipe_push(bpipe *q, const uint8_t *p, size_t n, uint64_t pos, bool flag, otter_error *err)
{
	int r = 0;

	pthread_mutex_lock(&q->mu);
	while (n > 0 && q->rc == 0) {
		struct bpipe_buf *b = &q->bufs[q->head];
		size_t k;

		if (b->len > 0 &&
		    (b->flag != flag || b->pos + b->len != pos || b->len == q->bufsize)) {
			hand_over(q, true);
			continue;
		}
		if (b->len == 0) {
			b->pos = pos;
			b->flag = flag;
		}
		k = q->bufsize - b->len;
		if (k > n)
			k = n;
		pthread_mutex_unlock(&q->mu);
		memcpy(b->data + b->len, p, k);
		pthread_mutex_lock(&q->mu);
		b->len += k;
		p += k;
		n -= k;
		pos += k;
		if (b->len == q->bufsize)
			hand_over(q, true);
	}
	if (q->rc < 0)
		r = thread_error(q, err);
	pthread_mutex_unlock(&q->mu);
	return r;
}

int bpipe_drain(bpipe *q, otter_error *err)
{
	int r = 0;

	pthread_mutex_lock(&q->mu);
	hand_over(q, false);
	while (q->queued > 0)
		pthread_cond_wait(&q->cv_free, &q->mu);
	if (q->rc < 0)
		r = thread_error(q, err);
	pthread_mutex_unlock(&q->mu);
	return r;
}
