/*
 * What dsd-cli and dsd-bench share about the kvdb API (src/kv/kvdb.proto):
 * parsing keys and data as a person types them, packing requests,
 * printing replies.  A request is described by a struct store_op, the
 * store's own description of an operation (src/kv/store.h), so the numbers
 * of the operations are the store's.
 */
#ifndef DSD_KVTOOL_H
#define DSD_KVTOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <gmp.h>
#include <jansson.h>

#include "kv/store.h"

/* gRPC status codes the tools name (gRPC's doc/statuscodes.md). */
#define KVT_GRPC_OK		0
#define KVT_GRPC_UNKNOWN	2
#define KVT_GRPC_DEADLINE	4
#define KVT_GRPC_UNAVAILABLE	14

/* The default address of a kvdb server: its default port. */
#define KVT_DEFAULT_ADDR	"127.0.0.1:7379"

/* "SUCCESS", "ERROR_NE"...; NULL for a number outside the enum. */
const char	*kvt_status_name(int status);
/* "OK", "UNAVAILABLE"...; "UNKNOWN_CODE" past the table. */
const char	*kvt_grpc_code_name(int code);
/* "/dsd.kvdb.v1.KV/Set"...; NULL for an unknown type. */
const char	*kvt_op_path(enum store_op_type);
/* "set", "get", "del", "delv", "tas". */
const char	*kvt_op_name(enum store_op_type);

/*
 * Parse a key: decimal ("-12", "0042") or hexadecimal after 0x ("0xff",
 * "-0x1F"), with nothing else around it.  The text is checked here before
 * GMP sees it, because mpz_set_str() would take "12 34" as 1234.  Sets
 * out (initialised by the caller); returns 0, or -1 with *err set to a
 * static message.
 */
int		 kvt_key_parse_mpz(const char *, mpz_t out, const char **err);
/* The same, to the wire form (minimal two's complement), malloc'ed. */
int		 kvt_key_parse(const char *, uint8_t **key, size_t *len,
		    const char **err);
/* A key's wire form as a decimal string, malloc'ed; NULL if memory ran
 * out. */
char		*kvt_key_decimal(const uint8_t *key, size_t len);
/* The wire form of a key number into buf; as store_key_from_mpz(). */
size_t		 kvt_key_bytes(const mpz_t, uint8_t *buf, size_t buflen);

/*
 * Parse DATA: "x:HEX" is hex bytes, "@FILE" a file's bytes, "t:TEXT" the
 * text after "t:" (so that text starting with "x:", "@" or "t:" can be
 * written), anything else the text itself.  Returns 0 with *data
 * malloc'ed (possibly empty), or -1 with *err malloc'ed (it may name the
 * file and errno).
 */
int		 kvt_data_parse(const char *, uint8_t **data, size_t *len,
		    char **err);
/*
 * Format data in the form kvt_data_parse() reads back: the text itself
 * when it is printable UTF-8 and has no prefix of its own, "t:" and the
 * text when it starts with one, "x:" and hex otherwise.  NULL if memory
 * ran out.
 */
char		*kvt_data_format(const uint8_t *, size_t);
/* Whether the bytes are UTF-8 with no control characters. */
int		 kvt_printable(const uint8_t *, size_t);
/* Whether the bytes are UTF-8, strictly: no overlong forms, surrogates or
 * code points past U+10FFFF (RFC 3629); any character allowed. */
int		 kvt_utf8_valid(const uint8_t *, size_t);

/* A whole decimal int64 ("-5"; no sign '+', no spaces); 0 or -1. */
int		 kvt_parse_i64(const char *, int64_t *);
/* Milliseconds since the epoch, now. */
int64_t		 kvt_now_ms(void);
/* "2024-11-22T05:20:00.123Z" into buf; "out of range" if gmtime fails. */
void		 kvt_format_time(int64_t ms, char *buf, size_t len);

/* Pack the request of an operation, malloc'ed; NULL if memory ran out. */
uint8_t		*kvt_op_pack(const struct store_op *, size_t *len);

/*
 * A decoded Reply.  data points into the unpacked message, which
 * kvt_reply_free() releases.
 */
struct kvt_reply {
	int		 status;		/* kvdb Status */
	int		 has_value;
	int64_t		 version;
	int64_t		 timestamp;
	const uint8_t	*data;
	size_t		 datalen;
	void		*msg;			/* the unpacked Reply */
};

/* Decode a Reply; 0, or -1 if it is not one. */
int		 kvt_reply_decode(const uint8_t *, size_t, struct kvt_reply *);
void		 kvt_reply_free(struct kvt_reply *);
/* Print a reply in the tools' readable form (dsd-cli(1), OUTPUT). */
void		 kvt_reply_print(FILE *, const struct kvt_reply *);
/*
 * Add a reply's value to a JSON object: "version", "timestamp" (integers),
 * "data_base64", and "data", the text, only when the bytes are UTF-8;
 * nothing for a reply without a value.  0, or -1 if memory ran out.
 */
int		 kvt_reply_json(json_t *, const struct kvt_reply *);

/*
 * TLS, as dsd-cli and dsd-bench take it: --tls-ca=FILE verifies the
 * server against that CA (without it, the system's store), --tls-cert and
 * --tls-key present a client certificate (mutual TLS), --tls-server-name
 * is the name the server's certificate must carry (default: the host of
 * -a).  Any of them turns TLS on.  KVT_TLS_LONGOPTS(first) declares them
 * with getopt values first to first + 3; kvt_tls_option() takes one
 * (returns 1 if ch was one of them).
 */
struct kvt_tls {
	const char	*ca, *cert, *key, *server_name;
	int		 on;
};
#define KVT_TLS_LONGOPTS(first)						\
	{ "tls-ca", required_argument, NULL, (first) },			\
	{ "tls-cert", required_argument, NULL, (first) + 1 },		\
	{ "tls-key", required_argument, NULL, (first) + 2 },		\
	{ "tls-server-name", required_argument, NULL, (first) + 3 }
#define KVT_TLS_USAGE	"[--tls-ca file] [--tls-cert file --tls-key file] " \
	"[--tls-server-name name]"
/* Their lines in the tools' --help, in its "  --name=VALUE  what" form. */
#define KVT_TLS_HELP							\
	"  --tls-ca=FILE          speak TLS; the CA (PEM) the server's "	\
	"certificate must\n"						\
	"                         chain to (default: the system's store)\n" \
	"  --tls-cert=FILE        a client certificate (PEM), for mutual "	\
	"TLS\n"								\
	"  --tls-key=FILE         its private key\n"			\
	"  --tls-server-name=NAME the name the certificate must carry "	\
	"(default: the host)\n"
int		 kvt_tls_option(struct kvt_tls *, int first, int ch,
		    const char *arg);
/* The client context, or NULL: with tls->on, after printing why on
 * stderr (prog: ...); without, because TLS is off. */
struct ssl_ctx_st *kvt_tls_ctx(const struct kvt_tls *, const char *prog);

#endif
