/*
 * recfs: an LD_PRELOAD shim that records every file system call dsd makes
 * on one directory (RECFS_DIR) into a trace file (RECFS_TRACE), for the
 * crash-state replayer (tests/crash/crashcheck.py).
 *
 * Each record is a text line then its data bytes:
 *
 *	F <pid> <op> ino=<n> path=<name> [off=<n>] [len=<n>] [mode=<n>]
 *	    [flags=<n>] [path2=<name>] ret=<n> err=<n> dlen=<n>\n<dlen bytes>\n
 *
 * path is relative to RECFS_DIR ("." for the directory itself); ino is the
 * file's inode number, so that a write through an fd is tied to the file
 * whatever its name is now.  ret and err are the call's outcome: the
 * replayer ignores failed calls.  Writes carry their bytes.
 *
 * Ordering.  The replayer takes the trace's order for the order the calls
 * happened in, and a sync to cover exactly the records before it.  So a
 * call and its record must be one step as seen from other threads and
 * processes: the shim holds a lock across the real call and the append of
 * its record.  The lock is a mutex (threads) plus an OFD lock on the trace
 * (processes: the snapshot child reopens the trace after fork(), so that
 * its open file description, and so its lock, is its own).  Only calls on
 * RECFS_DIR take the lock; sockets and other files pass straight through.
 * The load driver appends its own "SEND"/"ACK" lines to the same file with
 * O_APPEND: a reply can only follow the calls that made its write durable,
 * so an ACK line lands after their records.
 *
 * Test-only code: it is never linked into dsd.
 */
#define _GNU_SOURCE
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t	 rec_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t	 rec_once = PTHREAD_ONCE_INIT;
static char		 rec_dir[PATH_MAX];
static size_t		 rec_dirlen;
static char		 rec_trace[PATH_MAX];
static int		 rec_fd = -1;

static int	(*real_open)(const char *, int, ...);
static int	(*real_openat)(int, const char *, int, ...);
static ssize_t	(*real_write)(int, const void *, size_t);
static ssize_t	(*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t	(*real_writev)(int, const struct iovec *, int);
static ssize_t	(*real_pwritev)(int, const struct iovec *, int, off_t);
static int	(*real_fallocate)(int, int, off_t, off_t);
static int	(*real_ftruncate)(int, off_t);
static int	(*real_fsync)(int);
static int	(*real_fdatasync)(int);
static int	(*real_rename)(const char *, const char *);
static int	(*real_renameat)(int, const char *, int, const char *);
static int	(*real_unlink)(const char *);
static int	(*real_unlinkat)(int, const char *, int);
static int	(*real_mkdir)(const char *, mode_t);

/* After fork(), in the child: a lock of its own (see the top comment). */
static void
rec_atfork_child(void)
{
	pthread_mutex_init(&rec_mtx, NULL);
	if (rec_fd != -1) {
		close(rec_fd);
		rec_fd = open(rec_trace, O_WRONLY | O_APPEND | O_CLOEXEC);
	}
}

static void
rec_atfork_prepare(void)
{
	pthread_mutex_lock(&rec_mtx);
}

static void
rec_atfork_parent(void)
{
	pthread_mutex_unlock(&rec_mtx);
}

static void
rec_init(void)
{
	const char	*d = getenv("RECFS_DIR"), *t = getenv("RECFS_TRACE");

	real_open = dlsym(RTLD_NEXT, "open");
	real_openat = dlsym(RTLD_NEXT, "openat");
	real_write = dlsym(RTLD_NEXT, "write");
	real_pwrite = dlsym(RTLD_NEXT, "pwrite");
	real_writev = dlsym(RTLD_NEXT, "writev");
	real_pwritev = dlsym(RTLD_NEXT, "pwritev");
	real_fallocate = dlsym(RTLD_NEXT, "fallocate");
	real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
	real_fsync = dlsym(RTLD_NEXT, "fsync");
	real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
	real_rename = dlsym(RTLD_NEXT, "rename");
	real_renameat = dlsym(RTLD_NEXT, "renameat");
	real_unlink = dlsym(RTLD_NEXT, "unlink");
	real_unlinkat = dlsym(RTLD_NEXT, "unlinkat");
	real_mkdir = dlsym(RTLD_NEXT, "mkdir");
	if (d == NULL || t == NULL || realpath(d, rec_dir) == NULL)
		return;
	rec_dirlen = strlen(rec_dir);
	snprintf(rec_trace, sizeof rec_trace, "%s", t);
	rec_fd = real_open(t, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	pthread_atfork(rec_atfork_prepare, rec_atfork_parent,
	    rec_atfork_child);
}

static void
rec_setup(void)
{
	pthread_once(&rec_once, rec_init);
}

/* The name of path inside the directory ("." for itself), or NULL if it
 * is outside. */
static const char *
rec_rel(const char *abs)
{
	if (rec_dirlen == 0 || strncmp(abs, rec_dir, rec_dirlen) != 0)
		return NULL;
	if (abs[rec_dirlen] == '\0')
		return ".";
	if (abs[rec_dirlen] != '/')
		return NULL;
	return abs + rec_dirlen + 1;
}

/* What fd is: its path (as the kernel says now) into buf. */
static const char *
rec_fdpath(int fd, char *buf, size_t len)
{
	char	 link[64];
	ssize_t	 n;

	if (rec_fd == -1 || fd < 0 || fd == rec_fd)
		return NULL;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	if ((n = readlink(link, buf, len - 1)) <= 0)
		return NULL;
	buf[n] = '\0';
	return rec_rel(buf);
}

/* dirfd plus a name, made absolute and looked up; NULL if outside. */
static const char *
rec_atpath(int dirfd, const char *name, char *buf, size_t len)
{
	char	 dbuf[PATH_MAX], link[64];
	ssize_t	 n;

	if (rec_fd == -1 || name == NULL)
		return NULL;
	if (name[0] == '/')
		snprintf(buf, len, "%s", name);
	else {
		if (dirfd == AT_FDCWD) {
			if (getcwd(dbuf, sizeof dbuf) == NULL)
				return NULL;
		} else {
			snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
			if ((n = readlink(link, dbuf, sizeof dbuf - 1)) <= 0)
				return NULL;
			dbuf[n] = '\0';
		}
		if ((size_t)snprintf(buf, len, "%s/%s", dbuf, name) >= len)
			return NULL;
	}
	/* "dir/./x" and "dir/x" are one; dsd passes plain names. */
	return rec_rel(buf);
}

static void
rec_lock(void)
{
	struct flock	fl;

	pthread_mutex_lock(&rec_mtx);
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	while (fcntl(rec_fd, F_OFD_SETLKW, &fl) == -1 && errno == EINTR)
		;
}

static void
rec_unlock(void)
{
	struct flock	fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = F_UNLCK;
	fl.l_whence = SEEK_SET;
	(void)fcntl(rec_fd, F_OFD_SETLK, &fl);
	pthread_mutex_unlock(&rec_mtx);
}

static unsigned long long
rec_ino(int fd)
{
	struct stat	st;

	return fstat(fd, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/* Append one record: header fields (already formatted) and data. */
static void
rec_emit(const char *op, const char *fields, long long ret, int err,
    const struct iovec *iov, int niov)
{
	char		 hdr[2 * PATH_MAX + 256];
	struct iovec	 v[66];
	size_t		 dlen = 0;
	int		 i, n = 0;

	for (i = 0; i < niov; i++)
		dlen += iov[i].iov_len;
	snprintf(hdr, sizeof hdr, "F %ld %s %s ret=%lld err=%d dlen=%zu\n",
	    (long)getpid(), op, fields, ret, err, dlen);
	v[n].iov_base = hdr;
	v[n++].iov_len = strlen(hdr);
	for (i = 0; i < niov && n < 65; i++)
		v[n++] = iov[i];
	v[n].iov_base = "\n";
	v[n++].iov_len = 1;
	/* One writev to an O_APPEND file: whole, whoever else appends. */
	(void)syscall(SYS_writev, rec_fd, v, n);
}

/* The data a writev of ret bytes wrote: iov cut at ret. */
static int
rec_cut(const struct iovec *iov, int niov, ssize_t ret, struct iovec *out)
{
	size_t	left = ret > 0 ? (size_t)ret : 0;
	int	i, n = 0;

	for (i = 0; i < niov && left > 0 && n < 64; i++) {
		out[n].iov_base = iov[i].iov_base;
		out[n].iov_len = iov[i].iov_len < left ? iov[i].iov_len : left;
		left -= out[n].iov_len;
		n++;
	}
	return n;
}

static off_t
rec_curoff(int fd)
{
	struct stat	st;

	if ((fcntl(fd, F_GETFL) & O_APPEND) && fstat(fd, &st) == 0)
		return st.st_size;
	return lseek(fd, 0, SEEK_CUR);
}

static ssize_t
rec_writev_at(const char *op, int fd, const struct iovec *iov, int niov,
    off_t off, int positional)
{
	char		 pbuf[PATH_MAX], f[PATH_MAX + 128];
	const char	*rel;
	struct iovec	 cut[64];
	ssize_t		 ret;
	off_t		 at;
	int		 e;

	rec_setup();
	if ((rel = rec_fdpath(fd, pbuf, sizeof pbuf)) == NULL)
		return positional ? real_pwritev(fd, iov, niov, off) :
		    real_writev(fd, iov, niov);
	rec_lock();
	at = positional ? off : rec_curoff(fd);
	ret = positional ? real_pwritev(fd, iov, niov, off) :
	    real_writev(fd, iov, niov);
	e = errno;
	snprintf(f, sizeof f, "ino=%llu path=%s off=%lld", rec_ino(fd), rel,
	    (long long)at);
	rec_emit(op, f, ret, ret == -1 ? e : 0, iov,
	    rec_cut(iov, niov, ret, cut));
	rec_unlock();
	errno = e;
	return ret;
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	struct iovec	iov = { (void *)buf, len };

	return rec_writev_at("write", fd, &iov, 1, 0, 0);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	struct iovec	iov = { (void *)buf, len };

	return rec_writev_at("write", fd, &iov, 1, off, 1);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	return pwrite(fd, buf, len, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int niov)
{
	return rec_writev_at("write", fd, iov, niov, 0, 0);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int niov, off_t off)
{
	return rec_writev_at("write", fd, iov, niov, off, 1);
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int niov, off_t off)
{
	return pwritev(fd, iov, niov, off);
}

/* The calls on an fd with no data: sizes and syncs. */
static int
rec_fdcall(const char *op, int fd, int mode, off_t off, off_t len)
{
	char		 pbuf[PATH_MAX], f[PATH_MAX + 128];
	const char	*rel;
	int		 ret, e, dir = 0;

	rec_setup();
	rel = rec_fdpath(fd, pbuf, sizeof pbuf);
	if (rel != NULL)
		rec_lock();
	if (strcmp(op, "fallocate") == 0)
		ret = real_fallocate(fd, mode, off, len);
	else if (strcmp(op, "ftruncate") == 0)
		ret = real_ftruncate(fd, len);
	else if (strcmp(op, "fsync") == 0)
		ret = real_fsync(fd);
	else
		ret = real_fdatasync(fd);
	e = errno;
	if (rel != NULL) {
		dir = strcmp(rel, ".") == 0;
		snprintf(f, sizeof f, "ino=%llu path=%s off=%lld len=%lld "
		    "mode=%d", rec_ino(fd), rel, (long long)off,
		    (long long)len, mode);
		rec_emit(dir && (strcmp(op, "fsync") == 0 ||
		    strcmp(op, "fdatasync") == 0) ? "dirsync" : op, f, ret,
		    ret == -1 ? e : 0, NULL, 0);
		rec_unlock();
	}
	errno = e;
	return ret;
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	return rec_fdcall("fallocate", fd, mode, off, len);
}

int
fallocate64(int fd, int mode, off_t off, off_t len)
{
	return fallocate(fd, mode, off, len);
}

int
ftruncate(int fd, off_t len)
{
	return rec_fdcall("ftruncate", fd, 0, 0, len);
}

int
ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

int
fsync(int fd)
{
	return rec_fdcall("fsync", fd, 0, 0, 0);
}

int
fdatasync(int fd)
{
	return rec_fdcall("fdatasync", fd, 0, 0, 0);
}

/* open and openat: a record only for those that may create or cut a file,
 * and for every open of a file in the directory that succeeds for
 * writing (the replayer learns the inode of a name from it). */
static int
rec_openat(int dirfd, const char *name, int flags, mode_t mode, int at)
{
	char		 pbuf[PATH_MAX], f[PATH_MAX + 128];
	const char	*rel;
	int		 ret, e;

	rec_setup();
	rel = rec_atpath(at ? dirfd : AT_FDCWD, name, pbuf, sizeof pbuf);
	if (rel == NULL || (flags & O_ACCMODE) == O_RDONLY) {
		if (at)
			return real_openat(dirfd, name, flags, mode);
		return real_open(name, flags, mode);
	}
	rec_lock();
	ret = at ? real_openat(dirfd, name, flags, mode) :
	    real_open(name, flags, mode);
	e = errno;
	snprintf(f, sizeof f, "ino=%llu path=%s flags=%d mode=%o",
	    ret >= 0 ? rec_ino(ret) : 0ULL, rel, flags, (unsigned)mode);
	rec_emit("open", f, ret, ret == -1 ? e : 0, NULL, 0);
	rec_unlock();
	errno = e;
	return ret;
}

/* The mode argument of open() and openat(), there only with O_CREAT or
 * O_TMPFILE. */
#define OPEN_MODE(flags, mode) do {					\
	va_list	ap_;							\
									\
	if ((flags) & (O_CREAT | O_TMPFILE)) {				\
		va_start(ap_, flags);					\
		(mode) = (mode_t)va_arg(ap_, int);			\
		va_end(ap_);						\
	}								\
} while (0)

int
open(const char *name, int flags, ...)
{
	mode_t	mode = 0;

	OPEN_MODE(flags, mode);
	return rec_openat(AT_FDCWD, name, flags, mode, 0);
}

int
open64(const char *name, int flags, ...)
{
	mode_t	mode = 0;

	OPEN_MODE(flags, mode);
	return rec_openat(AT_FDCWD, name, flags, mode, 0);
}

int
openat(int dirfd, const char *name, int flags, ...)
{
	mode_t	mode = 0;

	OPEN_MODE(flags, mode);
	return rec_openat(dirfd, name, flags, mode, 1);
}

int
openat64(int dirfd, const char *name, int flags, ...)
{
	mode_t	mode = 0;

	OPEN_MODE(flags, mode);
	return rec_openat(dirfd, name, flags, mode, 1);
}

/* Directory entries: rename, unlink, mkdir. */
static int
rec_dirop(const char *op, int d1, const char *n1, int d2, const char *n2,
    int flags)
{
	char		 b1[PATH_MAX], b2[PATH_MAX], f[2 * PATH_MAX + 64];
	const char	*r1, *r2 = NULL;
	int		 ret, e;

	rec_setup();
	r1 = rec_atpath(d1, n1, b1, sizeof b1);
	if (n2 != NULL)
		r2 = rec_atpath(d2, n2, b2, sizeof b2);
	if (r1 != NULL || r2 != NULL)
		rec_lock();
	if (strcmp(op, "rename") == 0)
		ret = real_renameat(d1, n1, d2, n2);
	else if (strcmp(op, "unlink") == 0)
		ret = real_unlinkat(d1, n1, flags);
	else
		ret = real_mkdir(n1, (mode_t)flags);
	e = errno;
	if (r1 != NULL || r2 != NULL) {
		snprintf(f, sizeof f, "ino=0 path=%s path2=%s flags=%d",
		    r1 != NULL ? r1 : "-", r2 != NULL ? r2 : "-", flags);
		rec_emit(op, f, ret, ret == -1 ? e : 0, NULL, 0);
		rec_unlock();
	}
	errno = e;
	return ret;
}

int
rename(const char *from, const char *to)
{
	return rec_dirop("rename", AT_FDCWD, from, AT_FDCWD, to, 0);
}

int
renameat(int d1, const char *from, int d2, const char *to)
{
	return rec_dirop("rename", d1, from, d2, to, 0);
}

int
unlink(const char *name)
{
	return rec_dirop("unlink", AT_FDCWD, name, AT_FDCWD, NULL, 0);
}

int
unlinkat(int d, const char *name, int flags)
{
	return rec_dirop("unlink", d, name, AT_FDCWD, NULL, flags);
}

int
mkdir(const char *name, mode_t mode)
{
	return rec_dirop("mkdir", AT_FDCWD, name, AT_FDCWD, NULL, (int)mode);
}
