/* Logging to stderr with levels; see log.h. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static const char	*log_name = "dsd";
static char		 log_tag[64];
static int		 log_level = LOG_LVL_WARN;
static int		 log_journal;

/*
 * Under systemd, stderr may be a stream to the journal: JOURNAL_STREAM
 * then names its device and inode.  Each line then starts with its syslog
 * priority as "<N>" (sd-daemon(3)), so that journalctl -p warning finds
 * our warnings; the prefix is checked against stderr itself, since a child
 * inherits the variable even when its stderr goes elsewhere.
 */
static int
log_to_journal(void)
{
	const char		*js = getenv("JOURNAL_STREAM");
	struct stat		 sb;
	unsigned long long	 dev, ino;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(fileno(stderr), &sb) == -1)
		return 0;
	return (unsigned long long)sb.st_dev == dev &&
	    (unsigned long long)sb.st_ino == ino;
}

void
log_init(const char *name, int level)
{
	log_name = name;
	log_level = level;
	log_journal = log_to_journal();
}

void
log_set_tag(const char *tag)
{
	snprintf(log_tag, sizeof log_tag, "%s", tag != NULL ? tag : "");
}

int
log_get_level(void)
{
	return log_level;
}

/*
 * One fprintf per line so that lines sharing a stderr pipe with other
 * processes do not interleave mid-line; if the message cannot be formatted
 * into memory it is written in pieces instead of being lost.
 */
static void
log_vwrite(int prio, const char *level, int errnum, const char *fmt,
    va_list ap)
{
	char		*msg, pfx[8] = "";
	const char	*sep = log_tag[0] != '\0' ? " " : "";
	va_list		 ap2;
	int		 n;

	if (log_journal)
		snprintf(pfx, sizeof pfx, "<%d>", prio);
	va_copy(ap2, ap);
	n = vasprintf(&msg, fmt, ap2);
	va_end(ap2);
	if (n == -1) {
		flockfile(stderr);
		fprintf(stderr, "%s%s%s%s: %s: ", pfx, log_name, sep, log_tag,
		    level);
		vfprintf(stderr, fmt, ap);
		if (errnum != 0)
			fprintf(stderr, ": %s", strerror(errnum));
		fputc('\n', stderr);
		funlockfile(stderr);
		return;
	}
	if (errnum != 0)
		fprintf(stderr, "%s%s%s%s: %s: %s: %s\n", pfx, log_name, sep,
		    log_tag, level, msg, strerror(errnum));
	else
		fprintf(stderr, "%s%s%s%s: %s: %s\n", pfx, log_name, sep,
		    log_tag, level, msg);
	free(msg);
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	log_vwrite(4, "warning", saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(4, "warning", 0, fmt, ap);
	va_end(ap);
}

void
log_notice(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(5, "notice", 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	if (log_level < LOG_LVL_INFO)
		return;
	va_start(ap, fmt);
	log_vwrite(6, "info", 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (log_level < LOG_LVL_DEBUG)
		return;
	va_start(ap, fmt);
	log_vwrite(7, "debug", 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	log_vwrite(2, "fatal", saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(2, "fatal", 0, fmt, ap);
	va_end(ap);
	exit(1);
}
