/* The write-ahead log with group commit; see wal.h for the contract. */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/le.h"
#include "core/log.h"
#include "kv/wal.h"

#define WAL_MAGIC	"DSD-WAL\n"
/* Version 2 has the sync flag (WAL_SYNCFLAG); version 1 segments, from
 * before it, are still read, with the old rule for damage. */
#define WAL_VERSION	2
#define WAL_HDRLEN	32	/* magic, version, crc, segno, first seq */
#define WAL_RECHDR	8	/* length, crc */
/*
 * Version 2: the top bit of a record's length word marks the first record
 * written after a completed fdatasync, the first of a "sync group".  Every
 * byte before it in the segment was on disk before it was written, which
 * is what lets recovery tell a hole torn in the last, unsynced group (cut
 * there, as a torn tail) from damage to records already synced (refused):
 * see wal_replayseg().  The CRC covers the length without the flag, so
 * the writer sets it on a batch's first record when it writes the batch,
 * knowing only then whether a sync came in between, without computing the
 * CRC again.  The flag is therefore unprotected, and that is acceptable:
 * rot that flips it alone leaves a valid record; a flag wrongly set can
 * only turn a cut into a refusal, and a flag lost turns a refusal into a
 * cut only if rot has also struck a synced record before it.
 */
#define WAL_SYNCFLAG	0x80000000U
#define WAL_NAMELEN	sizeof "wal-0123456789abcdef.log"
/* A pass's batch is written by the loop itself if it holds at most this
 * many records and syncs have been taking less than this (wal_adaptive). */
#define WAL_INLINE_RECORDS	32
#define WAL_INLINE_SYNC_NS	(1000 * 1000)
/* Disk space reserved ahead of the records (fallocate), by default.  An
 * fdatasync that must also record a larger file size costs a journal
 * commit more: appending into space already allocated and sized is
 * 1.2-1.35x as many syncs per second on ext4 here.  Reserved space
 * reads as zeros, which recovery takes for the end of the log. */
#define WAL_PREALLOC	(64U << 20)
/* A batch buffer larger than this is freed rather than kept for reuse. */
#define WAL_KEEPCAP	(4U << 20)

struct wal_batch {
	TAILQ_ENTRY(wal_batch)	 entry;
	uint8_t			*buf;
	size_t			 len;
	size_t			 cap;
	uint64_t		 last_seq;	/* of the log when queued */
	uint64_t		 nrec;		/* records in it */
	int			 rotate;	/* next segment after this */
};
TAILQ_HEAD(wal_batchq, wal_batch);

struct wal {
	/* Fixed at open; read by both threads. */
	char			*dir;
	int			 dirfd;
	enum wal_fsync		 policy;
	int			 inline_sync;
	size_t			 prealloc;

	/* Loop thread only. */
	struct event_base	*base;
	struct event		*ev_pass;	/* end of the loop pass */
	struct event		*ev_done;	/* the flusher's eventfd */
	struct event		*ev_sec;	/* everysec, inline mode */
	int			 pass_pending;
	wal_durable_cb		 durable;
	void			*arg;
	struct wal_batch	*cur;		/* being filled */
	size_t			 reserved;	/* wal_reserve() length */
	uint64_t		 last_seq;
	uint64_t		 segno;		/* where appends go now */
	uint64_t		 appended;	/* bytes */
	uint64_t		 reported;	/* seq given to the callback */
	uint64_t		 reported_bytes;
	int			 reported_error;
	uint64_t		 nrecords;
	int			 efd;

	/* Shared, under mtx. */
	pthread_mutex_t		 mtx;
	pthread_cond_t		 wake;		/* the flusher waits on it */
	pthread_cond_t		 idle;		/* wal_sync() waits on it */
	struct wal_batchq	 queue;		/* full, oldest first */
	struct wal_batchq	 freeq;
	uint64_t		 durable_seq;
	uint64_t		 durable_bytes;
	int			 error;
	int			 busy;
	int			 stop;
	int			 sync_req;
	uint64_t		 purge_upto;
	int			 purge_error;	/* for the loop to log */
	int64_t			 sync_ns;	/* io_sync_ns, published */
	struct wal_stats	 stats;		/* io's, but records: loop */
	pthread_t		 thread;
	int			 thread_started;

	/* The flusher (the loop when inline, wal_open() before either). */
	int			 fd;
	uint64_t		 fd_segno;
	int			 fd_version;	/* 1: no sync flags in it */
	int			 flag_next;	/* synced since the last write */
	uint64_t		 pos;		/* where the next record goes */
	uint64_t		 alloc_end;	/* the file's size */
	int			 no_prealloc;	/* fallocate unsupported */
	int			 dirty;		/* written, not synced */
	struct timespec		 last_sync;
	uint64_t		 purged;	/* segments up to it are gone */
	int			 io_purge_error;
	int64_t			 io_sync_ns;	/* fdatasync time, averaged */
	struct wal_stats	 io;		/* published in stats */
};

/* CRC-32C, slicing by eight: tables built once, by whichever thread first
 * needs them. */

static uint32_t		wal_crctab[8][256];
static pthread_once_t	wal_crconce = PTHREAD_ONCE_INIT;

static void
wal_crcinit(void)
{
	uint32_t	c;
	int		i, j, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (j = 0; j < 8; j++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78U : c >> 1;
		wal_crctab[0][i] = c;
	}
	for (i = 0; i < 256; i++) {
		for (k = 1; k < 8; k++) {
			c = wal_crctab[k - 1][i];
			wal_crctab[k][i] = (c >> 8) ^ wal_crctab[0][c & 0xff];
		}
	}
}

uint32_t
wal_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t	*p = buf;
	uint32_t	 hi;

	pthread_once(&wal_crconce, wal_crcinit);
	crc = ~crc;
	while (len >= 8) {
		crc ^= le_get32(p);
		hi = le_get32(p + 4);
		crc = wal_crctab[7][crc & 0xff] ^
		    wal_crctab[6][(crc >> 8) & 0xff] ^
		    wal_crctab[5][(crc >> 16) & 0xff] ^
		    wal_crctab[4][crc >> 24] ^
		    wal_crctab[3][hi & 0xff] ^
		    wal_crctab[2][(hi >> 8) & 0xff] ^
		    wal_crctab[1][(hi >> 16) & 0xff] ^
		    wal_crctab[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ wal_crctab[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

/* A record's CRC covers its length field too, so a torn length that
 * happens to point at a plausible end is still caught. */
static uint32_t
wal_reccrc(uint32_t len, const uint8_t *payload)
{
	uint8_t	lenbuf[4];

	le_put32(lenbuf, len);
	return wal_crc32c(wal_crc32c(0, lenbuf, 4), payload, len);
}

static void
wal_segname(char *buf, uint64_t segno)
{
	snprintf(buf, WAL_NAMELEN, "wal-%016" PRIx64 ".log", segno);
}

/* The segment number of a file name, or 0 if it is not a segment. */
static uint64_t
wal_parsename(const char *name)
{
	uint64_t	 v = 0;
	int		 i, c;

	if (strlen(name) != WAL_NAMELEN - 1 || strncmp(name, "wal-", 4) != 0 ||
	    strcmp(name + 20, ".log") != 0)
		return 0;
	for (i = 4; i < 20; i++) {
		c = (unsigned char)name[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return 0;
	}
	return v;
}

static void
wal_mkheader(uint8_t *h, uint64_t segno, uint64_t first_seq)
{
	memset(h, 0, WAL_HDRLEN);
	memcpy(h, WAL_MAGIC, 8);
	le_put32(h + 8, WAL_VERSION);
	le_put64(h + 16, segno);
	le_put64(h + 24, first_seq);
	le_put32(h + 12, wal_crc32c(0, h, WAL_HDRLEN));
}

/* The version of a whole and sound header (crc field zeroed for the
 * check), 1 or 2, or 0. */
static int
wal_checkheader(const uint8_t *h)
{
	uint8_t		copy[WAL_HDRLEN];
	uint32_t	version;

	version = le_get32(h + 8);
	if (memcmp(h, WAL_MAGIC, 8) != 0 || version < 1 ||
	    version > WAL_VERSION)
		return 0;
	memcpy(copy, h, WAL_HDRLEN);
	memset(copy + 12, 0, 4);
	if (wal_crc32c(0, copy, WAL_HDRLEN) != le_get32(h + 12))
		return 0;
	return (int)version;
}

/* File operations: the flusher's, or start-up's before it runs. */

static void
wal_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

/* Test-only (see wal.h): the syncs DSD_TEST_SKIP_FSYNC leaves out. */
static char		wal_skipenv[128];
static pthread_once_t	wal_skiponce = PTHREAD_ONCE_INIT;

static void
wal_skipinit(void)
{
	const char	*s = getenv("DSD_TEST_SKIP_FSYNC");

	if (s != NULL)
		snprintf(wal_skipenv, sizeof wal_skipenv, ",%s,", s);
}

int
wal_test_skip(const char *what)
{
	char	tok[64];

	pthread_once(&wal_skiponce, wal_skipinit);
	if (wal_skipenv[0] == '\0')
		return 0;
	snprintf(tok, sizeof tok, ",%s,", what);
	return strstr(wal_skipenv, tok) != NULL;
}

static int
wal_datasync(struct wal *w)
{
	struct timespec	start;
	int64_t		ns;
	int		rc;

	wal_now(&start);
	do
		rc = wal_test_skip("wal-data") ? 0 : fdatasync(w->fd);
	while (rc == -1 && errno == EINTR);
	if (rc == -1)
		return -1;
	w->io.fsyncs++;
	w->dirty = 0;
	w->flag_next = 1;
	wal_now(&w->last_sync);
	ns = (w->last_sync.tv_sec - start.tv_sec) * 1000000000LL +
	    (w->last_sync.tv_nsec - start.tv_nsec);
	w->io_sync_ns += (ns - w->io_sync_ns) / 8;
	metrics_observe(&w->io.sync, ns > 0 ? (uint64_t)ns : 0);
	return 0;
}

int
wal_writeall(int fd, const void *buf, size_t len)
{
	const uint8_t	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Make the open segment's file (fd) at least end bytes long, with room for
 * w->prealloc more, allocated: see WAL_PREALLOC.  Not an error if it
 * cannot: appends then grow the file as they go (a file system without
 * fallocate, or a disk too full for the whole reservation).
 */
static void
wal_reserve_space(struct wal *w, int fd, uint64_t end)
{
	uint64_t	to;

	if (w->no_prealloc || end <= w->alloc_end)
		return;
	to = end + w->prealloc;
	if (fallocate(fd, 0, (off_t)w->alloc_end,
	    (off_t)(to - w->alloc_end)) == 0) {
		w->alloc_end = to;
		return;
	}
	if (errno == EOPNOTSUPP || errno == ENOSYS)
		w->no_prealloc = 1;
}

/* Create (or recreate) a segment with its header, durable with its
 * directory entry before any record goes in; becomes the open one. */
static int
wal_segcreate(struct wal *w, uint64_t segno, uint64_t first_seq)
{
	char	name[WAL_NAMELEN];
	uint8_t	h[WAL_HDRLEN];
	int	fd;

	wal_segname(name, segno);
	fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (fd == -1)
		return -1;
	wal_mkheader(h, segno, first_seq);
	if (wal_writeall(fd, h, sizeof h) == -1) {
		close(fd);
		return -1;
	}
	w->alloc_end = 0;	/* the reservation starts at once */
	wal_reserve_space(w, fd, sizeof h);
	if (w->alloc_end < sizeof h)
		w->alloc_end = sizeof h;
	if (fdatasync(fd) == -1 || fsync(w->dirfd) == -1) {
		close(fd);
		return -1;
	}
	w->io.fsyncs += 2;
	if (w->fd != -1)
		close(w->fd);
	w->fd = fd;
	w->fd_segno = segno;
	w->fd_version = WAL_VERSION;
	w->pos = sizeof h;
	w->dirty = 0;
	w->flag_next = 1;
	wal_now(&w->last_sync);
	return 0;
}

/*
 * Delete segments numbered up to upto, never the open one.  A failure
 * here costs disk space, not durability: it is kept for the loop to log,
 * and not retried (the next snapshot's purge tries those files again).
 */
static void
wal_dopurge(struct wal *w, uint64_t upto)
{
	DIR		*d;
	struct dirent	*de;
	uint64_t	 n;
	int		 fd, removed = 0;

	if (upto >= w->fd_segno)
		upto = w->fd_segno - 1;
	if (upto <= w->purged)
		return;
	w->purged = upto;
	if ((fd = dup(w->dirfd)) == -1) {
		w->io_purge_error = errno;
		return;
	}
	if ((d = fdopendir(fd)) == NULL) {
		w->io_purge_error = errno;
		close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		n = wal_parsename(de->d_name);
		if (n == 0 || n > upto)
			continue;
		if (unlinkat(w->dirfd, de->d_name, 0) == 0)
			removed++;
		else if (errno != ENOENT)
			w->io_purge_error = errno;
	}
	closedir(d);
	if (removed != 0 && fsync(w->dirfd) == -1)
		w->io_purge_error = errno;
}

/* Write out a list of batches, rotating where one asks, and sync as the
 * policy (or force) says.  Returns 0 or an errno. */
static int
wal_work(struct wal *w, struct wal_batchq *todo, int force)
{
	struct iovec		 iov[64];
	struct wal_batch	*b;
	struct timespec		 now;
	int			 niov = 0, wrote = 0, i;
	ssize_t			 n;
	size_t			 left, group = 0;

	TAILQ_FOREACH(b, todo, entry) {
		if (b->len != 0) {
			/* The first record written since a sync starts a sync
			 * group (WAL_SYNCFLAG).  A version-1 segment, still
			 * open from before the flag, gets none until the next
			 * rotation: its reader takes the whole word for the
			 * length. */
			if (w->flag_next && w->fd_version >= 2)
				b->buf[3] |= WAL_SYNCFLAG >> 24;
			w->flag_next = 0;
			iov[niov].iov_base = b->buf;
			iov[niov].iov_len = b->len;
			niov++;
			group += b->len;
			w->io.bytes += b->len;
		}
		if (niov != (int)(sizeof iov / sizeof iov[0]) &&
		    TAILQ_NEXT(b, entry) != NULL && !b->rotate)
			continue;

		/* Flush what is gathered: the list ends, iov is full, or the
		 * segment ends here. */
		wal_reserve_space(w, w->fd, w->pos + group);
		group = 0;
		i = 0;
		while (i < niov) {
			n = writev(w->fd, iov + i, niov - i);
			if (n == -1) {
				if (errno == EINTR)
					continue;
				return errno;
			}
			w->io.writes++;
			wrote = 1;
			w->dirty = 1;
			w->pos += (size_t)n;
			left = (size_t)n;
			while (i < niov && left >= iov[i].iov_len)
				left -= iov[i++].iov_len;
			if (i < niov) {
				iov[i].iov_base = (uint8_t *)iov[i].iov_base +
				    left;
				iov[i].iov_len -= left;
			}
		}
		niov = 0;

		if (b->rotate) {
			/* The old segment is whole on disk before the new one
			 * exists, so only the last segment can be torn.  Its
			 * unused reservation goes first (recovery would accept
			 * it, but it is disk space for nothing). */
			if (w->alloc_end > w->pos &&
			    ftruncate(w->fd, (off_t)w->pos) == 0) {
				w->alloc_end = w->pos;
				w->dirty = 1;
			}
			if (w->dirty && wal_datasync(w) == -1)
				return errno;
			if (wal_segcreate(w, w->fd_segno + 1,
			    b->last_seq + 1) == -1)
				return errno;
		}
	}

	if (w->dirty) {
		if (force || w->policy == WAL_FSYNC_ALWAYS) {
			if (wal_datasync(w) == -1)
				return errno;
		} else if (w->policy == WAL_FSYNC_EVERYSEC && wrote) {
			wal_now(&now);
			if (now.tv_sec - w->last_sync.tv_sec >= 1 &&
			    wal_datasync(w) == -1)
				return errno;
		}
	}
	return 0;
}

/*
 * Copy the counters of whoever does the I/O (io, owned as the fd is)
 * where wal_get_stats() reads them: under mtx while the flusher runs.
 * Publishing them with the outcome of each batch, under the lock taken
 * for it anyway, costs the I/O path nothing more, and a reader always
 * sees a histogram whose buckets add up to its count.
 */
static void
wal_publish(struct wal *w)
{
	w->stats = w->io;
}

/* After wal_work(), under mtx: publish the outcome, recycle batches. */
static void
wal_finish(struct wal *w, struct wal_batchq *todo, int err)
{
	struct wal_batch	*b;

	if (err != 0 && w->error == 0)
		w->error = err;
	while ((b = TAILQ_FIRST(todo)) != NULL) {
		TAILQ_REMOVE(todo, b, entry);
		if (w->error == 0) {
			w->durable_seq = b->last_seq;
			w->durable_bytes += b->len;
		}
		if (b->cap > WAL_KEEPCAP) {
			free(b->buf);
			free(b);
			continue;
		}
		b->len = 0;
		b->nrec = 0;
		b->rotate = 0;
		TAILQ_INSERT_HEAD(&w->freeq, b, entry);
	}
	wal_publish(w);
	w->sync_ns = w->io_sync_ns;
	if (w->io_purge_error != 0) {
		w->purge_error = w->io_purge_error;
		w->io_purge_error = 0;
	}
}

static int
wal_purge_due(struct wal *w)
{
	uint64_t	upto = w->purge_upto;

	if (upto >= w->fd_segno)
		upto = w->fd_segno - 1;
	return upto > w->purged;
}

static void
wal_notify(struct wal *w)
{
	uint64_t	one = 1;
	ssize_t		n;

	/* Only the wake-up matters: a counter that could not be added to
	 * (EAGAIN at its maximum) is already non-zero and wakes the loop. */
	n = write(w->efd, &one, sizeof one);
	(void)n;
}

static void *
wal_flusher(void *arg)
{
	struct wal		*w = arg;
	struct wal_batchq	 todo;
	struct timespec		 deadline;
	uint64_t		 upto;
	int			 force, err;

	pthread_mutex_lock(&w->mtx);
	for (;;) {
		if (TAILQ_EMPTY(&w->queue) && !w->sync_req &&
		    !wal_purge_due(w)) {
			if (w->stop)
				break;
			if (w->policy == WAL_FSYNC_EVERYSEC && w->dirty &&
			    w->error == 0) {
				deadline = w->last_sync;
				deadline.tv_sec += 1;
				if (pthread_cond_timedwait(&w->wake, &w->mtx,
				    &deadline) != ETIMEDOUT)
					continue;
				w->busy = 1;
				pthread_mutex_unlock(&w->mtx);
				err = wal_datasync(w) == -1 ? errno : 0;
				pthread_mutex_lock(&w->mtx);
				if (err != 0 && w->error == 0)
					w->error = err;
				wal_publish(w);
				w->busy = 0;
				pthread_cond_broadcast(&w->idle);
				if (err != 0) {
					pthread_mutex_unlock(&w->mtx);
					wal_notify(w);
					pthread_mutex_lock(&w->mtx);
				}
			} else
				pthread_cond_wait(&w->wake, &w->mtx);
			continue;
		}

		TAILQ_INIT(&todo);
		TAILQ_CONCAT(&todo, &w->queue, entry);
		force = w->sync_req;
		w->sync_req = 0;
		upto = w->purge_upto;
		w->busy = 1;
		err = w->error;
		pthread_mutex_unlock(&w->mtx);

		/* After a failure nothing more is written: the batches are
		 * only recycled, and never reported durable. */
		if (err == 0) {
			err = wal_work(w, &todo, force);
			wal_dopurge(w, upto);
		}

		pthread_mutex_lock(&w->mtx);
		wal_finish(w, &todo, err);
		w->busy = 0;
		pthread_cond_broadcast(&w->idle);
		pthread_mutex_unlock(&w->mtx);
		wal_notify(w);
		pthread_mutex_lock(&w->mtx);
	}
	pthread_mutex_unlock(&w->mtx);
	return NULL;
}

/* Loop side. */

/* Tell the callback what changed since it last heard. */
static void
wal_deliver(struct wal *w)
{
	uint64_t	durable, bytes;
	int		error, purge_error;

	pthread_mutex_lock(&w->mtx);
	durable = w->durable_seq;
	bytes = w->durable_bytes;
	error = w->error;
	purge_error = w->purge_error;
	w->purge_error = 0;
	pthread_mutex_unlock(&w->mtx);

	if (purge_error != 0)
		log_warnx("wal: %s: removing segments a snapshot covers: %s",
		    w->dir, strerror(purge_error));

	w->reported_bytes = bytes;
	if (durable > w->reported) {
		w->reported = durable;
		if (w->durable != NULL)
			w->durable(w->arg, durable, 0);
	}
	if (error != 0 && !w->reported_error) {
		w->reported_error = 1;
		log_warnx("wal: %s: %s; no write is durable from now on",
		    w->dir, strerror(error));
		if (w->durable != NULL)
			w->durable(w->arg, w->reported, error);
	}
}

/* Move the batch being filled to the queue (under mtx when threaded). */
static void
wal_enqueue(struct wal *w, struct wal_batch *b)
{
	b->last_seq = w->last_seq;
	pthread_mutex_lock(&w->mtx);
	TAILQ_INSERT_TAIL(&w->queue, b, entry);
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->mtx);
}

/* Inline mode: do the flusher's work here, now. */
static void
wal_inline_run(struct wal *w, int force)
{
	struct wal_batchq	todo;
	int			err;

	TAILQ_INIT(&todo);
	TAILQ_CONCAT(&todo, &w->queue, entry);
	err = w->error;
	if (err == 0) {
		err = wal_work(w, &todo, force);
		wal_dopurge(w, w->purge_upto);
	}
	wal_finish(w, &todo, err);
}

/*
 * A small batch, with the flusher idle and the disk quick to sync, is
 * written and synced right here by the loop.  Handing it over costs two
 * thread wake-ups (the flusher's, then the loop's through the eventfd),
 * and on a VM whose idle vCPU must be woken by the host those took longer
 * than the fdatasync itself: one client with one request in flight got
 * half the disk's sync rate.  Blocking the loop for a short sync costs
 * little: requests that arrive meanwhile wait in their sockets and make
 * the next batch.  A big batch goes to the flusher, so the loop works on
 * the next one while the disk works on this, and so does every batch while
 * syncs are slow (a spinning disk, a loaded array), so that reads are not
 * held up behind them.  Only with the "always" policy (the others do not
 * wait for the disk) and never for a rotation or a purge, which stay the
 * flusher's; busy, set under mtx, keeps the flusher off the file.
 */
static int
wal_adaptive(struct wal *w, struct wal_batch *b)
{
	struct wal_batchq	todo;
	int			idle, err;

	if (w->policy != WAL_FSYNC_ALWAYS || b->nrec > WAL_INLINE_RECORDS ||
	    b->rotate)
		return 0;
	pthread_mutex_lock(&w->mtx);
	idle = !w->busy && TAILQ_EMPTY(&w->queue) && !w->sync_req &&
	    w->error == 0 && !wal_purge_due(w) &&
	    w->sync_ns < WAL_INLINE_SYNC_NS;
	if (idle)
		w->busy = 1;
	pthread_mutex_unlock(&w->mtx);
	if (!idle)
		return 0;

	b->last_seq = w->last_seq;
	TAILQ_INIT(&todo);
	TAILQ_INSERT_TAIL(&todo, b, entry);
	err = wal_work(w, &todo, 0);

	pthread_mutex_lock(&w->mtx);
	w->io.inline_batches++;
	wal_finish(w, &todo, err);
	w->busy = 0;
	pthread_cond_broadcast(&w->idle);
	pthread_mutex_unlock(&w->mtx);
	wal_deliver(w);
	return 1;
}

static void
wal_pass_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wal	*w = arg;

	w->pass_pending = 0;
	if (w->cur != NULL && w->cur->len != 0) {
		if (!w->inline_sync && wal_adaptive(w, w->cur)) {
			w->cur = NULL;
			return;
		}
		wal_enqueue(w, w->cur);
		w->cur = NULL;
	}
	if (w->inline_sync) {
		wal_inline_run(w, 0);
		wal_deliver(w);
	}
}

static void
wal_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wal	*w = arg;
	uint64_t	 n;

	/* Nonblocking; a spurious wake-up finds it empty, which is fine. */
	if (read(w->efd, &n, sizeof n) == -1 && errno != EAGAIN)
		log_warn("wal: eventfd");
	wal_deliver(w);
}

static void
wal_sec_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wal	*w = arg;

	if (w->dirty && w->error == 0 && wal_datasync(w) == -1) {
		w->error = errno;
		wal_deliver(w);
	}
	wal_publish(w);
}

static void
wal_schedule(struct wal *w)
{
	if (!w->pass_pending) {
		w->pass_pending = 1;
		event_active(w->ev_pass, EV_TIMEOUT, 0);
	}
}

/* A batch to fill: a recycled one if there is one. */
static struct wal_batch *
wal_batch_get(struct wal *w)
{
	struct wal_batch	*b;

	pthread_mutex_lock(&w->mtx);
	if ((b = TAILQ_FIRST(&w->freeq)) != NULL)
		TAILQ_REMOVE(&w->freeq, b, entry);
	pthread_mutex_unlock(&w->mtx);
	if (b == NULL && (b = calloc(1, sizeof *b)) == NULL)
		return NULL;
	return b;
}

uint8_t *
wal_reserve(struct wal *w, size_t len)
{
	struct wal_batch	*b;
	size_t			 need, cap;
	uint8_t			*p;

	if (w->reported_error || len == 0 || len > WAL_RECORD_MAX)
		return NULL;
	if (w->cur == NULL && (w->cur = wal_batch_get(w)) == NULL)
		return NULL;
	b = w->cur;
	need = b->len + WAL_RECHDR + len;
	if (need > b->cap) {
		cap = b->cap != 0 ? b->cap : 4096;
		while (cap < need)
			cap *= 2;
		if ((p = realloc(b->buf, cap)) == NULL)
			return NULL;
		b->buf = p;
		b->cap = cap;
	}
	w->reserved = len;
	return b->buf + b->len + WAL_RECHDR;
}

uint64_t
wal_commit(struct wal *w)
{
	struct wal_batch	*b = w->cur;
	uint8_t			*h;
	uint32_t		 len = (uint32_t)w->reserved;

	if (b == NULL || w->reserved == 0)
		return 0;
	h = b->buf + b->len;
	le_put32(h, len);
	le_put32(h + 4, wal_reccrc(len, h + WAL_RECHDR));
	b->len += WAL_RECHDR + len;
	b->nrec++;
	w->appended += WAL_RECHDR + len;
	w->reserved = 0;
	w->nrecords++;
	wal_schedule(w);
	return ++w->last_seq;
}

void
wal_cancel(struct wal *w)
{
	w->reserved = 0;
}

uint64_t
wal_append(struct wal *w, const void *buf, size_t len)
{
	uint8_t	*p;

	if ((p = wal_reserve(w, len)) == NULL)
		return 0;
	memcpy(p, buf, len);
	return wal_commit(w);
}

uint64_t
wal_last_seq(const struct wal *w)
{
	return w->last_seq;
}

uint64_t
wal_durable_seq(const struct wal *w)
{
	return w->reported;
}

uint64_t
wal_appended(const struct wal *w)
{
	return w->appended;
}

size_t
wal_pending(const struct wal *w)
{
	return (size_t)(w->appended - w->reported_bytes);
}

int
wal_error(const struct wal *w)
{
	struct wal	*mw = (struct wal *)w;
	int		 error;

	pthread_mutex_lock(&mw->mtx);
	error = w->error;
	pthread_mutex_unlock(&mw->mtx);
	return error;
}

void
wal_get_stats(struct wal *w, struct wal_stats *st)
{
	pthread_mutex_lock(&w->mtx);
	*st = w->stats;
	pthread_mutex_unlock(&w->mtx);
	st->records = w->nrecords;
}

int
wal_sync(struct wal *w)
{
	int	error;

	if (w->cur != NULL && w->cur->len != 0) {
		wal_enqueue(w, w->cur);
		w->cur = NULL;
	}
	if (w->inline_sync)
		wal_inline_run(w, 1);
	else {
		pthread_mutex_lock(&w->mtx);
		w->sync_req = 1;
		pthread_cond_signal(&w->wake);
		while ((w->sync_req || w->busy || !TAILQ_EMPTY(&w->queue)) &&
		    w->error == 0)
			pthread_cond_wait(&w->idle, &w->mtx);
		pthread_mutex_unlock(&w->mtx);
	}
	wal_deliver(w);
	pthread_mutex_lock(&w->mtx);
	error = w->error;
	pthread_mutex_unlock(&w->mtx);
	return error != 0 ? -1 : 0;
}

int
wal_rotate(struct wal *w, uint64_t *segno, uint64_t *seq)
{
	struct wal_batch	*b = w->cur;

	if (w->reported_error) {
		errno = EIO;
		return -1;
	}
	if (b == NULL && (b = wal_batch_get(w)) == NULL)
		return -1;
	w->cur = NULL;
	b->rotate = 1;
	wal_enqueue(w, b);
	*segno = w->segno;
	*seq = w->last_seq;
	w->segno++;
	wal_schedule(w);
	return 0;
}

void
wal_purge(struct wal *w, uint64_t segno)
{
	pthread_mutex_lock(&w->mtx);
	if (segno > w->purge_upto)
		w->purge_upto = segno;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->mtx);
	if (w->inline_sync)
		wal_schedule(w);
}

/* Start-up: recovery. */

static int
wal_cmpseg(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The segment numbers in the directory, sorted; -1 on error. */
static int
wal_listsegs(struct wal *w, uint64_t **segsp, size_t *nsegsp)
{
	DIR		*d;
	struct dirent	*de;
	uint64_t	*segs = NULL, *p, n;
	size_t		 nsegs = 0, cap = 0;
	int		 fd;

	if ((fd = dup(w->dirfd)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if ((n = wal_parsename(de->d_name)) == 0)
			continue;
		if (nsegs == cap) {
			cap = cap != 0 ? cap * 2 : 16;
			if ((p = reallocarray(segs, cap, sizeof *p)) == NULL) {
				free(segs);
				closedir(d);
				return -1;
			}
			segs = p;
		}
		segs[nsegs++] = n;
	}
	closedir(d);
	if (nsegs != 0)
		qsort(segs, nsegs, sizeof *segs, wal_cmpseg);
	*segsp = segs;
	*nsegsp = nsegs;
	return 0;
}

/* Whether len bytes are all zero. */
static int
wal_allzero(const uint8_t *p, size_t len)
{
	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		if (*p++ != 0)
			return 0;
		len--;
	}
	for (; len >= 8; p += 8, len -= 8) {
		if (*(const uint64_t *)(const void *)p != 0)
			return 0;
	}
	while (len-- > 0) {
		if (*p++ != 0)
			return 0;
	}
	return 1;
}

/*
 * Whether [off, size) of the segment reads as zeros.  Holes, and on ext4
 * and XFS reserved space never written, are skipped with SEEK_DATA and
 * SEEK_HOLE instead of being read, so a large reservation costs start-up
 * nothing; where the file system cannot say, every byte is looked at.
 */
static int
wal_zeros_to_end(int fd, const uint8_t *map, size_t off, size_t size)
{
	off_t	data, hole;

	while (off < size) {
		if ((data = lseek(fd, (off_t)off, SEEK_DATA)) == -1)
			return errno == ENXIO ? 1 :
			    wal_allzero(map + off, size - off);
		if ((size_t)data >= size)
			return 1;
		if ((hole = lseek(fd, data, SEEK_HOLE)) == -1 ||
		    (size_t)hole > size)
			hole = (off_t)size;
		if (!wal_allzero(map + data, (size_t)(hole - data)))
			return 0;
		off = (size_t)hole;
	}
	return 1;
}

/*
 * Whether a valid record starts at off in a segment of the given version
 * (size bytes): its length, without the sync flag, in *len; whether it has
 * the flag in *flag (never in version 1, whose length is the whole word).
 */
static int
wal_recat(const uint8_t *map, size_t off, size_t size, int version,
    uint32_t *len, int *flag)
{
	uint32_t	word;

	if (off >= size || size - off <= WAL_RECHDR)
		return 0;
	word = le_get32(map + off);
	*flag = version >= 2 && (word & WAL_SYNCFLAG) != 0;
	*len = version >= 2 ? word & ~WAL_SYNCFLAG : word;
	if (*len == 0 || *len > size - off - WAL_RECHDR)
		return 0;
	return wal_reccrc(*len, map + off + WAL_RECHDR) ==
	    le_get32(map + off + 4);
}

/* Whether a valid record starts anywhere in [from, size). */
static int
wal_valid_after(const uint8_t *map, size_t from, size_t size, int version,
    size_t *at)
{
	size_t		off;
	uint32_t	len;
	int		flag;

	for (off = from; off + WAL_RECHDR < size; off++) {
		if (wal_recat(map, off, size, version, &len, &flag)) {
			*at = off;
			return 1;
		}
	}
	return 0;
}

/*
 * Whether a valid record with the sync flag starts anywhere in [from,
 * size).  *nvalid counts the valid records seen on the way (all of them if
 * there is no flagged one), for the warning; runs of them are followed by
 * their lengths rather than byte by byte.
 */
static int
wal_flagged_after(const uint8_t *map, size_t from, size_t size,
    int version, size_t *at, size_t *nvalid)
{
	size_t		off = from;
	uint32_t	len;
	int		flag;

	*nvalid = 0;
	while (wal_valid_after(map, off, size, version, &off)) {
		while (wal_recat(map, off, size, version, &len, &flag)) {
			if (flag) {
				*at = off;
				return 1;
			}
			(*nvalid)++;
			off += WAL_RECHDR + len;
		}
		/* The run ends at off, where no valid record starts: the
		 * byte scan resumes there. */
	}
	return 0;
}

/*
 * Check and replay one segment.  For the last one, a torn tail is cut off
 * and the file left open for appending.  Returns 0, or -1 with err set.
 */
static int
wal_replayseg(struct wal *w, uint64_t segno, int last, uint64_t *seq,
    uint64_t *bytes, wal_replay_cb replay, void *arg, char *err,
    size_t errlen)
{
	char		 name[WAL_NAMELEN];
	struct stat	 st;
	uint8_t		*map = NULL;
	size_t		 size, off, at, alloc, nafter;
	uint32_t	 len;
	int		 fd, version = 0, flag;

	wal_segname(name, segno);
	fd = openat(w->dirfd, name, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s/%s: %s", w->dir, name,
		    strerror(errno));
		goto fail;
	}
	size = (size_t)st.st_size;
	if (size != 0) {
		map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED) {
			map = NULL;
			snprintf(err, errlen, "%s/%s: mmap: %s", w->dir, name,
			    strerror(errno));
			goto fail;
		}
		(void)madvise(map, size, MADV_SEQUENTIAL);
	}

	if (size >= WAL_HDRLEN)
		version = wal_checkheader(map);
	if (version == 0) {
		/* Rotation syncs a new header before anything goes after
		 * it, so only a last segment holding nothing but a header
		 * can have been cut short while being created.  That
		 * segment may be long all the same: its space is reserved
		 * (fallocate) before the sync, and a power cut can keep the
		 * new size, a metadata change, and lose the header's bytes,
		 * leaving the whole reservation as zeros (found by
		 * tests/crash).  Zeros after the header hold no record, so
		 * nothing is lost by starting that segment again; anything
		 * else there is damage, and refused. */
		if (last && (size <= WAL_HDRLEN ||
		    wal_zeros_to_end(fd, map, WAL_HDRLEN, size))) {
			log_warnx("wal: %s/%s: dropping a segment torn while "
			    "being created (%zu bytes)", w->dir, name, size);
			if (map != NULL)
				munmap(map, size);
			map = NULL;
			close(fd);
			fd = -1;
			if (wal_segcreate(w, segno, *seq + 1) == -1) {
				snprintf(err, errlen, "%s/%s: %s", w->dir,
				    name, strerror(errno));
				goto fail;
			}
			return 0;
		}
		snprintf(err, errlen, "%s/%s: offset 0: bad segment header",
		    w->dir, name);
		goto fail;
	}
	if (le_get64(map + 16) != segno) {
		snprintf(err, errlen, "%s/%s: offset 16: header says segment "
		    "%" PRIu64, w->dir, name, le_get64(map + 16));
		goto fail;
	}
	if (le_get64(map + 24) != *seq + 1) {
		snprintf(err, errlen, "%s/%s: offset 24: segment starts at "
		    "record %" PRIu64 " but record %" PRIu64 " comes next "
		    "(a segment or the snapshot is missing)", w->dir, name,
		    le_get64(map + 24), *seq + 1);
		goto fail;
	}

	for (off = WAL_HDRLEN; off < size; off += WAL_RECHDR + len) {
		if (!wal_recat(map, off, size, version, &len, &flag))
			break;
		if (replay != NULL &&
		    replay(arg, *seq + 1, map + off + WAL_RECHDR, len) == -1) {
			snprintf(err, errlen, "%s/%s: offset %zu: record %"
			    PRIu64 " is intact but cannot be applied", w->dir,
			    name, off, *seq + 1);
			goto fail;
		}
		(*seq)++;
		*bytes += WAL_RECHDR + len;
	}

	/* Space reserved and never written reads as zeros: the log simply
	 * ends there.  (A record cannot start with a zero length.) */
	alloc = size;
	if (off < size && !wal_zeros_to_end(fd, map, off, size)) {
		if (!last) {
			snprintf(err, errlen, "%s/%s: offset %zu: corrupt "
			    "record in a segment that is not the last",
			    w->dir, name, off);
			goto fail;
		}
		/*
		 * A bad record with a valid one after it is a hole, not a
		 * torn end.  In version 1 it could be rot in records synced
		 * and acknowledged, which must not be cut: refused.  In
		 * version 2, a valid record with the sync flag after the
		 * hole was written after a sync that had made the hole's
		 * group durable: refused too.  With no such record, the hole
		 * is in the last sync group, written after the last sync
		 * that completed before the crash: a power cut keeps any
		 * subset of its sectors (found by tests/crash), and none of
		 * it was acknowledged as on disk, so it is cut as a torn
		 * tail, with what follows the hole.  (Unless a sync came
		 * after the group with nothing written since, as at a clean
		 * stop: rot there is cut too, as rot in the last record
		 * always was; recovery cannot see that sync.)
		 */
		nafter = 0;
		if (version < 2 && wal_valid_after(map, off + 1, size,
		    version, &at)) {
			snprintf(err, errlen, "%s/%s: offset %zu: corrupt "
			    "record followed by a valid one at offset %zu",
			    w->dir, name, off, at);
			goto fail;
		}
		if (version >= 2 && wal_flagged_after(map, off + 1, size,
		    version, &at, &nafter)) {
			snprintf(err, errlen, "%s/%s: offset %zu: corrupt "
			    "record followed by a valid one at offset %zu "
			    "written after a sync", w->dir, name, off, at);
			goto fail;
		}
		if (nafter != 0)
			log_warnx("wal: %s/%s: dropping a torn record at "
			    "offset %zu and the %zu intact-looking record%s "
			    "after it (%zu bytes to the end of the file): "
			    "all were written after the last sync, so none "
			    "was acknowledged as on disk", w->dir, name, off,
			    nafter, nafter == 1 ? "" : "s", size - off);
		else
			log_warnx("wal: %s/%s: dropping a torn record at "
			    "offset %zu (%zu bytes to the end of the file)",
			    w->dir, name, off, size - off);
		if (ftruncate(fd, (off_t)off) == -1 || fdatasync(fd) == -1) {
			snprintf(err, errlen, "%s/%s: truncating to %zu: %s",
			    w->dir, name, off, strerror(errno));
			goto fail;
		}
		alloc = off;
	}
	if (map != NULL)
		munmap(map, size);
	if (!last) {
		close(fd);
		return 0;
	}
	if (lseek(fd, (off_t)off, SEEK_SET) == -1) {
		snprintf(err, errlen, "%s/%s: %s", w->dir, name,
		    strerror(errno));
		close(fd);
		return -1;
	}
	w->fd = fd;
	w->fd_segno = segno;
	w->fd_version = version;
	w->pos = off;
	w->alloc_end = alloc;
	return 0;

fail:
	if (map != NULL)
		munmap(map, size);
	if (fd != -1)
		close(fd);
	return -1;
}

static int
wal_recover(struct wal *w, uint64_t after_segno, uint64_t after_seq,
    wal_replay_cb replay, void *arg, char *err, size_t errlen)
{
	char		 name[WAL_NAMELEN];
	uint64_t	*segs = NULL, seq = after_seq, bytes = 0;
	size_t		 nsegs, i, first;

	if (wal_listsegs(w, &segs, &nsegs) == -1) {
		snprintf(err, errlen, "%s: %s", w->dir, strerror(errno));
		return -1;
	}

	/* Segments a snapshot covers are left over from a crash between
	 * the snapshot's rename and the purge. */
	for (first = 0; first < nsegs && segs[first] <= after_segno; first++) {
		wal_segname(name, segs[first]);
		log_info("wal: %s/%s: covered by the snapshot, removing",
		    w->dir, name);
		if (unlinkat(w->dirfd, name, 0) == -1) {
			snprintf(err, errlen, "%s/%s: %s", w->dir, name,
			    strerror(errno));
			goto fail;
		}
	}
	if (first != 0)
		(void)fsync(w->dirfd);

	for (i = first; i < nsegs; i++) {
		if (segs[i] != after_segno + 1 + (i - first)) {
			wal_segname(name, segs[i]);
			snprintf(err, errlen, "%s/%s: segment %" PRIu64
			    " expected here: a segment is missing", w->dir,
			    name, after_segno + 1 + (i - first));
			goto fail;
		}
		if (wal_replayseg(w, segs[i], i + 1 == nsegs, &seq, &bytes,
		    replay, arg, err, errlen) == -1)
			goto fail;
	}
	if (w->fd == -1 && wal_segcreate(w, after_segno + 1, seq + 1) == -1) {
		wal_segname(name, after_segno + 1);
		snprintf(err, errlen, "%s/%s: %s", w->dir, name,
		    strerror(errno));
		goto fail;
	}
	/* What recovery read may still be only in the page cache (after a
	 * kill -9): sync it, so that the first record appended, flagged as
	 * written after a sync (WAL_SYNCFLAG), is. */
	if (wal_datasync(w) == -1) {
		wal_segname(name, w->fd_segno);
		snprintf(err, errlen, "%s/%s: fdatasync: %s", w->dir, name,
		    strerror(errno));
		goto fail;
	}
	free(segs);
	wal_publish(w);
	w->last_seq = seq;
	w->reported = seq;
	w->durable_seq = seq;
	/* The records found count as appended: wal_appended() is then the
	 * log a recovery would read, less what snapshots came to cover. */
	w->appended = w->durable_bytes = w->reported_bytes = bytes;
	w->segno = w->fd_segno;
	w->purged = after_segno;
	w->purge_upto = after_segno;
	return 0;

fail:
	free(segs);
	return -1;
}

struct wal *
wal_open(const struct wal_config *cfg, uint64_t after_segno,
    uint64_t after_seq, wal_replay_cb replay, void *arg, char *err,
    size_t errlen)
{
	struct wal		*w;
	pthread_condattr_t	 ca;
	sigset_t		 all, old;
	int			 rc;

	if ((w = calloc(1, sizeof *w)) == NULL) {
		snprintf(err, errlen, "wal: out of memory");
		return NULL;
	}
	w->fd = -1;
	w->efd = -1;
	w->dirfd = -1;
	w->policy = cfg->fsync;
	w->inline_sync = cfg->inline_sync;
	w->prealloc = cfg->prealloc != 0 ? cfg->prealloc : WAL_PREALLOC;
	w->base = cfg->base;
	w->durable = cfg->durable;
	w->arg = cfg->arg;
	metrics_hist_init(&w->io.sync, &metrics_latency);
	w->stats = w->io;
	TAILQ_INIT(&w->queue);
	TAILQ_INIT(&w->freeq);
	pthread_mutex_init(&w->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&w->idle, NULL);

	if (wal_test_skip("wal-data") || wal_test_skip("snap-dir"))
		log_warnx("wal: DSD_TEST_SKIP_FSYNC=%s: a test-only switch; "
		    "writes are not durable as acknowledged",
		    getenv("DSD_TEST_SKIP_FSYNC"));
	if ((w->dir = strdup(cfg->dir)) == NULL) {
		snprintf(err, errlen, "wal: out of memory");
		goto fail;
	}
	w->dirfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd == -1) {
		snprintf(err, errlen, "%s: %s", cfg->dir, strerror(errno));
		goto fail;
	}
	if (wal_recover(w, after_segno, after_seq, replay, arg, err,
	    errlen) == -1)
		goto fail;

	w->ev_pass = event_new(w->base, -1, 0, wal_pass_cb, w);
	if (w->ev_pass == NULL)
		goto fail_nomem;
	if (w->inline_sync) {
		if (w->policy == WAL_FSYNC_EVERYSEC) {
			struct timeval	sec = { 1, 0 };

			w->ev_sec = event_new(w->base, -1, EV_PERSIST,
			    wal_sec_cb, w);
			if (w->ev_sec == NULL ||
			    event_add(w->ev_sec, &sec) == -1)
				goto fail_nomem;
		}
		return w;
	}

	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd == -1) {
		snprintf(err, errlen, "wal: eventfd: %s", strerror(errno));
		goto fail;
	}
	w->ev_done = event_new(w->base, w->efd, EV_READ | EV_PERSIST,
	    wal_done_cb, w);
	if (w->ev_done == NULL || event_add(w->ev_done, NULL) == -1)
		goto fail_nomem;

	/* Signals are for the loop's thread: libevent and SIGCHLD. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, wal_flusher, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "wal: pthread_create: %s", strerror(rc));
		goto fail;
	}
	w->thread_started = 1;
	return w;

fail_nomem:
	snprintf(err, errlen, "wal: cannot set up events");
fail:
	wal_close(w);
	return NULL;
}

void
wal_close(struct wal *w)
{
	struct wal_batch	*b;

	if (w == NULL)
		return;
	/* With the flusher running, fd is its own (and always open). */
	if (w->thread_started || (w->inline_sync && w->fd != -1))
		(void)wal_sync(w);
	if (w->thread_started) {
		pthread_mutex_lock(&w->mtx);
		w->stop = 1;
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->mtx);
		pthread_join(w->thread, NULL);
	}

	if (w->ev_pass != NULL)
		event_free(w->ev_pass);
	if (w->ev_done != NULL)
		event_free(w->ev_done);
	if (w->ev_sec != NULL)
		event_free(w->ev_sec);
	if (w->cur != NULL)
		TAILQ_INSERT_HEAD(&w->freeq, w->cur, entry);
	TAILQ_CONCAT(&w->freeq, &w->queue, entry);
	while ((b = TAILQ_FIRST(&w->freeq)) != NULL) {
		TAILQ_REMOVE(&w->freeq, b, entry);
		free(b->buf);
		free(b);
	}
	if (w->fd != -1)
		close(w->fd);
	if (w->efd != -1)
		close(w->efd);
	if (w->dirfd != -1)
		close(w->dirfd);
	pthread_mutex_destroy(&w->mtx);
	pthread_cond_destroy(&w->wake);
	pthread_cond_destroy(&w->idle);
	free(w->dir);
	free(w);
}
