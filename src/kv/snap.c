/* Point-in-time snapshots in a forked child; see snap.h. */
#include "config.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/le.h"
#include "core/log.h"
#include "kv/snap.h"
#include "kv/store.h"
#include "kv/wal.h"

#define SNAP_MAGIC	"DSD-SNAP"
#define SNAP_VERSION	1
#define SNAP_NAME	"snapshot"
#define SNAP_TMPNAME	"snapshot.tmp"
/* After a failed snapshot, how long snap_poke() waits to start another:
 * the log's size stays over the limit, and every write would fork. */
#define SNAP_RETRY_SEC	10

struct snap {
	char			*dir;
	struct event_base	*base;
	struct store		*store;
	struct wal		*wal;
	snap_done_cb		 done;
	void			*arg;
	struct event		*ev_timer;
	struct event		*ev_chld;

	/* Allocated here so that the child needs no allocator: its pages
	 * cost nothing until the child touches its own copy. */
	uint8_t			*buf;

	pid_t			 pid;		/* running child, or -1 */
	uint64_t		 started_ns;	/* its fork() */
	struct snap_info	 pending;	/* what the child writes */
	struct snap_info	 last;		/* the last one completed */
	struct snap_stats	 stats;

	/* snap_poke(): wal_appended() where the last snapshot (and the
	 * running one) cut the log. */
	uint64_t		 log_limit;
	uint64_t		 mark;
	uint64_t		 pending_mark;
	time_t			 retry_at;
};

/* Entries, as snapshot files and the replicated mode's snapshots hold
 * them. */

void
snap_entry_header(uint8_t *h, const struct store_entry *e)
{
	size_t	keylen, datalen;

	(void)store_entry_key(e, &keylen);
	(void)store_entry_data(e, &datalen);
	le_put32(h, (uint32_t)keylen);
	le_put32(h + 4, (uint32_t)datalen);
	le_put64(h + 8, (uint64_t)store_entry_version(e));
	le_put64(h + 16, (uint64_t)store_entry_timestamp(e));
}

int
snap_entry_parse(const uint8_t *buf, size_t len, struct snap_entry *e,
    size_t *used)
{
	if (len < SNAP_ENTHDR)
		return -1;
	e->keylen = le_get32(buf);
	e->datalen = le_get32(buf + 4);
	e->version = (int64_t)le_get64(buf + 8);
	e->timestamp = (int64_t)le_get64(buf + 16);
	if (e->keylen > len - SNAP_ENTHDR ||
	    e->datalen > len - SNAP_ENTHDR - e->keylen)
		return -1;
	e->key = buf + SNAP_ENTHDR;
	e->data = e->key + e->keylen;
	*used = SNAP_ENTHDR + e->keylen + e->datalen;
	return 0;
}

int
snap_entries_load(struct store *st, const uint8_t *buf, size_t len,
    uint64_t count, size_t *used, char *err, size_t errlen)
{
	struct snap_entry	e;
	uint64_t		i;
	size_t			off = 0, n;

	for (i = 0; i < count; i++) {
		if (snap_entry_parse(buf + off, len - off, &e, &n) == -1) {
			snprintf(err, errlen, "offset %zu: entry %" PRIu64
			    " runs past the end", off, i);
			return -1;
		}
		if (store_restore(st, e.key, e.keylen, e.version, e.timestamp,
		    e.data, e.datalen) == -1) {
			snprintf(err, errlen, "offset %zu: entry %" PRIu64
			    ": %s", off, i, errno == ENOMEM ? "out of memory" :
			    "bad or duplicate key");
			return -1;
		}
		off += n;
	}
	*used = off;
	return 0;
}

/* Writing. */

/* Milliseconds since the epoch, for the header's "taken" field. */
static int64_t
snap_now_ms(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Body bytes on their way out: through buf to fd, or with fd -1 only
 * counted and summed (the first pass of snap_stream()). */
struct snap_out {
	int		 fd;
	uint8_t		*buf;
	size_t		 len;
	uint32_t	 crc;
	uint64_t	 total;
};

static int
snap_flush(struct snap_out *o)
{
	if (o->len != 0 && wal_writeall(o->fd, o->buf, o->len) == -1)
		return -1;
	o->len = 0;
	return 0;
}

/* Append body bytes, through the buffer unless they would not fit. */
static int
snap_emit(struct snap_out *o, const uint8_t *p, size_t len)
{
	o->crc = wal_crc32c(o->crc, p, len);
	o->total += len;
	if (o->fd == -1)
		return 0;
	if (o->len + len > SNAP_BUFLEN) {
		if (snap_flush(o) == -1)
			return -1;
		if (len > SNAP_BUFLEN)
			return wal_writeall(o->fd, p, len);
	}
	memcpy(o->buf + o->len, p, len);
	o->len += len;
	return 0;
}

/* Every entry of the store, in the order store_next() gives; *count is
 * set to how many.  0, or -1 if writing failed (errno). */
static int
snap_body(const struct store *st, struct snap_out *o, uint64_t *count)
{
	struct store_entry	*e;
	uint8_t			 eh[SNAP_ENTHDR];
	const uint8_t		*key, *data;
	size_t			 cursor = 0, keylen, datalen;

	*count = 0;
	while ((e = store_next(st, &cursor)) != NULL) {
		key = store_entry_key(e, &keylen);
		data = store_entry_data(e, &datalen);
		snap_entry_header(eh, e);
		if (snap_emit(o, eh, sizeof eh) == -1 ||
		    (keylen != 0 && snap_emit(o, key, keylen) == -1) ||
		    (datalen != 0 && snap_emit(o, data, datalen) == -1))
			return -1;
		(*count)++;
	}
	return o->fd == -1 ? 0 : snap_flush(o);
}

static void
snap_mkheader(uint8_t *h, const struct snap_info *info, uint64_t bodylen,
    uint32_t bodycrc)
{
	memset(h, 0, SNAP_HDRLEN);
	memcpy(h, SNAP_MAGIC, 8);
	le_put32(h + 8, SNAP_VERSION);
	le_put64(h + 16, info->segno);
	le_put64(h + 24, info->seq);
	le_put64(h + 32, info->count);
	le_put64(h + 40, bodylen);
	le_put32(h + 48, bodycrc);
	le_put64(h + 52, (uint64_t)info->taken_ms);
	le_put32(h + 12, wal_crc32c(0, h, SNAP_HDRLEN));
}

int
snap_commit(int dirfd, int fd, const char *tmpname, const char *name,
    const char **step)
{
	int	rv;

	*step = "fsync";
	if (fsync(fd) == -1) {
		close(fd);
		return -1;
	}
	*step = "close";
	if (close(fd) == -1)
		return -1;
	*step = "rename";
	if (renameat(dirfd, tmpname, dirfd, name) == -1)
		return -1;
	*step = "fsync of the directory";
	rv = wal_test_skip("snap-dir") ? 0 : fsync(dirfd);
	return rv;
}

/* The body of snap_write(), with a caller's buffer of SNAP_BUFLEN. */
static int
snap_write_buf(const char *dir, const struct store *st, uint64_t segno,
    uint64_t seq, int64_t taken_ms, uint8_t *buf, char *err, size_t errlen)
{
	struct snap_out		 o;
	struct snap_info	 info;
	uint8_t			 h[SNAP_HDRLEN];
	const char		*step;
	ssize_t			 n;
	int			 dirfd, fd = -1;

	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	step = "create";
	fd = openat(dirfd, SNAP_TMPNAME, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0644);
	if (fd == -1)
		goto fail;

	/* The header's place, filled in once the body is known. */
	memset(h, 0, sizeof h);
	step = "write";
	if (wal_writeall(fd, h, sizeof h) == -1)
		goto fail;
	memset(&o, 0, sizeof o);
	o.fd = fd;
	o.buf = buf;
	memset(&info, 0, sizeof info);
	info.segno = segno;
	info.seq = seq;
	info.taken_ms = taken_ms;
	if (snap_body(st, &o, &info.count) == -1)
		goto fail;

	snap_mkheader(h, &info, o.total, o.crc);
	if ((n = pwrite(fd, h, sizeof h, 0)) != (ssize_t)sizeof h) {
		if (n >= 0)
			errno = EIO;	/* short write to a regular file */
		goto fail;
	}
	n = snap_commit(dirfd, fd, SNAP_TMPNAME, SNAP_NAME, &step);
	fd = -1;	/* closed by snap_commit(), whatever happened */
	if (n == -1)
		goto fail;
	close(dirfd);
	return 0;

fail:
	snprintf(err, errlen, "%s/%s: %s: %s", dir, SNAP_TMPNAME, step,
	    strerror(errno));
	if (fd != -1)
		close(fd);
	(void)unlinkat(dirfd, SNAP_TMPNAME, 0);
	close(dirfd);
	return -1;
}

int
snap_write(const char *dir, const struct store *st, uint64_t segno,
    uint64_t seq, char *err, size_t errlen)
{
	uint8_t	*buf;
	int	 rc;

	if ((buf = malloc(SNAP_BUFLEN)) == NULL) {
		snprintf(err, errlen, "snapshot: out of memory");
		return -1;
	}
	rc = snap_write_buf(dir, st, segno, seq, snap_now_ms(), buf, err,
	    errlen);
	free(buf);
	return rc;
}

/*
 * A snapshot to a descriptor that cannot seek back for the header (a
 * pipe), in two passes over a store that does not change: the first
 * counts and sums the body for the header, the second writes it.  The
 * passes must agree, or what was sent does not match its header.
 */
static int
snap_stream(int fd, const struct store *st, const struct snap_info *what,
    uint8_t *buf, char *err, size_t errlen)
{
	struct snap_out		 o;
	struct snap_info	 info = *what;
	uint8_t			 h[SNAP_HDRLEN];
	uint64_t		 total, count;
	uint32_t		 crc;

	memset(&o, 0, sizeof o);
	o.fd = -1;
	(void)snap_body(st, &o, &info.count);
	total = o.total;
	crc = o.crc;
	snap_mkheader(h, &info, total, crc);
	if (wal_writeall(fd, h, sizeof h) == -1)
		goto fail;
	memset(&o, 0, sizeof o);
	o.fd = fd;
	o.buf = buf;
	if (snap_body(st, &o, &count) == -1)
		goto fail;
	if (count != info.count || o.total != total || o.crc != crc) {
		snprintf(err, errlen, "the store changed under the snapshot "
		    "(%" PRIu64 " entries, then %" PRIu64 ")", info.count,
		    count);
		return -1;
	}
	return 0;
fail:
	snprintf(err, errlen, "write: %s", strerror(errno));
	return -1;
}

/* Reading. */

int
snap_header_parse(const uint8_t *p, struct snap_header *sh, char *err,
    size_t errlen)
{
	uint8_t	h[SNAP_HDRLEN];

	memset(sh, 0, sizeof *sh);
	if (memcmp(p, SNAP_MAGIC, 8) != 0) {
		snprintf(err, errlen, "not a dsd snapshot (bad magic)");
		return -1;
	}
	if (le_get32(p + 8) != SNAP_VERSION) {
		snprintf(err, errlen, "format version %" PRIu32 ", this dsd "
		    "reads %d", le_get32(p + 8), SNAP_VERSION);
		return -1;
	}
	memcpy(h, p, sizeof h);
	memset(h + 12, 0, 4);
	if (wal_crc32c(0, h, sizeof h) != le_get32(p + 12)) {
		snprintf(err, errlen, "header checksum mismatch");
		return -1;
	}
	sh->bodylen = le_get64(p + 40);
	sh->bodycrc = le_get32(p + 48);
	if (sh->bodylen > UINT64_MAX - SNAP_HDRLEN) {
		snprintf(err, errlen, "the header says %" PRIu64 " bytes of "
		    "entries", sh->bodylen);
		return -1;
	}
	sh->info.present = 1;
	sh->info.segno = le_get64(p + 16);
	sh->info.seq = le_get64(p + 24);
	sh->info.count = le_get64(p + 32);
	sh->info.taken_ms = (int64_t)le_get64(p + 52);
	sh->info.size = SNAP_HDRLEN + sh->bodylen;
	return 0;
}

/*
 * Check a whole snapshot file in memory and load its entries into st:
 * 0, or -1 with err, whose offsets count from the file's start.  name is
 * the file as messages call it.
 */
static int
snap_load_map(const uint8_t *map, size_t size, const char *name,
    struct store *st, struct snap_info *info, char *err, size_t errlen)
{
	struct snap_header	 sh;
	size_t			 used;
	char			 msg[256];

	if (size < SNAP_HDRLEN) {
		snprintf(err, errlen, "%s: %zu bytes, shorter than the "
		    "header", name, size);
		return -1;
	}
	if (snap_header_parse(map, &sh, msg, sizeof msg) == -1) {
		snprintf(err, errlen, "%s: %s", name, msg);
		return -1;
	}
	if (sh.bodylen != size - SNAP_HDRLEN) {
		snprintf(err, errlen, "%s: %zu bytes of entries, the header "
		    "says %" PRIu64, name, size - SNAP_HDRLEN, sh.bodylen);
		return -1;
	}
	if (wal_crc32c(0, map + SNAP_HDRLEN, sh.bodylen) != sh.bodycrc) {
		snprintf(err, errlen, "%s: checksum mismatch in the entries",
		    name);
		return -1;
	}
	if (snap_entries_load(st, map + SNAP_HDRLEN, sh.bodylen,
	    sh.info.count, &used, msg, sizeof msg) == -1) {
		snprintf(err, errlen, "%s: %s (entries start at offset %d)",
		    name, msg, SNAP_HDRLEN);
		return -1;
	}
	if (used != sh.bodylen) {
		snprintf(err, errlen, "%s: offset %zu: data after the last of "
		    "%" PRIu64 " entries", name, SNAP_HDRLEN + used,
		    sh.info.count);
		return -1;
	}
	*info = sh.info;
	return 0;
}

/* Map an open snapshot file for reading; NULL with err (naming name). */
static uint8_t *
snap_map(int fd, const char *name, size_t *sizep, char *err, size_t errlen)
{
	struct stat	 sb;
	uint8_t		*map;

	if (fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", name);
		return NULL;
	}
	*sizep = (size_t)sb.st_size;
	if (*sizep < SNAP_HDRLEN) {
		snprintf(err, errlen, "%s: %zu bytes, shorter than the "
		    "header", name, *sizep);
		return NULL;
	}
	map = mmap(NULL, *sizep, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		snprintf(err, errlen, "%s: mmap: %s", name, strerror(errno));
		return NULL;
	}
	(void)madvise(map, *sizep, MADV_SEQUENTIAL);
	return map;
}

/* snap_file_load() on a file already open. */
static int
snap_load_fd(int fd, const char *name, struct store *st,
    struct snap_info *info, char *err, size_t errlen)
{
	uint8_t	*map;
	size_t	 size;
	int	 rv;

	if ((map = snap_map(fd, name, &size, err, errlen)) == NULL)
		return -1;
	rv = snap_load_map(map, size, name, st, info, err, errlen);
	munmap(map, size);
	return rv;
}

int
snap_file_load(const char *path, struct store *st, struct snap_info *info,
    char *err, size_t errlen)
{
	int	fd, rv;

	memset(info, 0, sizeof *info);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rv = snap_load_fd(fd, path, st, info, err, errlen);
	close(fd);
	return rv;
}

int
snap_load(const char *dir, struct store *st, struct snap_info *info,
    char *err, size_t errlen)
{
	char	*name;
	int	 dirfd, fd, rv;

	memset(info, 0, sizeof *info);
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	/* A child or a process that died mid-write left this behind. */
	if (unlinkat(dirfd, SNAP_TMPNAME, 0) == 0)
		log_info("snapshot: %s/%s: removed an unfinished snapshot",
		    dir, SNAP_TMPNAME);

	fd = openat(dirfd, SNAP_NAME, O_RDONLY | O_CLOEXEC);
	close(dirfd);
	if (fd == -1 && errno == ENOENT)
		return 0;
	if (asprintf(&name, "%s/%s", dir, SNAP_NAME) == -1) {
		snprintf(err, errlen, "snapshot: out of memory");
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		free(name);
		return -1;
	}
	rv = snap_load_fd(fd, name, st, info, err, errlen);
	close(fd);
	free(name);
	return rv;
}

void
snap_check_init(struct snap_check *sc)
{
	memset(sc, 0, sizeof *sc);
}

int
snap_check_update(struct snap_check *sc, const uint8_t *p, size_t len,
    char *err, size_t errlen)
{
	size_t	n;

	if (sc->hgot < SNAP_HDRLEN) {
		n = SNAP_HDRLEN - sc->hgot;
		if (n > len)
			n = len;
		memcpy(sc->h + sc->hgot, p, n);
		sc->hgot += n;
		p += n;
		len -= n;
		if (sc->hgot < SNAP_HDRLEN)
			return 0;
		if (snap_header_parse(sc->h, &sc->header, err, errlen) == -1)
			return -1;
	}
	if (len > sc->header.bodylen - sc->got) {
		snprintf(err, errlen, "more than the %" PRIu64 " bytes of "
		    "entries the header announces", sc->header.bodylen);
		return -1;
	}
	sc->crc = wal_crc32c(sc->crc, p, len);
	sc->got += len;
	return 0;
}

int
snap_check_end(const struct snap_check *sc, struct snap_info *info,
    char *err, size_t errlen)
{
	if (sc->hgot < SNAP_HDRLEN) {
		snprintf(err, errlen, "%zu bytes, shorter than the header",
		    sc->hgot);
		return -1;
	}
	if (sc->got != sc->header.bodylen) {
		snprintf(err, errlen, "%" PRIu64 " bytes of entries, the "
		    "header says %" PRIu64, sc->got, sc->header.bodylen);
		return -1;
	}
	if (sc->crc != sc->header.bodycrc) {
		snprintf(err, errlen, "checksum mismatch in the entries");
		return -1;
	}
	if (info != NULL)
		*info = sc->header.info;
	return 0;
}

/* Restoring. */

/* Whether dir holds nothing but "." and "..": 1, 0, or -1 (errno). */
static int
snap_dir_empty(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	int		 empty = 1;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* fsync the directory that holds path, so that a new entry for it is
 * durable. */
static int
snap_sync_parent(const char *path)
{
	char	*copy;
	int	 fd, rv = -1;

	if ((copy = strdup(path)) == NULL)
		return -1;
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) != -1) {
		rv = fsync(fd);
		close(fd);
	}
	free(copy);
	return rv;
}

int
snap_restore(const char *path, const char *dir, struct snap_info *info,
    char *err, size_t errlen)
{
	struct store	*check;
	uint8_t		*map = NULL;
	size_t		 size = 0;
	const char	*step = "";
	int		 fd, dirfd = -1, out = -1, made = 0, rv;

	memset(info, 0, sizeof *info);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* The very bytes checked are the ones copied: a loaded store is
	 * what the server will build from them. */
	if ((map = snap_map(fd, path, &size, err, errlen)) == NULL)
		goto fail;
	if ((check = store_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rv = snap_load_map(map, size, path, check, info, err, errlen);
	store_free(check);
	if (rv == -1)
		goto fail;

	if (mkdir(dir, 0700) == 0)
		made = 1;
	else if (errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	} else if ((rv = snap_dir_empty(dir)) != 1) {
		snprintf(err, errlen, "%s: %s", dir, rv == -1 ?
		    strerror(errno) : "not empty: restore makes a new data "
		    "directory");
		goto fail;
	}
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	step = "create";
	if ((out = openat(dirfd, SNAP_TMPNAME, O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC, 0600)) == -1)
		goto fail_io;
	step = "write";
	if (wal_writeall(out, map, size) == -1)
		goto fail_io;
	rv = snap_commit(dirfd, out, SNAP_TMPNAME, SNAP_NAME, &step);
	out = -1;
	if (rv == -1)
		goto fail_io;
	step = "fsync of the parent directory";
	if (made && snap_sync_parent(dir) == -1)
		goto fail_io;
	close(dirfd);
	munmap(map, size);
	close(fd);
	return 0;

fail_io:
	snprintf(err, errlen, "%s/%s: %s: %s", dir, SNAP_TMPNAME, step,
	    strerror(errno));
fail:
	if (out != -1)
		close(out);
	if (dirfd != -1) {
		(void)unlinkat(dirfd, SNAP_TMPNAME, 0);
		(void)unlinkat(dirfd, SNAP_NAME, 0);
		close(dirfd);
	}
	if (made)
		(void)rmdir(dir);
	if (map != NULL)
		munmap(map, size);
	close(fd);
	return -1;
}

/* Replay a log record into the store. */
static int
snap_replay(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
	struct store		*st = arg;
	struct store_op		 op;
	struct store_result	 res;

	if (store_op_decode(rec, len, &op) == -1)
		return -1;
	if (store_apply(st, &op, &res) == -1)
		return -1;
	store_result_release(&res);
	return 0;
}

struct wal *
snap_recover(struct store *st, const struct wal_config *cfg,
    struct snap_info *info, char *err, size_t errlen)
{
	struct wal	*w;

	if (snap_load(cfg->dir, st, info, err, errlen) == -1)
		return NULL;
	if (info->present)
		log_info("snapshot: loaded %" PRIu64 " keys up to record %"
		    PRIu64, info->count, info->seq);
	w = wal_open(cfg, info->segno, info->seq, snap_replay, st, err,
	    errlen);
	if (w != NULL && wal_last_seq(w) != info->seq)
		log_info("wal: replayed records %" PRIu64 " to %" PRIu64,
		    info->seq + 1, wal_last_seq(w));
	return w;
}

/* Background snapshots. */

/* What every snapshot child does first, right after fork(). */
static void
snap_child_init(pid_t parent)
{
	/*
	 * Die with the server: this child holds the data directory's lock
	 * (inherited), so after a kill -9 of the server a restart would be
	 * refused as "in use" until a large snapshot was written, for
	 * nothing, since the new server recovers from the log anyway.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(1);

	/* Stop and termination signals should stop this child, not be
	 * passed to the parent's loop through libevent's handler. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
}

/* The child: write, and say how it went through the exit status. */
static void __attribute__((noreturn))
snap_child_main(struct snap *s, pid_t parent)
{
	char	err[512];

	snap_child_init(parent);
	if (snap_write_buf(s->dir, s->store, s->pending.segno,
	    s->pending.seq, s->pending.taken_ms, s->buf, err,
	    sizeof err) == -1) {
		log_warnx("snapshot: %s", err);
		_exit(1);
	}
	_exit(0);
}

/* The streaming child (snap_fork_stream()). */
static void __attribute__((noreturn))
snap_stream_main(int fd, const struct store *st, const struct snap_info *info,
    uint8_t *buf, pid_t parent)
{
	char	err[512];

	snap_child_init(parent);
	/*
	 * Hold nothing of the server's but the pipe (and stderr): a client
	 * connection the server closes must really close, and the data
	 * directory's lock go with the server, however long the reader
	 * takes.  Closing our copies releases nothing of the parent's.
	 */
	if (fd > 3)
		(void)close_range(3, (unsigned)fd - 1, 0);
	(void)close_range((unsigned)fd + 1, ~0U, 0);
	if (snap_stream(fd, st, info, buf, err, sizeof err) == -1) {
		/* A reader gone away (EPIPE) is the parent's to report. */
		if (errno != EPIPE)
			log_warnx("snapshot: streaming child: %s", err);
		_exit(1);
	}
	_exit(0);
}

pid_t
snap_fork_stream(int fd, const struct store *st, uint64_t seq,
    uint8_t *buf)
{
	struct snap_info	info;
	pid_t			pid, parent = getpid();

	memset(&info, 0, sizeof info);
	info.seq = seq;
	info.taken_ms = snap_now_ms();
	/* The CRC's tables, made now rather than in the child. */
	(void)wal_crc32c(0, NULL, 0);
	if ((pid = fork()) == 0)
		snap_stream_main(fd, st, &info, buf, parent);
	return pid;
}

void
snap_kill(pid_t pid)
{
	int	status;

	(void)kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
}

int
snap_reap(pid_t pid, int *status)
{
	pid_t	r;

	do
		r = waitpid(pid, status, WNOHANG);
	while (r == -1 && errno == EINTR);
	if (r == 0)
		return 0;
	if (r == -1) {
		log_warn("snapshot: waitpid %ld", (long)pid);
		*status = 0xff00;	/* as if exit 255 */
	}
	return 1;
}

/* The size of the snapshot file, or 0 if it cannot be read; and when it
 * was written into the stats. */
static uint64_t
snap_size(struct snap *s)
{
	struct stat	 sb;
	char		*path;
	uint64_t	 size = 0;

	if (asprintf(&path, "%s/%s", s->dir, SNAP_NAME) == -1)
		return 0;
	if (stat(path, &sb) == 0) {
		size = (uint64_t)sb.st_size;
		s->stats.written_ns = (uint64_t)sb.st_mtim.tv_sec *
		    1000000000 + (uint64_t)sb.st_mtim.tv_nsec;
	}
	free(path);
	return size;
}

/* A child's end, however it was learnt. */
static void
snap_finish(struct snap *s, int status)
{
	int	ok;

	s->pid = -1;
	ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (ok) {
		s->stats.ok++;
		metrics_observe(&s->stats.duration,
		    metrics_now_ns() - s->started_ns);
		s->pending.size = snap_size(s);
		s->last = s->pending;
		s->mark = s->pending_mark;
		wal_purge(s->wal, s->pending.segno);
		log_info("snapshot: %" PRIu64 " keys up to record %" PRIu64,
		    s->pending.count, s->pending.seq);
	} else if (WIFSIGNALED(status))
		log_warnx("snapshot: child killed by signal %d",
		    WTERMSIG(status));
	else
		log_warnx("snapshot: child failed (exit %d)",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	if (!ok) {
		s->stats.failed++;
		s->retry_at = time(NULL) + SNAP_RETRY_SEC;
	}
	if (s->done != NULL)
		s->done(s->arg, ok, ok ? &s->last : &s->pending);
	/* Writes made while this one was written may already be past the
	 * limit: then the next starts now, not at the next write. */
	if (ok)
		snap_poke(s);
}

static void
snap_chld_cb(evutil_socket_t sig, short what, void *arg)
{
	struct snap	*s = arg;
	int		 status;

	/* Reap only our own child: other modules may have theirs. */
	if (s->pid != -1 && snap_reap(s->pid, &status))
		snap_finish(s, status);
}

static void
snap_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct snap	*s = arg;

	if (s->pid == -1)
		(void)snap_start(s, 0);
}

int
snap_start(struct snap *s, int force)
{
	uint64_t	segno, seq;
	pid_t		pid, parent = getpid();

	if (s->pid != -1) {
		errno = EBUSY;
		return -1;
	}
	if (!force && s->last.present && wal_last_seq(s->wal) == s->last.seq)
		return 0;
	if (!force && !s->last.present && wal_last_seq(s->wal) == 0)
		return 0;
	s->started_ns = metrics_now_ns();
	if (wal_rotate(s->wal, &segno, &seq) == -1) {
		log_warn("snapshot: cannot end the log segment");
		s->stats.failed++;
		return -1;
	}
	s->pending.present = 1;
	s->pending.segno = segno;
	s->pending.seq = seq;
	s->pending.count = store_count(s->store);
	s->pending.taken_ms = snap_now_ms();
	s->pending_mark = wal_appended(s->wal);

	/* Between wal_rotate() and fork() nothing may touch the store. */
	if ((pid = fork()) == -1) {
		log_warn("snapshot: fork");
		s->stats.failed++;
		return -1;
	}
	if (pid == 0)
		snap_child_main(s, parent);
	s->pid = pid;
	log_debug("snapshot: child %ld writing records up to %" PRIu64,
	    (long)pid, seq);
	return 1;
}

void
snap_poke(struct snap *s)
{
	uint64_t	logged, limit;

	if (s->log_limit == 0 || s->pid != -1)
		return;
	logged = wal_appended(s->wal) - s->mark;
	limit = s->last.size > s->log_limit ? s->last.size : s->log_limit;
	if (logged < limit)
		return;
	if (s->retry_at != 0 && time(NULL) < s->retry_at)
		return;
	s->retry_at = 0;
	log_info("snapshot: %" PRIu64 " bytes of log since the last one, "
	    "limit %" PRIu64, logged, limit);
	if (snap_start(s, 0) == -1)
		s->retry_at = time(NULL) + SNAP_RETRY_SEC;
}

pid_t
snap_child(const struct snap *s)
{
	return s->pid;
}

const struct snap_info *
snap_last(const struct snap *s)
{
	return &s->last;
}

void
snap_get_stats(const struct snap *s, struct snap_stats *st)
{
	*st = s->stats;
	st->size = s->last.present ? s->last.size : 0;
}

struct snap *
snap_new(const struct snap_config *cfg, const struct snap_info *loaded)
{
	struct snap	*s;
	struct timeval	 tv;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	s->pid = -1;
	s->base = cfg->base;
	s->store = cfg->store;
	s->wal = cfg->wal;
	s->done = cfg->done;
	s->arg = cfg->arg;
	s->log_limit = cfg->log_limit;
	metrics_hist_init(&s->stats.duration, &metrics_slow);
	if (loaded != NULL)
		s->last = *loaded;
	if ((s->dir = strdup(cfg->dir)) == NULL ||
	    (s->buf = malloc(SNAP_BUFLEN)) == NULL)
		goto fail;
	if (s->last.present)
		(void)snap_size(s);	/* when it was written */
	s->ev_chld = evsignal_new(s->base, SIGCHLD, snap_chld_cb, s);
	if (s->ev_chld == NULL || event_add(s->ev_chld, NULL) == -1)
		goto fail;
	if (cfg->interval != 0) {
		s->ev_timer = event_new(s->base, -1, EV_PERSIST, snap_timer_cb,
		    s);
		tv.tv_sec = cfg->interval;
		tv.tv_usec = 0;
		if (s->ev_timer == NULL || event_add(s->ev_timer, &tv) == -1)
			goto fail;
	}
	return s;

fail:
	snap_free(s);
	return NULL;
}

int
snap_shutdown(struct snap *s, int save)
{
	char		err[512];
	uint64_t	segno, seq;
	int64_t		taken_ms;
	pid_t		r;
	int		status;

	if (s->pid != -1) {
		do
			r = waitpid(s->pid, &status, 0);
		while (r == -1 && errno == EINTR);
		if (r == -1)
			status = 0xff00;
		snap_finish(s, status);
	}
	if (!save || wal_last_seq(s->wal) == s->last.seq)
		return 0;
	s->started_ns = metrics_now_ns();
	if (wal_rotate(s->wal, &segno, &seq) == -1) {
		log_warn("snapshot: cannot end the log segment");
		s->stats.failed++;
		return -1;
	}
	taken_ms = snap_now_ms();
	if (snap_write_buf(s->dir, s->store, segno, seq, taken_ms, s->buf,
	    err, sizeof err) == -1) {
		log_warnx("snapshot: %s", err);
		s->stats.failed++;
		return -1;
	}
	s->stats.ok++;
	metrics_observe(&s->stats.duration, metrics_now_ns() - s->started_ns);
	s->last.present = 1;
	s->last.taken_ms = taken_ms;
	s->last.segno = segno;
	s->last.seq = seq;
	s->last.count = store_count(s->store);
	s->last.size = snap_size(s);
	s->mark = wal_appended(s->wal);
	wal_purge(s->wal, segno);
	log_notice("snapshot: final, %" PRIu64 " keys up to record %" PRIu64,
	    s->last.count, seq);
	return 0;
}

void
snap_free(struct snap *s)
{
	if (s == NULL)
		return;
	if (s->pid != -1)
		snap_kill(s->pid);
	if (s->ev_timer != NULL)
		event_free(s->ev_timer);
	if (s->ev_chld != NULL)
		event_free(s->ev_chld);
	free(s->buf);
	free(s->dir);
	free(s);
}
