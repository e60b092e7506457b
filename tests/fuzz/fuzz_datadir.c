/*
 * libFuzzer target: kvdb's recovery (kv/snap.c snap_recover: the snapshot
 * loader, then the log's segments) on a data directory made from the
 * fuzzer's bytes.  Recovery must load, drop a torn tail, or refuse with an
 * error; never crash, and never load a state that was not there.  The
 * first byte picks one of two ways to build the directory:
 *
 * Files (first byte even): the input is split into files at each "\xff
 * FILE" marker; the byte after a marker picks the name (the snapshot, its
 * temporary, or segment 1 to 4).  With bit 1 of the first byte set, the
 * checksums (segment header, each record whose length fits, snapshot
 * header and entries) are made right first, or almost nothing would get
 * past them.  Checks: a directory that recovered recovers again to the
 * same state (the first recovery's repairs, such as a dropped tail, are
 * for good), and that state survives a snapshot written and loaded back.
 *
 * History (first byte odd): the bytes are a history of operations,
 * rotations and snapshots (up to MAXSNAPS; later ones are rotations),
 * written by the real log and snapshot writers;
 * then one damage (none, a truncated last segment, a flipped byte, a
 * removed file).  Checks: undamaged, recovery gives exactly the final
 * state; damaged, it refuses or gives the state after some prefix of the
 * history, never another.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <gmp.h>

#include "core/le.h"
#include "core/log.h"
#include "kv/snap.h"
#include "kv/store.h"
#include "kv/wal.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define MAXOPS		256
/* Snapshots per history: each costs a few milliseconds (a 1 MiB buffer,
 * files, syncs), and a history of fifty ran at 5 inputs a second. */
#define MAXSNAPS	4
#define SNAP_HDRLEN	64	/* as kv/snap.c */
#define WAL_HDRLEN	32	/* as kv/wal.c */
#define WAL_RECHDR	8
#define WAL_VERSION	2	/* the current one; 1 is still read */
#define WAL_SYNCFLAG	0x80000000U	/* version 2: not in the CRC */

static const char *const names[] = {
	"snapshot", "snapshot.tmp",
	"wal-0000000000000001.log", "wal-0000000000000002.log",
	"wal-0000000000000003.log", "wal-0000000000000004.log",
};
#define NNAMES	(sizeof names / sizeof names[0])

static struct event_base	*base;
static char			 dir[64];
static char			 dir2[64];

static void
clear(const char *d)
{
	DIR		*dp;
	struct dirent	*de;
	int		 fd;

	if ((fd = open(d, O_RDONLY | O_DIRECTORY)) == -1)
		abort();
	if ((dp = fdopendir(fd)) == NULL)
		abort();
	while ((de = readdir(dp)) != NULL)
		if (de->d_name[0] != '.')
			(void)unlinkat(fd, de->d_name, 0);
	closedir(dp);
}

static void
put(const char *name, const uint8_t *p, size_t len)
{
	char	path[128];
	int	fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		abort();
	if (len > 0 && wal_writeall(fd, p, len) == -1)
		abort();
	close(fd);
}

static void
config(struct wal_config *c, const char *d)
{
	memset(c, 0, sizeof *c);
	c->dir = d;
	c->fsync = WAL_FSYNC_NO;
	c->inline_sync = 1;
	c->prealloc = 4096;	/* a 64 MiB reservation per run is slow */
	c->base = base;
}

/* Recover d into a new store: the store, or NULL when refused. */
static struct store *
recover(const char *d, struct wal **wp)
{
	struct wal_config	 c;
	struct snap_info	 info;
	struct store		*st;
	struct wal		*w;
	char			 err[512];

	if ((st = store_new()) == NULL)
		abort();
	config(&c, d);
	memset(&info, 0, sizeof info);
	err[0] = '\0';
	if ((w = snap_recover(st, &c, &info, err, sizeof err)) == NULL) {
		if (err[0] == '\0')
			abort();	/* a refusal must say why */
		store_free(st);
		return NULL;
	}
	if (wp != NULL)
		*wp = w;
	else
		wal_close(w);
	return st;
}

/* Files: make the checksums right where the lengths allow.  The header
 * keeps a version 1 from the input (both rules are fuzzed: the seed is a
 * version-1 directory), and gets the current one otherwise. */
static void
fix_segment(uint8_t *p, size_t len)
{
	size_t		off;
	uint32_t	n, version;
	uint8_t		lenbuf[4];

	if (len < WAL_HDRLEN)
		return;
	memcpy(p, "DSD-WAL\n", 8);
	version = le_get32(p + 8) == 1 ? 1 : WAL_VERSION;
	le_put32(p + 8, version);
	memset(p + 12, 0, 4);
	le_put32(p + 12, wal_crc32c(0, p, WAL_HDRLEN));
	for (off = WAL_HDRLEN; off + WAL_RECHDR <= len;
	    off += WAL_RECHDR + n) {
		n = le_get32(p + off);
		if (version >= 2)
			n &= ~WAL_SYNCFLAG;
		if (n == 0 || n > len - off - WAL_RECHDR)
			break;
		le_put32(lenbuf, n);
		le_put32(p + off + 4, wal_crc32c(wal_crc32c(0, lenbuf, 4),
		    p + off + WAL_RECHDR, n));
	}
}

static void
fix_snapshot(uint8_t *p, size_t len)
{
	if (len < SNAP_HDRLEN)
		return;
	memcpy(p, "DSD-SNAP", 8);
	le_put32(p + 8, 1);
	le_put64(p + 40, len - SNAP_HDRLEN);
	le_put32(p + 48, wal_crc32c(0, p + SNAP_HDRLEN, len - SNAP_HDRLEN));
	memset(p + 12, 0, 4);
	le_put32(p + 12, wal_crc32c(0, p, SNAP_HDRLEN));
}

static void
files(const uint8_t *data, size_t size, int fix)
{
	struct store	*st, *st2;
	struct wal	*w;
	uint8_t		*buf;
	size_t		 i, start, end;
	uint64_t	 d;
	unsigned int	 which;
	char		 err[512];

	clear(dir);
	for (start = 0; start < size; start = end + 5) {
		for (end = start; end + 4 < size; end++)
			if (memcmp(data + end, "\xff" "FILE", 5) == 0)
				break;
		if (end + 4 >= size)
			end = size;
		if (end == start)
			continue;
		which = data[start] % NNAMES;
		if ((buf = malloc(end - start)) == NULL)
			abort();
		memcpy(buf, data + start + 1, end - start - 1);
		if (fix && which == 0)
			fix_snapshot(buf, end - start - 1);
		else if (fix && which >= 2)
			fix_segment(buf, end - start - 1);
		put(names[which], buf, end - start - 1);
		free(buf);
		if (end == size)
			break;
	}

	if ((st = recover(dir, &w)) == NULL)
		return;
	d = store_digest(st);
	wal_close(w);
	store_free(st);
	/* Whatever the first recovery repaired, a second one finds. */
	if ((st = recover(dir, NULL)) == NULL) {
		fprintf(stderr, "a recovered directory was refused\n");
		abort();
	}
	if (store_digest(st) != d) {
		fprintf(stderr, "a second recovery gave another state\n");
		abort();
	}
	/* And the state written as a snapshot loads as the same. */
	clear(dir2);
	if (snap_write(dir2, st, 0, 0, err, sizeof err) == -1)
		abort();
	if ((st2 = recover(dir2, NULL)) == NULL ||
	    store_digest(st2) != d) {
		fprintf(stderr, "a recovered state did not survive its "
		    "snapshot\n");
		abort();
	}
	for (i = 0; i < 2; i++)
		store_free(i == 0 ? st : st2);
}

/* History: one operation as kvdb applies it, log first. */
static int
apply(struct wal *w, struct store *st, const uint8_t *p)
{
	struct store_op		 op;
	struct store_result	 res;
	uint8_t			 key[16], rec[64], data[8];
	size_t			 n;
	mpz_t			 z;

	mpz_init_set_ui(z, p[1] % 16);
	n = store_key_from_mpz(z, key, sizeof key);
	mpz_clear(z);
	memset(&op, 0, sizeof op);
	op.type = p[0] % 2 == 0 ? STORE_OP_SET :
	    p[0] % 4 == 1 ? STORE_OP_DEL :
	    p[0] % 8 == 3 ? STORE_OP_DELVERSION : STORE_OP_TESTANDSET;
	op.key = key;
	op.keylen = n;
	op.timestamp = p[2];
	op.version = p[2] % 4;
	memset(data, p[2], sizeof data);
	op.data = data;
	op.datalen = p[2] % sizeof data;
	if ((n = store_op_encode(&op, rec, sizeof rec)) == 0 ||
	    n > sizeof rec)
		abort();
	if (wal_append(w, rec, n) == 0)
		abort();
	if (store_apply(st, &op, &res) == -1)
		abort();
	store_result_release(&res);
	return 0;
}

static void
history(const uint8_t *data, size_t size)
{
	struct store	*st;
	struct wal	*w;
	uint64_t	 digests[MAXOPS + 1], d, segno, seq;
	size_t		 ndig = 0, i, pos, nsnaps = 0;
	struct stat	 sb;
	char		 path[128], err[512];
	int		 fd;
	uint8_t		 damage, b;
	uint32_t	 at;

	if (size < 6)
		return;
	damage = data[0];
	at = le_get32(data + 1);
	data += 5;
	size -= 5;

	clear(dir);
	if ((st = recover(dir, &w)) == NULL)
		abort();
	digests[ndig++] = store_digest(st);
	for (pos = 0; pos + 3 <= size && ndig <= MAXOPS; pos += 3) {
		switch (data[pos] >> 5 == 7 && nsnaps++ >= MAXSNAPS ? 6 :
		    data[pos] >> 5) {
		case 6:
			if (wal_rotate(w, &segno, &seq) == -1)
				abort();
			break;
		case 7:
			/* As snap.c's child does, but in this process. */
			if (wal_rotate(w, &segno, &seq) == -1 ||
			    wal_sync(w) == -1)
				abort();
			if (snap_write(dir, st, segno, seq, err,
			    sizeof err) == -1) {
				fprintf(stderr, "%s\n", err);
				abort();
			}
			wal_purge(w, segno);
			break;
		default:
			apply(w, st, data + pos);
			digests[ndig++] = store_digest(st);
			break;
		}
		if (data[pos + 1] & 0x80 && wal_sync(w) == -1)
			abort();
	}
	if (wal_sync(w) == -1)
		abort();
	wal_close(w);
	store_free(st);

	b = damage & 3;
	i = (damage >> 2) % NNAMES;
	snprintf(path, sizeof path, "%s/%s", dir, names[i]);
	if (b != 0 && stat(path, &sb) == 0) {
		if (b == 1 && i >= 2) {
			if (truncate(path, at % (sb.st_size + 1)) == -1)
				abort();
		} else if (b == 2 && sb.st_size > 0) {
			if ((fd = open(path, O_RDWR)) == -1)
				abort();
			if (pread(fd, &b, 1, at % sb.st_size) != 1)
				abort();
			b ^= (uint8_t)(1 + (damage >> 5));
			if (pwrite(fd, &b, 1, at % sb.st_size) != 1)
				abort();
			close(fd);
		} else if (b == 3)
			(void)unlink(path);
		else
			damage = 0;
	} else
		damage = 0;

	if ((st = recover(dir, NULL)) == NULL) {
		if ((damage & 3) == 0) {
			fprintf(stderr, "an undamaged directory was refused\n");
			abort();
		}
		return;
	}
	d = store_digest(st);
	store_free(st);
	if ((damage & 3) == 0) {
		if (d != digests[ndig - 1]) {
			fprintf(stderr, "undamaged, recovery gave another "
			    "state\n");
			abort();
		}
		return;
	}
	for (i = 0; i < ndig; i++)
		if (d == digests[i])
			return;
	fprintf(stderr, "damage %02x at %u: a state that never was\n",
	    damage, at);
	abort();
}

static void
cleanup(void)
{
	clear(dir);
	clear(dir2);
	(void)rmdir(dir);
	(void)rmdir(dir2);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("dsd-fuzz", getenv("FUZZ_VERBOSE") != NULL ? 1 : -1);
	if ((base = event_base_new()) == NULL)
		abort();
	/* tmpfs where there is one: recovery fsyncs the directory. */
	snprintf(dir, sizeof dir, "%s/dsd-fuzz-dir-XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	snprintf(dir2, sizeof dir2, "%s/dsd-fuzz-dir2-XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(dir) == NULL || mkdtemp(dir2) == NULL)
		abort();
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		history(data + 1, size - 1);
	else
		files(data + 1, size - 1, (data[0] & 2) != 0);
	return 0;
}
