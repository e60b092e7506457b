/*
 * How dsd-cli's commands report their outcome: as text for people, or
 * with -o json as JSON lines for scripts, and with one table of exit
 * statuses for both (dsd-cli(1), OUTPUT and EXIT STATUS).
 *
 * A command calls cliout_begin() with its name, may add context fields
 * (the key it works on), and ends with exactly one cliout_emit(),
 * cliout_fail() or cliout_usage(), whose return value is its exit
 * status.  In JSON mode that is one object on one line of standard
 * output, holding the context and a "status", so that a script feeding
 * the prompt reads one line per command it wrote.  In text mode the
 * command prints its own text; cliout_fail() and cliout_usage() say why
 * on standard error, as they always did.  A command that streams (check)
 * may print objects of its own with cliout_print() before its last one.
 */
#ifndef DSD_CLIOUT_H
#define DSD_CLIOUT_H

#include <jansson.h>

/* The exit statuses; 0 to 3 kept their meaning from before -o json. */
#define CLI_OK		0	/* SUCCESS; health SERVING; check passed */
#define CLI_ERROR	1	/* ERROR; health not SERVING; check failed */
#define CLI_USAGE	2
#define CLI_TRANSPORT	3	/* no kvdb reply: transport or gRPC status */
#define CLI_ERROR_NE	4
#define CLI_ERROR_WV	5

/* Choose the format once, before the first command: 1 for JSON. */
void	 cliout_init(int json);
int	 cliout_json(void);

/* A command starts; op is its name (NULL: none, a line that did not
 * split).  Drops the previous command's context. */
void	 cliout_begin(const char *op);
/* Add a field to every object of this command; takes value (which may
 * be NULL when memory ran out: the emit then fails).  JSON mode only. */
void	 cliout_context(const char *name, json_t *value);

/* A new object: the context, then "status" unless status is NULL (an
 * object that does not end the command).  NULL if memory ran out. */
json_t	*cliout_object(const char *status);
/*
 * Print obj (JSON mode) as one line, taking it; returns rv, or
 * CLI_TRANSPORT after a message if obj is NULL or cannot be written.
 * In text mode obj is only freed.
 */
int	 cliout_emit(json_t *obj, int rv);
/* Print obj as one line, taking it, without ending the command; 0, or
 * -1 if obj is NULL or cannot be written. */
int	 cliout_print(json_t *obj);

/*
 * The command failed: text mode prints "dsd-cli: MESSAGE" on standard
 * error, JSON mode the object {context, "status": status, "message"}.
 * Returns rv.
 */
int	 cliout_fail(int rv, const char *status, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* A usage error: the usage text verbatim on standard error, or as the
 * message of status "USAGE".  Returns CLI_USAGE. */
int	 cliout_usage(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
/* A note for a person (a connection lost, a retry): standard error,
 * prefixed with "dsd-cli: ", in both formats. */
void	 cliout_note(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));

/* The exit status of a kvdb status (SUCCESS, ERROR...); a number
 * outside the API exits as ERROR. */
int	 cliout_kvdb_exit(int status);

#endif
