/*
 * Logging to stderr, which is the only place logs may go: in Maelstrom
 * modes stdout carries the protocol, and under systemd stderr reaches the
 * journal.
 *
 * fatal() and fatalx() are for start-up and broken invariants only; at run
 * time return an error and let the caller turn it into a reply.
 */
#ifndef DSD_LOG_H
#define DSD_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_WARN = 0,
	LOG_LVL_INFO = 1,
	LOG_LVL_DEBUG = 2,
};

/* Set the program name and the level; each -v raises it by one. */
void	log_init(const char *name, int level);
/* Add a tag to every line, such as the Maelstrom node id once known. */
void	log_set_tag(const char *tag);
int	log_get_level(void);

/* The _warn variants append strerror(errno); _warnx do not. */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Printed at every level: start-up and shutdown notices. */
void	log_notice(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
