/*
 * dsd-cli: the command-line client of dsd's kvdb mode, single-node or
 * replicated.  One-shot commands for scripts, an interactive prompt
 * (libedit: line editing, history, quoting) for people, "check", the
 * API's test batteries, and the replicated database's administration
 * (member, status).  Commands are a table, as tmux's are; dsd-cli(1)
 * documents each one.  Calls go through kvcall.h: one session (client id
 * and seq) for the whole run, several addresses, retries of the calls the
 * transport left undecided.  Every command reports through cliout.h, as
 * text or as one JSON line, with the exit statuses listed there.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "check.h"
#include "cliout.h"
#include "kv/admin.pb-c.h"
#include "net/grpc_client.h"
#include "kvcall.h"
#include "kvtool.h"

/* Not an exit status (cliout.h has those): leave the prompt. */
#define CLI_QUIT	-1

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
	{ "help", 0, 1, "[COMMAND]", "describe the commands", cli_help },
	{ "quit", 0, 0, "", "leave the prompt (so do exit and end of "
	    "input)", cli_quit },
	{ "exit", 0, 0, NULL, NULL, cli_quit },
	{ NULL, 0, 0, NULL, NULL, NULL }
};

/* Said at the prompt only: a one-shot command reports its outcome. */
static void
cli_note(void *arg, const char *msg)
{
	struct cli	*cli = arg;

	if (cli->interactive)
		cliout_note("%s", msg);
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
		cliout_fail(CLI_TRANSPORT, "INTERNAL", "%s", err);
		return -1;
	}
	return 0;
}

/*
 * Say why a call got no reply, with the retries it took, under the gRPC
 * status of its last attempt; the exit status.
 */
static int
cli_report(const char *path, const struct cli_wait *w)
{
	const char	*msg = w->message != NULL ? w->message : "";
	const char	*code = kvt_grpc_code_name(w->status);
	char		 tail[80] = "";

	if (w->status == -1)
		return cliout_fail(CLI_TRANSPORT, "INTERNAL",
		    "out of memory keeping the reply");
	if (w->attempts > 1)
		snprintf(tail, sizeof tail, " (%d attempts in %lld ms)",
		    w->attempts, (long long)w->elapsed_ms);
	if (w->never_up)
		return cliout_fail(CLI_TRANSPORT, code,
		    "cannot connect to %s: %s%s", w->addr, msg, tail);
	if (w->conn_failed)
		return cliout_fail(CLI_TRANSPORT, code,
		    "connection to %s lost: %s%s", w->addr, msg, tail);
	return cliout_fail(CLI_TRANSPORT, code, "%s: %s%s%s%s", path, code,
	    msg[0] != '\0' ? ": " : "", msg, tail);
}

/*
 * Make one call and wait for it, retried as the policy says; a KV call
 * carries the session.  Returns 0 with the reply in w, or CLI_TRANSPORT
 * after reporting why there is none.
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
	    len, policy, cli_done, w) == -1)
		return cliout_fail(CLI_TRANSPORT, "INTERNAL",
		    "cannot start a call: out of memory");
	while (!w->done)
		if (event_base_loop(cli->base, EVLOOP_ONCE) == -1)
			break;
	if (w->done && w->status == 0)
		return 0;
	if (!w->done)
		return cliout_fail(CLI_TRANSPORT, "INTERNAL",
		    "the event loop failed");
	return cli_report(path, w);
}

static void
cli_wait_free(struct cli_wait *w)
{
	free(w->message);
	free(w->reply);
}

/*
 * A status by its name, or for a number this program does not know,
 * "UNKNOWN_STATUS" with the number beside it as "status_code".
 */
static json_t *
cli_status_object(const char *name, int status)
{
	json_t	*o;

	if (name != NULL)
		return cliout_object(name);
	if ((o = cliout_object("UNKNOWN_STATUS")) != NULL &&
	    json_object_set_new(o, "status_code", json_integer(status)) ==
	    -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Send a kvdb operation and print its reply; the exit status. */
static int
cli_op(struct cli *cli, const struct store_op *op)
{
	struct cli_wait		 w;
	struct kvt_reply	 r;
	json_t			*o;
	uint8_t			*req;
	size_t			 len;
	int			 rv;

	if ((req = kvt_op_pack(op, &len)) == NULL)
		return cliout_fail(CLI_TRANSPORT, "INTERNAL",
		    "out of memory");
	rv = cli_rpc(cli, kvt_op_path(op->type), req, len,
	    KVC_RETRY_TRANSPORT, 1, &w);
	free(req);
	if (rv != 0) {
		cli_wait_free(&w);
		return rv;
	}
	if (kvt_reply_decode(w.reply, w.len, &r) == -1) {
		cli_wait_free(&w);
		return cliout_fail(CLI_TRANSPORT, "INTERNAL",
		    "the server's reply is not a kvdb Reply");
	}
	rv = cliout_kvdb_exit(r.status);
	if (cliout_json()) {
		o = cli_status_object(kvt_status_name(r.status), r.status);
		if (o != NULL && kvt_reply_json(o, &r) == -1) {
			json_decref(o);
			o = NULL;
		}
		rv = cliout_emit(o, rv);
	} else {
		kvt_reply_print(stdout, &r);
		fflush(stdout);
	}
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
	char		*dec;

	if (kvt_key_parse(s, &a->key, &op->keylen, &err) == -1) {
		cliout_fail(CLI_USAGE, "USAGE", "bad KEY '%s': %s", s, err);
		return -1;
	}
	op->key = a->key;
	/* Decimal whatever form was typed, so scripts compare strings. */
	if (cliout_json()) {
		dec = kvt_key_decimal(a->key, op->keylen);
		cliout_context("key", dec != NULL ? json_string(dec) : NULL);
		free(dec);
	}
	return 0;
}

static int
cli_parse_data(const char *s, struct store_op *op, struct cli_args *a)
{
	char	*err;

	if (kvt_data_parse(s, &a->data, &op->datalen, &err) == -1) {
		cliout_fail(CLI_USAGE, "USAGE", "bad DATA: %s",
		    err != NULL ? err : "out of memory");
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
		cliout_fail(CLI_USAGE, "USAGE", "bad %s '%s': a decimal "
		    "64-bit integer", what, s);
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
	const char		*name = NULL;
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
	if (st == -1)
		return cliout_fail(CLI_TRANSPORT, "INTERNAL",
		    "the reply is not a HealthCheckResponse");
	rv = st == 1 ? CLI_OK : CLI_ERROR;
	if ((size_t)st < sizeof names / sizeof names[0])
		name = names[st];
	if (cliout_json())
		return cliout_emit(cli_status_object(name, st), rv);
	if (name != NULL)
		printf("health: %s\n", name);
	else
		printf("health: %d\n", st);
	fflush(stdout);
	return rv;
}

/* A member or node id: decimal, 1 to 2^64-1 (Raft ids are not 0). */
static int
cli_parse_id(const char *s, uint64_t *out)
{
	unsigned long long	 v;
	char			*end;

	if (*s < '0' || *s > '9') {
		cliout_fail(CLI_USAGE, "USAGE", "bad ID '%s': a decimal number "
		    "from 1", s);
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0) {
		cliout_fail(CLI_USAGE, "USAGE", "bad ID '%s': a decimal number "
		    "from 1 to %" PRIu64, s, UINT64_MAX);
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
		cliout_fail(CLI_USAGE, "USAGE", "bad %s '%s': %s", what, s,
		    ipv4 ? "IPV4:PORT" : "HOST:PORT or [IPV6]:PORT");
		return -1;
	}
	if (kvt_parse_i64(port, &p) == -1 || p < 1 || p > 65535)
		cliout_fail(CLI_USAGE, "USAGE", "bad %s '%s': the port is 1 "
		    "to 65535", what, s);
	else if (ipv4 && (s[0] == '[' || inet_pton(AF_INET, host, &in) != 1))
		cliout_fail(CLI_USAGE, "USAGE", "bad %s '%s': IPV4:PORT", what,
		    s);
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

/*
 * A Raft id or counter for JSON: an integer, or past what a JSON integer
 * holds here (2^63-1), the decimal digits as a string.
 */
static json_t *
cli_json_u64(uint64_t v)
{
	char	buf[24];

	if (v <= INT64_MAX)
		return json_integer((json_int_t)v);
	snprintf(buf, sizeof buf, "%" PRIu64, v);
	return json_string(buf);
}

/* The JSON form of a MemberListReply: the leader's id, the members. */
static int
cli_members_json(const Dsd__Kvdb__V1__MemberListReply *m)
{
	const Dsd__Kvdb__V1__Member	*mb;
	json_t				*o, *list;
	size_t				 i;

	/* o takes list, which lives on in it; on failure both go. */
	list = json_array();
	o = cliout_object("OK");
	if (json_object_update_new(o, json_pack("{s:o, s:o}", "leader_id",
	    cli_json_u64(m->leader_id), "members", list)) == -1) {
		json_decref(o);
		return cliout_emit(NULL, CLI_OK);
	}
	for (i = 0; i < m->n_members; i++) {
		mb = m->members[i];
		if (json_array_append_new(list, json_pack("{s:o, s:s, s:s, "
		    "s:s, s:b}", "id", cli_json_u64(mb->id), "raft_address",
		    mb->raft_address != NULL ? mb->raft_address : "",
		    "client_address", mb->client_address != NULL ?
		    mb->client_address : "", "role", cli_role_name(mb->role),
		    "leader", m->leader_id != 0 && mb->id == m->leader_id)) ==
		    -1) {
			json_decref(o);
			return cliout_emit(NULL, CLI_OK);
		}
	}
	return cliout_emit(o, CLI_OK);
}

/* Print a MemberListReply, one member a line; the exit status. */
static int
cli_print_members(const struct cli_wait *w)
{
	Dsd__Kvdb__V1__MemberListReply	*m;
	const Dsd__Kvdb__V1__Member	*mb;
	size_t				 i;
	int				 rv = CLI_OK;

	if ((m = dsd__kvdb__v1__member_list_reply__unpack(NULL, w->len,
	    w->reply)) == NULL)
		return cliout_fail(CLI_TRANSPORT, "INTERNAL",
		    "the reply is not a MemberListReply");
	if (cliout_json()) {
		rv = cli_members_json(m);
		dsd__kvdb__v1__member_list_reply__free_unpacked(m, NULL);
		return rv;
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
	return rv;
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
	cliout_context("action", json_string(argv[1]));
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
	} else
		return cliout_usage("usage: member list\n"
		    "       member add ID RAFTADDR CLIENTADDR\n"
		    "       member remove ID");
	len = protobuf_c_message_get_packed_size(m);
	/* An empty message packs to nothing; malloc(0) may be NULL. */
	if ((req = malloc(len + 1)) == NULL)
		return cliout_fail(CLI_TRANSPORT, "INTERNAL",
		    "out of memory");
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
	json_t				*f, *o, *v;
	const char			*name;
	char				 digest[17];
	uint8_t				 req[8];
	size_t				 len;
	int				 rv;

	if (argc == 2 && strcmp(argv[1], "--digest") == 0)
		sr.digest = 1;
	else if (argc != 1)
		return cliout_usage("usage: status [--digest]");
	/* One bool field packs to 2 bytes at most. */
	len = protobuf_c_message_pack(&sr.base, req);
	rv = cli_rpc(cli, "/dsd.kvdb.v1.Admin/Status", req, len,
	    KVC_RETRY_TRANSPORT, 0, &w);
	if (rv != 0) {
		cli_wait_free(&w);
		return rv;
	}
	m = dsd__kvdb__v1__status_reply__unpack(NULL, w.len, w.reply);
	cli_wait_free(&w);
	if (m == NULL)
		return cliout_fail(CLI_TRANSPORT, "INTERNAL",
		    "the reply is not a StatusReply");
	snprintf(digest, sizeof digest, "%016" PRIx64, m->digest);
	/* One list of the fields, in their order, for both formats. */
	f = json_pack("{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s, "
	    "s:s, s:s*}", "id", cli_json_u64(m->id), "state",
	    m->state != NULL ? m->state : "", "leader_id",
	    cli_json_u64(m->leader_id), "term", cli_json_u64(m->term),
	    "commit_index", cli_json_u64(m->commit_index), "applied_index",
	    cli_json_u64(m->applied_index), "last_index",
	    cli_json_u64(m->last_index), "keys", cli_json_u64(m->keys),
	    "sessions", cli_json_u64(m->sessions), "raft_address",
	    m->raft_address != NULL ? m->raft_address : "", "client_address",
	    m->client_address != NULL ? m->client_address : "", "digest",
	    m->has_digest ? digest : NULL);
	dsd__kvdb__v1__status_reply__free_unpacked(m, NULL);
	if (cliout_json()) {
		/* Takes f, whatever happens. */
		o = cliout_object("OK");
		if (json_object_update_new(o, f) == -1) {
			json_decref(o);
			o = NULL;
		}
		return cliout_emit(o, CLI_OK);
	}
	if (f == NULL)
		return cliout_fail(CLI_TRANSPORT, "INTERNAL", "cannot hold the "
		    "reply: out of memory, or a string that is not UTF-8");
	json_object_foreach(f, name, v) {
		if (json_is_integer(v))
			printf("%s: %" JSON_INTEGER_FORMAT "\n", name,
			    json_integer_value(v));
		else
			printf("%s: %s\n", name, cli_col(json_string_value(v)));
	}
	fflush(stdout);
	json_decref(f);
	return CLI_OK;
}

static int
cli_check(struct cli *cli, int argc, char **argv)
{
	struct kvc_config	cfg;

	/* The batteries keep their own connections and sessions. */
	memset(&cfg, 0, sizeof cfg);
	cfg.addrs = cli->addrs;
	cfg.naddrs = cli->naddrs;
	cfg.timeout_ms = cli->timeout_ms;
	cfg.retry_ms = cli->retry_ms;
	cfg.tls = cli->tls;
	cfg.server_name = cli->tlsopt.server_name;
	return check_run(cli->base, &cfg, cli->addr, argc, argv);
}

/* The commands help describes: all, or the one named. */
static int
cli_help_skip(const struct cli_cmd *c, int argc, char **argv)
{
	return c->help == NULL || (argc > 1 && strcmp(argv[1], c->name) != 0);
}

/* The commands as JSON: name, arguments, description. */
static int
cli_help_json(int argc, char **argv)
{
	const struct cli_cmd	*c;
	json_t			*o, *list;

	if ((o = cliout_object("OK")) == NULL || (list = json_array()) ==
	    NULL || json_object_set_new(o, "commands", list) == -1) {
		json_decref(o);
		return cliout_emit(NULL, CLI_OK);
	}
	for (c = cli_cmds; c->name != NULL; c++)
		if (!cli_help_skip(c, argc, argv) &&
		    json_array_append_new(list, json_pack("{s:s, s:s, s:s}",
		    "name", c->name, "args", c->args, "help", c->help)) == -1) {
			json_decref(o);
			return cliout_emit(NULL, CLI_OK);
		}
	return cliout_emit(o, CLI_OK);
}

static int
cli_help(struct cli *cli, int argc, char **argv)
{
	const struct cli_cmd	*c;

	if (cliout_json())
		return cli_help_json(argc, argv);
	for (c = cli_cmds; c->name != NULL; c++) {
		if (cli_help_skip(c, argc, argv))
			continue;
		printf("  %s%s%s\n", c->name, c->args[0] != '\0' ? " " : "",
		    c->args);
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

	cliout_begin(argv[0]);
	for (c = cli_cmds; c->name != NULL; c++)
		if (strcmp(c->name, argv[0]) == 0)
			break;
	if (c->name == NULL)
		return cliout_fail(CLI_USAGE, "USAGE",
		    "unknown command '%s'; try help", argv[0]);
	if (argc - 1 < c->min || (c->max != -1 && argc - 1 > c->max))
		return cliout_usage("usage: %s%s%s", c->name,
		    c->args[0] != '\0' ? " " : "", c->args);
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
	if (rv != 0)
		cliout_begin(NULL);
	if (rv > 0)
		return cliout_fail(CLI_USAGE, "USAGE",
		    "unmatched quote or trailing backslash");
	if (rv < 0)
		return cliout_fail(CLI_USAGE, "USAGE",
		    "cannot split the line: out of memory");
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
		cliout_note("out of memory");
		return 1;
	}
	if (tty) {
		if (asprintf(&cli->prompt, "%s> ", cli->addr) == -1 ||
		    (hist = history_init()) == NULL ||
		    (el = el_init("dsd-cli", stdin, stdout, stderr)) == NULL) {
			cliout_note("cannot set up line editing");
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
	"               [-o text|json] " KVT_TLS_USAGE "\n" \
	"               [command [argument ...]]\n"

#define CLI_OPTIONS	"options:\n" \
	"  -a ADDR[,ADDR...]      the server, or the nodes of a cluster " \
	"(default " KVT_DEFAULT_ADDR ")\n" \
	"  -t MS                  deadline of a connection and of each " \
	"attempt (default 5000)\n" \
	"  --retry-time=MS        how long a call left undecided is " \
	"retried (default 10000)\n" \
	"  -o, --output=text|json replies as text, or as one JSON object " \
	"a line\n" \
	KVT_TLS_HELP \
	"  -h, --help             print this help and exit\n" \
	"  --version              print the version and exit\n" \
	"commands:\n"

/* cliout.h's table, for --help; dsd-cli(1) has it too. */
#define CLI_EXIT_TABLE	"exit status, the same with -o text and -o json:\n" \
	"  0  SUCCESS (health: SERVING; check: every test passed)\n" \
	"  1  ERROR (health: any other state; check: a test failed)\n" \
	"  2  usage error\n" \
	"  3  no kvdb reply: server unreachable, connection lost, " \
	"deadline passed,\n" \
	"     or a gRPC error status (the JSON \"status\" names it)\n" \
	"  4  ERROR_NE\n" \
	"  5  ERROR_WV\n"

static void __attribute__((noreturn))
cli_usage(void)
{
	const struct cli_cmd	*c;

	fprintf(stderr, CLI_USAGE_LINE "commands:");
	for (c = cli_cmds; c->name != NULL; c++)
		if (c->help != NULL)
			fprintf(stderr, " %s", c->name);
	fprintf(stderr, " (dsd-cli help)\n");
	exit(CLI_USAGE);
}

int
main(int argc, char **argv)
{
	enum { O_RETRY = 256, O_TLS };
	static const struct option	 longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "output", required_argument, NULL, 'o' },
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
	while ((ch = getopt_long(argc, argv, "+a:o:t:h", longopts,
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
				cliout_note("-t takes milliseconds, 1 to %d",
				    INT_MAX);
				return CLI_USAGE;
			}
			cli.timeout_ms = (int)v;
			break;
		case O_RETRY:
			if (kvt_parse_i64(optarg, &v) == -1 || v < 0 ||
			    v > INT_MAX) {
				cliout_note("--retry-time takes milliseconds, "
				    "0 to %d", INT_MAX);
				return CLI_USAGE;
			}
			cli.retry_ms = (int)v;
			break;
		case 'o':
			if (strcmp(optarg, "json") != 0 &&
			    strcmp(optarg, "text") != 0) {
				cliout_note("-o takes text or json");
				return CLI_USAGE;
			}
			cliout_init(strcmp(optarg, "json") == 0);
			break;
		case 'h':
			/* The text of help, whatever -o said. */
			cliout_init(0);
			printf(CLI_USAGE_LINE CLI_OPTIONS);
			cli_help(&cli, 1, argv);
			printf(CLI_EXIT_TABLE);
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
		cliout_note("-a takes host:port or [ipv6]:port, or several "
		    "separated by commas, not '%s': %s", cli.addr, err);
		return CLI_USAGE;
	}
	if (cli.tlsopt.on && (cli.tls = kvt_tls_ctx(&cli.tlsopt,
	    "dsd-cli")) == NULL) {
		kvc_addrs_free(cli.addrs);
		return CLI_USAGE;
	}
	if (kvc_lanes_init(&cli.lane, 1) == -1) {
		cliout_note("getrandom: %s", strerror(errno));
		kvc_addrs_free(cli.addrs);
		SSL_CTX_free(cli.tls);
		return CLI_TRANSPORT;
	}

	/* A server gone mid-write shows as EPIPE, handled where it occurs. */
	signal(SIGPIPE, SIG_IGN);
	if ((cli.base = event_base_new()) == NULL) {
		cliout_note("cannot create an event loop");
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
