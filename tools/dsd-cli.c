/*
 * dsd-cli: the command-line client of dsd's kvdb mode, single-node or
 * replicated.  One-shot commands for scripts, an interactive prompt
 * (libedit: line editing, history, quoting) for people, "check", the
 * API's test batteries, and the replicated database's administration
 * (member, status).  Commands are a table, as tmux's are; dsd-cli(1)
 * documents each one.  Calls go through kvcall.h: one session (client id
 * and seq) for the whole run, several addresses, retries of the calls the
 * transport left undecided.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <histedit.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "check.h"
#include "snapshot.h"
#include "kv/admin.pb-c.h"
#include "net/grpc_client.h"
#include "kvcall.h"
#include "kvtool.h"

/* Exit statuses; dsd-cli(1), EXIT STATUS. */
#define CLI_OK		0	/* SUCCESS */
#define CLI_STATUS	1	/* another kvdb status */
#define CLI_USAGE	2
#define CLI_TRANSPORT	3	/* no kvdb reply */
#define CLI_QUIT	-1	/* leave the prompt */

#define CLI_HISTORY	".dsd-cli_history"
#define CLI_HISTSIZE	1000

struct cli {
	struct event_base	*base;
	struct kvc_pool		*pool;
	const char		*addr;		/* as given to -a */
	char			**addrs;
	size_t			 naddrs;
	int			 timeout_ms;
	int			 retry_ms;
	int			 interactive;
	/* One call at a time, so one session for the whole run. */
	struct kvc_lane		 lane;
	char			*prompt;
	struct kvt_tls		 tlsopt;
	struct ssl_ctx_st	*tls;		/* NULL: clear text */
};

struct cli_cmd {
	const char	*name;
	int		 min, max;	/* arguments; max -1: any */
	const char	*args;
	const char	*help;
	int		(*fn)(struct cli *, int, char **);
};

static int	cli_get(struct cli *, int, char **);
static int	cli_set(struct cli *, int, char **);
static int	cli_del(struct cli *, int, char **);
static int	cli_delv(struct cli *, int, char **);
static int	cli_tas(struct cli *, int, char **);
static int	cli_health(struct cli *, int, char **);
static int	cli_member(struct cli *, int, char **);
static int	cli_status(struct cli *, int, char **);
static int	cli_check(struct cli *, int, char **);
static int	cli_snapshot(struct cli *, int, char **);
static int	cli_help(struct cli *, int, char **);
static int	cli_quit(struct cli *, int, char **);

static const struct cli_cmd cli_cmds[] = {
	{ "get", 1, 1, "KEY", "read the value of KEY", cli_get },
	{ "set", 2, 3, "KEY DATA [TIMESTAMP]",
	    "insert KEY at version 1 if it is absent", cli_set },
	{ "del", 1, 1, "KEY", "delete KEY", cli_del },
	{ "delv", 2, 2, "KEY VERSION",
	    "delete KEY if its version is VERSION", cli_delv },
	{ "tas", 3, 4, "KEY VERSION DATA [TIMESTAMP]",
	    "replace the value of KEY if its version is VERSION", cli_tas },
	{ "health", 0, 0, "", "ask the server's grpc.health.v1 service",
	    cli_health },
	{ "member", 1, 4, "list | add ID RAFTADDR CLIENTADDR | remove ID",
	    "list, add or remove the members of a replicated kvdb",
	    cli_member },
	{ "status", 0, 1, "[--digest]", "show the state of the node asked "
	    "(replicated kvdb)", cli_status },
	{ "check", 0, -1, "[--keys N] [--base KEY] [--concurrency C] "
	    "[--shared KEY]", "run the test batteries against the server",
	    cli_check },
	{ "snapshot", 2, 3, "save FILE | verify FILE | restore FILE DIR",
	    "save the server's state to FILE, check FILE, or make the new "
	    "data directory DIR of it", cli_snapshot },
	{ "help", 0, 1, "[COMMAND]", "describe the commands", cli_help },
	{ "quit", 0, 0, "", "leave the prompt (so do exit and end of "
	    "input)", cli_quit },
	{ "exit", 0, 0, NULL, NULL, cli_quit },
	{ NULL, 0, 0, NULL, NULL, NULL }
};

static void
cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
cli_err(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	kvt_verr("dsd-cli", fmt, ap);
	va_end(ap);
}

/* Said at the prompt only: a one-shot command reports its outcome. */
static void
cli_note(void *arg, const char *msg)
{
	struct cli	*cli = arg;

	if (cli->interactive)
		cli_err("%s", msg);
}

/* A call's outcome, copied out of the pool's callback. */
struct cli_wait {
	int		 done;
	int		 status;
	char		*message;
	uint8_t		*reply;
	size_t		 len;
	int		 attempts;
	int64_t		 elapsed_ms;
	const char	*addr;		/* the pool's; lives as long as it */
	int		 conn_failed, never_up;
};

static void
cli_done(void *arg, const struct kvc_result *r)
{
	struct cli_wait	*w = arg;

	w->done = 1;
	w->status = r->status;
	w->attempts = r->attempts;
	w->elapsed_ms = r->elapsed_ms;
	w->addr = r->addr;
	w->conn_failed = r->conn_failed;
	w->never_up = r->never_up;
	if (r->message != NULL)
		w->message = strdup(r->message);
	if (r->status == 0) {
		/* One spare byte: a reply may be empty. */
		if ((w->reply = malloc(r->len + 1)) == NULL) {
			w->status = -1;
			return;
		}
		memcpy(w->reply, r->reply, r->len);
		w->len = r->len;
	}
}

/* The pool, made at the first call: no connection before it is needed. */
static int
cli_pool(struct cli *cli)
{
	struct kvc_config	 cfg;
	const char		*err;

	if (cli->pool != NULL)
		return 0;
	memset(&cfg, 0, sizeof cfg);
	cfg.addrs = cli->addrs;
	cfg.naddrs = cli->naddrs;
	cfg.nslots = 1;
	cfg.timeout_ms = cli->timeout_ms;
	cfg.retry_ms = cli->retry_ms;
	cfg.tls = cli->tls;
	cfg.server_name = cli->tlsopt.server_name;
	cfg.note = cli_note;
	cfg.arg = cli;
	if ((cli->pool = kvc_pool_new(cli->base, &cfg, &err)) == NULL) {
		cli_err("%s", err);
		return -1;
	}
	return 0;
}

/* Say why a call got no reply, with the retries it took. */
static void
cli_report(const char *path, const struct cli_wait *w)
{
	const char	*msg = w->message != NULL ? w->message : "";
	char		 tail[80] = "";

	if (w->status == -1) {
		cli_err("out of memory keeping the reply");
		return;
	}
	if (w->attempts > 1)
		snprintf(tail, sizeof tail, " (%d attempts in %lld ms)",
		    w->attempts, (long long)w->elapsed_ms);
	if (w->never_up)
		cli_err("cannot connect to %s: %s%s", w->addr, msg, tail);
	else if (w->conn_failed)
		cli_err("connection to %s lost: %s%s", w->addr, msg, tail);
	else
		cli_err("%s: %s%s%s%s", path, kvt_grpc_code_name(w->status),
		    msg[0] != '\0' ? ": " : "", msg, tail);
}

/*
 * Make one call and wait for it, retried as the policy says; a KV call
 * carries the session.  Returns 0 with the reply in w, or CLI_TRANSPORT
 * after saying why there is none.
 */
static int
cli_rpc(struct cli *cli, const char *path, const uint8_t *req, size_t len,
    enum kvc_policy policy, int session, struct cli_wait *w)
{
	memset(w, 0, sizeof *w);
	if (cli_pool(cli) == -1)
		return CLI_TRANSPORT;
	/*
	 * At the prompt the connection may have died while it waited for
	 * input (a server restart): let the loop notice it first, so that
	 * the call goes to a fresh connection and the note says why.
	 */
	event_base_loop(cli->base, EVLOOP_NONBLOCK);
	if (kvc_call(cli->pool, 0, session ? &cli->lane : NULL, path, req,
	    len, policy, cli_done, w) == -1) {
		cli_err("cannot start a call: out of memory");
		return CLI_TRANSPORT;
	}
	while (!w->done)
		if (event_base_loop(cli->base, EVLOOP_ONCE) == -1)
			break;
	if (w->done && w->status == 0)
		return 0;
	if (!w->done)
		cli_err("the event loop failed");
	else
		cli_report(path, w);
	return CLI_TRANSPORT;
}

static void
cli_wait_free(struct cli_wait *w)
{
	free(w->message);
	free(w->reply);
}

/* Send a kvdb operation and print its reply; the exit status. */
static int
cli_op(struct cli *cli, const struct store_op *op)
{
	struct cli_wait		 w;
	struct kvt_reply	 r;
	uint8_t			*req;
	size_t			 len;
	int			 rv;

	if ((req = kvt_op_pack(op, &len)) == NULL) {
		cli_err("out of memory");
		return CLI_TRANSPORT;
	}
	rv = cli_rpc(cli, kvt_op_path(op->type), req, len,
	    KVC_RETRY_TRANSPORT, 1, &w);
	free(req);
	if (rv != 0) {
		cli_wait_free(&w);
		return rv;
	}
	if (kvt_reply_decode(w.reply, w.len, &r) == -1) {
		cli_err("the server's reply is not a kvdb Reply");
		cli_wait_free(&w);
		return CLI_TRANSPORT;
	}
	kvt_reply_print(stdout, &r);
	fflush(stdout);
	rv = r.status == STORE_SUCCESS ? CLI_OK : CLI_STATUS;
	kvt_reply_free(&r);
	cli_wait_free(&w);
	return rv;
}

/* The arguments common to the kvdb commands, parsed into op. */
struct cli_args {
	uint8_t	*key;
	uint8_t	*data;
};

static int
cli_parse_key(const char *s, struct store_op *op, struct cli_args *a)
{
	const char	*err;

	if (kvt_key_parse(s, &a->key, &op->keylen, &err) == -1) {
		cli_err("bad KEY '%s': %s", s, err);
		return -1;
	}
	op->key = a->key;
	return 0;
}

static int
cli_parse_data(const char *s, struct store_op *op, struct cli_args *a)
{
	char	*err;

	if (kvt_data_parse(s, &a->data, &op->datalen, &err) == -1) {
		cli_err("bad DATA: %s", err != NULL ? err : "out of memory");
		free(err);
		return -1;
	}
	op->data = a->data;
	return 0;
}

static int
cli_parse_num(const char *what, const char *s, int64_t *out)
{
	if (kvt_parse_i64(s, out) == -1) {
		cli_err("bad %s '%s': a decimal 64-bit integer", what, s);
		return -1;
	}
	return 0;
}

static int
cli_finish(struct cli *cli, struct store_op *op, struct cli_args *a, int ok)
{
	int	rv = ok ? cli_op(cli, op) : CLI_USAGE;

	free(a->key);
	free(a->data);
	return rv;
}

static int
cli_get(struct cli *cli, int argc, char **argv)
{
	struct store_op	 op = { .type = STORE_OP_GET };
	struct cli_args	 a = { NULL, NULL };

	return cli_finish(cli, &op, &a, cli_parse_key(argv[1], &op, &a) == 0);
}

static int
cli_del(struct cli *cli, int argc, char **argv)
{
	struct store_op	 op = { .type = STORE_OP_DEL };
	struct cli_args	 a = { NULL, NULL };

	return cli_finish(cli, &op, &a, cli_parse_key(argv[1], &op, &a) == 0);
}

static int
cli_set(struct cli *cli, int argc, char **argv)
{
	struct store_op	 op = { .type = STORE_OP_SET };
	struct cli_args	 a = { NULL, NULL };
	int		 ok;

	op.timestamp = kvt_now_ms();
	ok = cli_parse_key(argv[1], &op, &a) == 0 &&
	    cli_parse_data(argv[2], &op, &a) == 0 &&
	    (argc < 4 || cli_parse_num("TIMESTAMP", argv[3],
	    &op.timestamp) == 0);
	return cli_finish(cli, &op, &a, ok);
}

static int
cli_delv(struct cli *cli, int argc, char **argv)
{
	struct store_op	 op = { .type = STORE_OP_DELVERSION };
	struct cli_args	 a = { NULL, NULL };
	int		 ok;

	ok = cli_parse_key(argv[1], &op, &a) == 0 &&
	    cli_parse_num("VERSION", argv[2], &op.version) == 0;
	return cli_finish(cli, &op, &a, ok);
}

static int
cli_tas(struct cli *cli, int argc, char **argv)
{
	struct store_op	 op = { .type = STORE_OP_TESTANDSET };
	struct cli_args	 a = { NULL, NULL };
	int		 ok;

	op.timestamp = kvt_now_ms();
	ok = cli_parse_key(argv[1], &op, &a) == 0 &&
	    cli_parse_num("VERSION", argv[2], &op.version) == 0 &&
	    cli_parse_data(argv[3], &op, &a) == 0 &&
	    (argc < 5 || cli_parse_num("TIMESTAMP", argv[4],
	    &op.timestamp) == 0);
	return cli_finish(cli, &op, &a, ok);
}

/*
 * The one field of grpc.health.v1.HealthCheckResponse, status (1,
 * varint), read by hand: proto3 leaves it out when it is 0 (UNKNOWN).
 * Returns the status, or -1 if the bytes are not such a message.
 */
static int
cli_health_status(const uint8_t *p, size_t len)
{
	uint64_t	v, status = 0;
	size_t		i = 0;
	int		shift;

	while (i < len) {
		/* A tag, then a value of its wire type. */
		uint64_t	tag = 0;

		for (shift = 0; i < len && shift < 64; shift += 7) {
			tag |= (uint64_t)(p[i] & 0x7f) << shift;
			if ((p[i++] & 0x80) == 0)
				break;
		}
		switch (tag & 7) {
		case 0:
			v = 0;
			for (shift = 0; shift < 64; shift += 7) {
				if (i >= len)
					return -1;
				v |= (uint64_t)(p[i] & 0x7f) << shift;
				if ((p[i++] & 0x80) == 0)
					break;
			}
			if (tag >> 3 == 1)
				status = v;
			break;
		case 1:
			i += 8;
			break;
		case 2:
			v = 0;
			for (shift = 0; shift < 64; shift += 7) {
				if (i >= len)
					return -1;
				v |= (uint64_t)(p[i] & 0x7f) << shift;
				if ((p[i++] & 0x80) == 0)
					break;
			}
			if (v > len - i)
				return -1;
			i += (size_t)v;
			break;
		case 5:
			i += 4;
			break;
		default:
			return -1;
		}
		if (i > len)
			return -1;
	}
	return status > INT_MAX ? -1 : (int)status;
}

static int
cli_health(struct cli *cli, int argc, char **argv)
{
	static const char	*names[] = {
		"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"
	};
	struct cli_wait		 w;
	int			 rv, st;

	/* An empty HealthCheckRequest asks about the server as a whole. */
	rv = cli_rpc(cli, "/grpc.health.v1.Health/Check", NULL, 0,
	    KVC_RETRY_TRANSPORT, 0, &w);
	if (rv != 0) {
		cli_wait_free(&w);
		return rv;
	}
	st = cli_health_status(w.reply, w.len);
	cli_wait_free(&w);
	if (st == -1) {
		cli_err("the reply is not a HealthCheckResponse");
		return CLI_TRANSPORT;
	}
	if ((size_t)st < sizeof names / sizeof names[0])
		printf("health: %s\n", names[st]);
	else
		printf("health: %d\n", st);
	fflush(stdout);
	return st == 1 ? CLI_OK : CLI_STATUS;
}

/* A member or node id: decimal, 1 to 2^64-1 (Raft ids are not 0). */
static int
cli_parse_id(const char *s, uint64_t *out)
{
	unsigned long long	 v;
	char			*end;

	if (*s < '0' || *s > '9') {
		cli_err("bad ID '%s': a decimal number from 1", s);
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0) {
		cli_err("bad ID '%s': a decimal number from 1 to %" PRIu64, s,
		    UINT64_MAX);
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

/*
 * A member's address: HOST:PORT or [IPV6]:PORT, or with ipv4 set an IPv4
 * address and a port, as the Raft transport takes them (admin.proto).  A
 * Raft address the server cannot use would only show as a member add
 * that never completes, so it is refused here.
 */
static int
cli_parse_addr(const char *what, const char *s, int ipv4)
{
	struct in_addr	 in;
	char		*host, *port;
	int64_t		 p;
	int		 rv = -1;

	if (grpcc_split_addr(s, &host, &port) == -1) {
		cli_err("bad %s '%s': %s", what, s, ipv4 ? "IPV4:PORT" :
		    "HOST:PORT or [IPV6]:PORT");
		return -1;
	}
	if (kvt_parse_i64(port, &p) == -1 || p < 1 || p > 65535)
		cli_err("bad %s '%s': the port is 1 to 65535", what, s);
	else if (ipv4 && (s[0] == '[' || inet_pton(AF_INET, host, &in) != 1))
		cli_err("bad %s '%s': IPV4:PORT", what, s);
	else
		rv = 0;
	free(host);
	free(port);
	return rv;
}

/* "voter", as the proto's enum, in the case of the rest of the line. */
static const char *
cli_role_name(int role)
{
	switch (role) {
	case DSD__KVDB__V1__MEMBER__ROLE__VOTER:
		return "voter";
	case DSD__KVDB__V1__MEMBER__ROLE__STANDBY:
		return "standby";
	case DSD__KVDB__V1__MEMBER__ROLE__SPARE:
		return "spare";
	}
	return "unknown-role";
}

/* An empty string would shift the columns: "-" instead. */
static const char *
cli_col(const char *s)
{
	return s != NULL && *s != '\0' ? s : "-";
}

/* Print a MemberListReply, one member a line; the exit status. */
static int
cli_print_members(const struct cli_wait *w)
{
	Dsd__Kvdb__V1__MemberListReply	*m;
	const Dsd__Kvdb__V1__Member	*mb;
	size_t				 i;

	if ((m = dsd__kvdb__v1__member_list_reply__unpack(NULL, w->len,
	    w->reply)) == NULL) {
		cli_err("the reply is not a MemberListReply");
		return CLI_TRANSPORT;
	}
	for (i = 0; i < m->n_members; i++) {
		mb = m->members[i];
		printf("%" PRIu64 " %s %s %s%s\n", mb->id,
		    cli_col(mb->raft_address), cli_col(mb->client_address),
		    cli_role_name(mb->role), m->leader_id != 0 &&
		    mb->id == m->leader_id ? " leader" : "");
	}
	fflush(stdout);
	dsd__kvdb__v1__member_list_reply__free_unpacked(m, NULL);
	return CLI_OK;
}

static int
cli_member(struct cli *cli, int argc, char **argv)
{
	Dsd__Kvdb__V1__MemberListRequest	 list =
	    DSD__KVDB__V1__MEMBER_LIST_REQUEST__INIT;
	Dsd__Kvdb__V1__MemberAddRequest		 add =
	    DSD__KVDB__V1__MEMBER_ADD_REQUEST__INIT;
	Dsd__Kvdb__V1__MemberRemoveRequest	 rm =
	    DSD__KVDB__V1__MEMBER_REMOVE_REQUEST__INIT;
	ProtobufCMessage			*m;
	struct cli_wait				 w;
	enum kvc_policy				 policy;
	const char				*path;
	uint8_t					*req;
	size_t					 len;
	int					 rv;

	/*
	 * A list is read-only and retried like a KV call.  An add or a
	 * remove cut after it was sent may have been carried out, and doing
	 * it again is not the same, so only UNAVAILABLE (certainly not
	 * applied) is retried; the operator looks with member list.
	 */
	if (strcmp(argv[1], "list") == 0 && argc == 2) {
		m = &list.base;
		path = "/dsd.kvdb.v1.Admin/MemberList";
		policy = KVC_RETRY_TRANSPORT;
	} else if (strcmp(argv[1], "add") == 0 && argc == 5) {
		if (cli_parse_id(argv[2], &add.id) == -1 ||
		    cli_parse_addr("RAFTADDR", argv[3], 1) == -1 ||
		    cli_parse_addr("CLIENTADDR", argv[4], 0) == -1)
			return CLI_USAGE;
		/* protobuf-c wants non-const strings; it only reads them. */
		add.raft_address = argv[3];
		add.client_address = argv[4];
		m = &add.base;
		path = "/dsd.kvdb.v1.Admin/MemberAdd";
		policy = KVC_RETRY_UNSENT;
	} else if (strcmp(argv[1], "remove") == 0 && argc == 3) {
		if (cli_parse_id(argv[2], &rm.id) == -1)
			return CLI_USAGE;
		m = &rm.base;
		path = "/dsd.kvdb.v1.Admin/MemberRemove";
		policy = KVC_RETRY_UNSENT;
	} else {
		fflush(stdout);
		fprintf(stderr, "usage: member list\n"
		    "       member add ID RAFTADDR CLIENTADDR\n"
		    "       member remove ID\n");
		return CLI_USAGE;
	}
	len = protobuf_c_message_get_packed_size(m);
	/* An empty message packs to nothing; malloc(0) may be NULL. */
	if ((req = malloc(len + 1)) == NULL) {
		cli_err("out of memory");
		return CLI_TRANSPORT;
	}
	protobuf_c_message_pack(m, req);
	rv = cli_rpc(cli, path, req, len, policy, 0, &w);
	free(req);
	if (rv == 0)
		rv = cli_print_members(&w);
	cli_wait_free(&w);
	return rv;
}

static int
cli_status(struct cli *cli, int argc, char **argv)
{
	Dsd__Kvdb__V1__StatusRequest	 sr =
	    DSD__KVDB__V1__STATUS_REQUEST__INIT;
	Dsd__Kvdb__V1__StatusReply	*m;
	struct cli_wait			 w;
	uint8_t				 req[8];
	size_t				 len;
	int				 rv;

	if (argc == 2 && strcmp(argv[1], "--digest") == 0)
		sr.digest = 1;
	else if (argc != 1) {
		fflush(stdout);
		fprintf(stderr, "usage: status [--digest]\n");
		return CLI_USAGE;
	}
	/* One bool field packs to 2 bytes at most. */
	len = protobuf_c_message_pack(&sr.base, req);
	rv = cli_rpc(cli, "/dsd.kvdb.v1.Admin/Status", req, len,
	    KVC_RETRY_TRANSPORT, 0, &w);
	if (rv != 0) {
		cli_wait_free(&w);
		return rv;
	}
	if ((m = dsd__kvdb__v1__status_reply__unpack(NULL, w.len,
	    w.reply)) == NULL) {
		cli_err("the reply is not a StatusReply");
		cli_wait_free(&w);
		return CLI_TRANSPORT;
	}
	printf("id: %" PRIu64 "\n", m->id);
	printf("state: %s\n", cli_col(m->state));
	printf("leader_id: %" PRIu64 "\n", m->leader_id);
	printf("term: %" PRIu64 "\n", m->term);
	printf("commit_index: %" PRIu64 "\n", m->commit_index);
	printf("applied_index: %" PRIu64 "\n", m->applied_index);
	printf("last_index: %" PRIu64 "\n", m->last_index);
	printf("keys: %" PRIu64 "\n", m->keys);
	printf("sessions: %" PRIu64 "\n", m->sessions);
	printf("raft_address: %s\n", cli_col(m->raft_address));
	printf("client_address: %s\n", cli_col(m->client_address));
	if (m->has_digest)
		printf("digest: %016" PRIx64 "\n", m->digest);
	fflush(stdout);
	dsd__kvdb__v1__status_reply__free_unpacked(m, NULL);
	cli_wait_free(&w);
	return CLI_OK;
}

/* The addresses, timeouts and TLS of -a, -t and the TLS options, for
 * the commands that make their own connections. */
static void
cli_kvc_config(const struct cli *cli, struct kvc_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->addrs = cli->addrs;
	cfg->naddrs = cli->naddrs;
	cfg->timeout_ms = cli->timeout_ms;
	cfg->retry_ms = cli->retry_ms;
	cfg->tls = cli->tls;
	cfg->server_name = cli->tlsopt.server_name;
}

static int
cli_check(struct cli *cli, int argc, char **argv)
{
	struct kvc_config	cfg;

	/* The batteries keep their own connections and sessions. */
	cli_kvc_config(cli, &cfg);
	return check_run(cli->base, &cfg, cli->addr, argc, argv);
}

static int
cli_snapshot(struct cli *cli, int argc, char **argv)
{
	struct kvc_config	cfg;

	cli_kvc_config(cli, &cfg);
	return snapshot_run(cli->base, &cfg, argc, argv);
}

static void
cli_usage_line(FILE *f, const struct cli_cmd *c)
{
	fprintf(f, "  %s%s%s\n", c->name, c->args[0] != '\0' ? " " : "",
	    c->args);
}

static int
cli_help(struct cli *cli, int argc, char **argv)
{
	const struct cli_cmd	*c;

	for (c = cli_cmds; c->name != NULL; c++) {
		if (c->help == NULL || (argc > 1 &&
		    strcmp(argv[1], c->name) != 0))
			continue;
		cli_usage_line(stdout, c);
		printf("      %s\n", c->help);
	}
	printf("KEY is a decimal or 0x-hex integer, maybe negative: 42, "
	    "-7, 0xff, -0x80.\n"
	    "DATA is text; x:HEX for bytes in hex; @FILE for a file's "
	    "bytes;\n"
	    "t:TEXT for text that starts with x:, t: or @.\n"
	    "TIMESTAMP is in milliseconds since the epoch (default: now).\n");
	if (cli->interactive)
		printf("Quote arguments with spaces: set 1 \"two words\".\n");
	fflush(stdout);
	return CLI_OK;
}

static int
cli_quit(struct cli *cli, int argc, char **argv)
{
	return CLI_QUIT;
}

/* Run a command line split into words; its exit status. */
static int
cli_run(struct cli *cli, int argc, char **argv)
{
	const struct cli_cmd	*c;

	for (c = cli_cmds; c->name != NULL; c++)
		if (strcmp(c->name, argv[0]) == 0)
			break;
	if (c->name == NULL) {
		cli_err("unknown command '%s'; try help", argv[0]);
		return CLI_USAGE;
	}
	if (argc - 1 < c->min || (c->max != -1 && argc - 1 > c->max)) {
		fflush(stdout);
		fprintf(stderr, "usage:");
		cli_usage_line(stderr, c);
		return CLI_USAGE;
	}
	return c->fn(cli, argc, argv);
}

static char *
cli_prompt(EditLine *el)
{
	struct cli	*cli;

	el_get(el, EL_CLIENTDATA, &cli);
	return cli->prompt;
}

/* Split a line with the shell's quoting rules and run it. */
static int
cli_line(struct cli *cli, Tokenizer *tok, const char *line)
{
	const char	**argv;
	int		  argc, rv;

	tok_reset(tok);
	rv = tok_str(tok, line, &argc, &argv);
	if (rv > 0) {
		cli_err("unmatched quote or trailing backslash");
		return CLI_USAGE;
	}
	if (rv < 0) {
		cli_err("cannot split the line: out of memory");
		return CLI_USAGE;
	}
	if (argc == 0)
		return CLI_OK;
	/* libedit hands out const words; the commands only read them. */
	return cli_run(cli, argc, (char **)(uintptr_t)argv);
}

/*
 * The prompt.  From a terminal, libedit edits the line and keeps history
 * in $HOME; otherwise lines are read as they come (a script or a pipe),
 * without a prompt.
 */
static int
cli_interactive(struct cli *cli)
{
	EditLine	*el = NULL;
	History		*hist = NULL;
	HistEvent	 ev;
	Tokenizer	*tok;
	const char	*line, *home;
	char		*histfile = NULL, *buf = NULL;
	size_t		 bufsize = 0;
	ssize_t		 n;
	int		 count, tty = isatty(STDIN_FILENO);

	cli->interactive = 1;
	if ((tok = tok_init(NULL)) == NULL) {
		cli_err("out of memory");
		return 1;
	}
	if (tty) {
		if (asprintf(&cli->prompt, "%s> ", cli->addr) == -1 ||
		    (hist = history_init()) == NULL ||
		    (el = el_init("dsd-cli", stdin, stdout, stderr)) == NULL) {
			cli_err("cannot set up line editing");
			tok_end(tok);
			if (hist != NULL)
				history_end(hist);
			return 1;
		}
		history(hist, &ev, H_SETSIZE, CLI_HISTSIZE);
		history(hist, &ev, H_SETUNIQUE, 1);
		if ((home = getenv("HOME")) != NULL && *home != '\0' &&
		    asprintf(&histfile, "%s/%s", home, CLI_HISTORY) != -1)
			history(hist, &ev, H_LOAD, histfile);
		el_set(el, EL_CLIENTDATA, cli);
		el_set(el, EL_PROMPT, cli_prompt);
		el_set(el, EL_EDITOR, "emacs");
		el_set(el, EL_HIST, history, hist);
		el_set(el, EL_SIGNAL, 1);
		el_source(el, NULL);
	}
	for (;;) {
		if (tty) {
			if ((line = el_gets(el, &count)) == NULL ||
			    count <= 0)
				break;
		} else {
			if ((n = getline(&buf, &bufsize, stdin)) == -1)
				break;
			line = buf;
		}
		if (tty && line[strspn(line, " \t\n")] != '\0') {
			history(hist, &ev, H_ENTER, line);
			/* Saved as it goes: ^C ends the program. */
			if (histfile != NULL)
				history(hist, &ev, H_SAVE, histfile);
		}
		if (cli_line(cli, tok, line) == CLI_QUIT)
			break;
	}
	if (tty) {
		el_end(el);
		history_end(hist);
	}
	tok_end(tok);
	free(histfile);
	free(buf);
	return 0;
}

#define CLI_USAGE_LINE	"usage: dsd-cli [-a addr:port[,addr:port...]] " \
	"[-t timeout-ms] [--retry-time=ms]\n" \
	"               " KVT_TLS_USAGE "\n" \
	"               [command [argument ...]]\n"

static void __attribute__((noreturn))
cli_usage(void)
{
	fprintf(stderr, CLI_USAGE_LINE
	    "commands: get set del delv tas health member status check "
	    "snapshot help quit (dsd-cli help)\n");
	exit(CLI_USAGE);
}

int
main(int argc, char **argv)
{
	enum { O_RETRY = 256, O_TLS };
	static const struct option	 longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "retry-time", required_argument, NULL, O_RETRY },
		KVT_TLS_LONGOPTS(O_TLS),
		{ NULL, 0, NULL, 0 }
	};
	struct cli			 cli;
	const char			*err;
	int64_t				 v;
	int				 ch, rv;

	memset(&cli, 0, sizeof cli);
	cli.addr = KVT_DEFAULT_ADDR;
	cli.timeout_ms = 5000;
	cli.retry_ms = KVC_DEFAULT_RETRY_MS;
	/* "+": options stop at the command, whose arguments may be -5. */
	while ((ch = getopt_long(argc, argv, "+a:t:h", longopts,
	    NULL)) != -1) {
		if (kvt_tls_option(&cli.tlsopt, O_TLS, ch, optarg))
			continue;
		switch (ch) {
		case 'a':
			cli.addr = optarg;
			break;
		case 't':
			if (kvt_parse_i64(optarg, &v) == -1 || v < 1 ||
			    v > INT_MAX) {
				cli_err("-t takes milliseconds, 1 to %d",
				    INT_MAX);
				return CLI_USAGE;
			}
			cli.timeout_ms = (int)v;
			break;
		case O_RETRY:
			if (kvt_parse_i64(optarg, &v) == -1 || v < 0 ||
			    v > INT_MAX) {
				cli_err("--retry-time takes milliseconds, 0 "
				    "to %d", INT_MAX);
				return CLI_USAGE;
			}
			cli.retry_ms = (int)v;
			break;
		case 'h':
			printf(CLI_USAGE_LINE);
			cli_help(&cli, 1, argv);
			return CLI_OK;
		case 'V':
			printf("dsd-cli %s\n", PACKAGE_VERSION);
			return CLI_OK;
		default:
			cli_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if ((cli.addrs = kvc_addrs_parse(cli.addr, &cli.naddrs,
	    &err)) == NULL) {
		cli_err("-a takes host:port or [ipv6]:port, or several "
		    "separated by commas, not '%s': %s", cli.addr, err);
		return CLI_USAGE;
	}
	if (cli.tlsopt.on && (cli.tls = kvt_tls_ctx(&cli.tlsopt,
	    "dsd-cli")) == NULL) {
		kvc_addrs_free(cli.addrs);
		return CLI_USAGE;
	}
	if (kvc_lanes_init(&cli.lane, 1) == -1) {
		cli_err("getrandom: %s", strerror(errno));
		kvc_addrs_free(cli.addrs);
		SSL_CTX_free(cli.tls);
		return CLI_TRANSPORT;
	}

	/* A server gone mid-write shows as EPIPE, handled where it occurs. */
	signal(SIGPIPE, SIG_IGN);
	if ((cli.base = event_base_new()) == NULL) {
		cli_err("cannot create an event loop");
		return CLI_TRANSPORT;
	}
	if (argc == 0)
		rv = cli_interactive(&cli);
	else {
		rv = cli_run(&cli, argc, argv);
		if (rv == CLI_QUIT)
			rv = CLI_OK;
	}
	kvc_pool_free(cli.pool);
	event_base_free(cli.base);
	kvc_addrs_free(cli.addrs);
	SSL_CTX_free(cli.tls);
	free(cli.prompt);
	return rv;
}
