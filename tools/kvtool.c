/* The kvdb API as the tools type and print it; see kvtool.h. */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/hex.h"
#include "kv/kvdb.pb-c.h"
#include "kvtool.h"
#include "net/tls.h"

const char *
kvt_status_name(int status)
{
	static const char	*names[] = {
		"SUCCESS", "ERROR", "ERROR_NE", "ERROR_WV"
	};

	if (status < 0 || (size_t)status >= sizeof names / sizeof names[0])
		return NULL;
	return names[status];
}

const char *
kvt_grpc_code_name(int code)
{
	static const char	*names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
		"DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
		"PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
		"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED"
	};

	if (code < 0 || (size_t)code >= sizeof names / sizeof names[0])
		return "UNKNOWN_CODE";
	return names[code];
}

const char *
kvt_op_path(enum store_op_type type)
{
	switch (type) {
	case STORE_OP_SET:
		return "/dsd.kvdb.v1.KV/Set";
	case STORE_OP_GET:
		return "/dsd.kvdb.v1.KV/Get";
	case STORE_OP_DEL:
		return "/dsd.kvdb.v1.KV/Del";
	case STORE_OP_DELVERSION:
		return "/dsd.kvdb.v1.KV/DelVersion";
	case STORE_OP_TESTANDSET:
		return "/dsd.kvdb.v1.KV/TestAndSet";
	}
	return NULL;
}

const char *
kvt_op_name(enum store_op_type type)
{
	switch (type) {
	case STORE_OP_SET:
		return "set";
	case STORE_OP_GET:
		return "get";
	case STORE_OP_DEL:
		return "del";
	case STORE_OP_DELVERSION:
		return "delv";
	case STORE_OP_TESTANDSET:
		return "tas";
	}
	return "?";
}

int
kvt_key_parse_mpz(const char *s, mpz_t out, const char **err)
{
	const char	*digits = s;
	int		 neg = 0, base = 10;
	size_t		 i;

	if (*digits == '-') {
		neg = 1;
		digits++;
	}
	if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
		base = 16;
		digits += 2;
	}
	if (*digits == '\0') {
		*err = "a key is a decimal or 0x-hex integer";
		return -1;
	}
	/* Only digits of the base: GMP would skip spaces, and take '+'. */
	for (i = 0; digits[i] != '\0'; i++) {
		if (base == 10 ? (digits[i] < '0' || digits[i] > '9') :
		    strchr("0123456789abcdefABCDEF", digits[i]) == NULL) {
			*err = base == 10 ? "a key is a decimal or 0x-hex "
			    "integer, with nothing else around it" :
			    "not a hex digit in the key";
			return -1;
		}
	}
	if (mpz_set_str(out, digits, base) != 0) {
		*err = "not a valid key";
		return -1;
	}
	if (neg)
		mpz_neg(out, out);
	return 0;
}

size_t
kvt_key_bytes(const mpz_t v, uint8_t *buf, size_t buflen)
{
	return store_key_from_mpz(v, buf, buflen);
}

int
kvt_key_parse(const char *s, uint8_t **key, size_t *len, const char **err)
{
	mpz_t	v;
	size_t	n;

	*key = NULL;
	*len = 0;
	mpz_init(v);
	if (kvt_key_parse_mpz(s, v, err) == -1) {
		mpz_clear(v);
		return -1;
	}
	n = store_key_from_mpz(v, NULL, 0);
	if ((*key = malloc(n)) == NULL) {
		mpz_clear(v);
		*err = "out of memory";
		return -1;
	}
	*len = store_key_from_mpz(v, *key, n);
	mpz_clear(v);
	return 0;
}

char *
kvt_key_decimal(const uint8_t *key, size_t len)
{
	mpz_t	 v;
	char	*s;

	mpz_init(v);
	store_key_to_mpz(v, key, len);
	/* Room for the digits, a sign and the NUL (gmp.h's rule). */
	if ((s = malloc(mpz_sizeinbase(v, 10) + 2)) != NULL)
		mpz_get_str(s, 10, v);
	mpz_clear(v);
	return s;
}

/* A whole file into memory, whatever its size or kind (a pipe too). */
static int
kvt_read_file(const char *path, uint8_t **data, size_t *len, char **err)
{
	uint8_t		*buf = NULL, *nbuf;
	size_t		 size = 0, have = 0;
	ssize_t		 n;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY)) == -1) {
		saved = errno;
		if (asprintf(err, "%s: %s", path, strerror(saved)) == -1)
			*err = NULL;
		return -1;
	}
	for (;;) {
		if (have == size) {
			size = size == 0 ? 65536 : size * 2;
			if (size > (size_t)STORE_DATA_MAX + 1 ||
			    (nbuf = realloc(buf, size)) == NULL) {
				if (asprintf(err, "%s: too large to load",
				    path) == -1)
					*err = NULL;
				goto fail;
			}
			buf = nbuf;
		}
		n = read(fd, buf + have, size - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			if (asprintf(err, "%s: %s", path,
			    strerror(saved)) == -1)
				*err = NULL;
			goto fail;
		}
		if (n == 0)
			break;
		have += (size_t)n;
	}
	close(fd);
	*data = buf;
	*len = have;
	return 0;
fail:
	close(fd);
	free(buf);
	return -1;
}

int
kvt_data_parse(const char *s, uint8_t **data, size_t *len, char **err)
{
	size_t	n, i;
	int	hi, lo;

	*data = NULL;
	*len = 0;
	*err = NULL;
	if (s[0] == '@')
		return kvt_read_file(s + 1, data, len, err);
	if (strncmp(s, "x:", 2) == 0) {
		s += 2;
		n = strlen(s);
		if (n % 2 != 0) {
			*err = strdup("x: needs an even number of hex digits");
			return -1;
		}
		/* malloc(0) may return NULL: keep one byte. */
		if ((*data = malloc(n / 2 + 1)) == NULL) {
			*err = strdup("out of memory");
			return -1;
		}
		for (i = 0; i < n; i += 2) {
			if ((hi = hex_digit(s[i])) == -1 ||
			    (lo = hex_digit(s[i + 1])) == -1) {
				free(*data);
				*data = NULL;
				*err = strdup("not a hex digit after x:");
				return -1;
			}
			(*data)[i / 2] = (uint8_t)(hi << 4 | lo);
		}
		*len = n / 2;
		return 0;
	}
	if (strncmp(s, "t:", 2) == 0)
		s += 2;
	n = strlen(s);
	if ((*data = malloc(n + 1)) == NULL) {
		*err = strdup("out of memory");
		return -1;
	}
	memcpy(*data, s, n);
	*len = n;
	return 0;
}

/*
 * Walk UTF-8 strictly: no overlong forms, no surrogates, nothing past
 * U+10FFFF, no truncated sequence.  With printable, control characters
 * (C0, DEL, C1) fail too.
 */
static int
kvt_utf8_scan(const uint8_t *p, size_t len, int printable)
{
	size_t		i = 0, k, n;
	uint32_t	cp, min;

	while (i < len) {
		if (p[i] < 0x80) {
			if (printable && (p[i] < 0x20 || p[i] == 0x7f))
				return 0;
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			n = 2;
			cp = p[i] & 0x1f;
			min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			n = 3;
			cp = p[i] & 0x0f;
			min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			n = 4;
			cp = p[i] & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (len - i < n)
			return 0;
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) ||
		    cp > 0x10ffff)
			return 0;
		if (printable && cp >= 0x80 && cp <= 0x9f)
			return 0;
		i += n;
	}
	return 1;
}

int
kvt_printable(const uint8_t *p, size_t len)
{
	return kvt_utf8_scan(p, len, 1);
}

int
kvt_utf8_valid(const uint8_t *p, size_t len)
{
	return kvt_utf8_scan(p, len, 0);
}

char *
kvt_data_format(const uint8_t *p, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	char			*out;
	size_t			 i, pre = 0;

	if (kvt_printable(p, len)) {
		/* Text that looks like a prefix gets "t:" to read back. */
		if ((len >= 2 && (memcmp(p, "x:", 2) == 0 ||
		    memcmp(p, "t:", 2) == 0)) || (len >= 1 && p[0] == '@'))
			pre = 2;
		if ((out = malloc(pre + len + 1)) == NULL)
			return NULL;
		memcpy(out, "t:", pre);
		if (len > 0)
			memcpy(out + pre, p, len);
		out[pre + len] = '\0';
		return out;
	}
	if (len > (SIZE_MAX - 3) / 2 || (out = malloc(2 * len + 3)) == NULL)
		return NULL;
	out[0] = 'x';
	out[1] = ':';
	for (i = 0; i < len; i++) {
		out[2 + 2 * i] = hex[p[i] >> 4];
		out[3 + 2 * i] = hex[p[i] & 15];
	}
	out[2 + 2 * len] = '\0';
	return out;
}

int
kvt_parse_i64(const char *s, int64_t *out)
{
	const char	*p = s;
	char		*end;
	long long	 v;

	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = (int64_t)v;
	return 0;
}

int64_t
kvt_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
kvt_format_time(int64_t ms, char *buf, size_t len)
{
	struct tm	tm;
	time_t		t;
	int64_t		sec = ms / 1000, frac = ms % 1000;

	/* Floor division, so that -1 ms is 1969-12-31T23:59:59.999Z. */
	if (frac < 0) {
		frac += 1000;
		sec--;
	}
	t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0) {
		snprintf(buf, len, "out of range");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)frac);
}

uint8_t *
kvt_op_pack(const struct store_op *op, size_t *len)
{
	Dsd__Kvdb__V1__SetRequest		 set =
	    DSD__KVDB__V1__SET_REQUEST__INIT;
	Dsd__Kvdb__V1__GetRequest		 get =
	    DSD__KVDB__V1__GET_REQUEST__INIT;
	Dsd__Kvdb__V1__DelRequest		 del =
	    DSD__KVDB__V1__DEL_REQUEST__INIT;
	Dsd__Kvdb__V1__DelVersionRequest	 delv =
	    DSD__KVDB__V1__DEL_VERSION_REQUEST__INIT;
	Dsd__Kvdb__V1__TestAndSetRequest	 tas =
	    DSD__KVDB__V1__TEST_AND_SET_REQUEST__INIT;
	ProtobufCMessage			*m;
	ProtobufCBinaryData			 key, data;
	uint8_t					*buf;

	/* protobuf-c wants non-const pointers; it only reads them. */
	key.data = (uint8_t *)(uintptr_t)op->key;
	key.len = op->keylen;
	data.data = (uint8_t *)(uintptr_t)op->data;
	data.len = op->datalen;
	switch (op->type) {
	case STORE_OP_SET:
		set.key = key;
		set.timestamp = op->timestamp;
		set.data = data;
		m = &set.base;
		break;
	case STORE_OP_GET:
		get.key = key;
		m = &get.base;
		break;
	case STORE_OP_DEL:
		del.key = key;
		m = &del.base;
		break;
	case STORE_OP_DELVERSION:
		delv.key = key;
		delv.version = op->version;
		m = &delv.base;
		break;
	case STORE_OP_TESTANDSET:
		tas.key = key;
		tas.timestamp = op->timestamp;
		tas.data = data;
		tas.version = op->version;
		m = &tas.base;
		break;
	default:
		return NULL;
	}
	*len = protobuf_c_message_get_packed_size(m);
	/* An all-default message packs to nothing; malloc(0) may be NULL. */
	if ((buf = malloc(*len + 1)) == NULL)
		return NULL;
	protobuf_c_message_pack(m, buf);
	return buf;
}

int
kvt_reply_decode(const uint8_t *p, size_t len, struct kvt_reply *r)
{
	Dsd__Kvdb__V1__Reply	*m;

	memset(r, 0, sizeof *r);
	if ((m = dsd__kvdb__v1__reply__unpack(NULL, len, p)) == NULL)
		return -1;
	r->msg = m;
	r->status = (int)m->status;
	if (m->value != NULL) {
		r->has_value = 1;
		r->version = m->value->version;
		r->timestamp = m->value->timestamp;
		r->data = m->value->data.data;
		r->datalen = m->value->data.len;
	}
	return 0;
}

void
kvt_reply_free(struct kvt_reply *r)
{
	if (r->msg != NULL)
		dsd__kvdb__v1__reply__free_unpacked(r->msg, NULL);
	memset(r, 0, sizeof *r);
}

int
kvt_reply_json(json_t *o, const struct kvt_reply *r)
{
	json_t	*text = NULL;
	char	*b64;
	int	 rv;

	if (!r->has_value)
		return 0;
	/* EVP_EncodeBlock() counts in int; a Reply is far smaller. */
	if (r->datalen > (size_t)INT_MAX / 4 * 3 ||
	    (b64 = malloc(r->datalen / 3 * 4 + 5)) == NULL)
		return -1;
	EVP_EncodeBlock((unsigned char *)b64, r->data, (int)r->datalen);
	if (kvt_utf8_valid(r->data, r->datalen) && (text =
	    json_stringn((const char *)r->data, r->datalen)) == NULL) {
		free(b64);
		return -1;
	}
	/* "o*" leaves "data" out for bytes that are not UTF-8. */
	rv = json_object_update_new(o, json_pack("{s:I, s:I, s:s, s:o*}",
	    "version", (json_int_t)r->version, "timestamp",
	    (json_int_t)r->timestamp, "data_base64", b64, "data", text));
	free(b64);
	return rv;
}

void
kvt_reply_print(FILE *f, const struct kvt_reply *r)
{
	const char	*name = kvt_status_name(r->status);
	char		 when[40], *data;

	if (name != NULL)
		fprintf(f, "status: %s\n", name);
	else
		fprintf(f, "status: %d (not in the API)\n", r->status);
	if (!r->has_value) {
		fprintf(f, "value: none\n");
		return;
	}
	kvt_format_time(r->timestamp, when, sizeof when);
	fprintf(f, "version: %lld\n", (long long)r->version);
	fprintf(f, "timestamp: %lld (%s)\n", (long long)r->timestamp, when);
	if ((data = kvt_data_format(r->data, r->datalen)) == NULL)
		fprintf(f, "data: (out of memory formatting it)\n");
	else
		fprintf(f, "data: %s\n", data);
	fprintf(f, "bytes: %zu\n", r->datalen);
	free(data);
}

int
kvt_tls_option(struct kvt_tls *t, int first, int ch, const char *arg)
{
	if (ch < first || ch > first + 3)
		return 0;
	switch (ch - first) {
	case 0:
		t->ca = arg;
		break;
	case 1:
		t->cert = arg;
		break;
	case 2:
		t->key = arg;
		break;
	default:
		t->server_name = arg;
		break;
	}
	t->on = 1;
	return 1;
}

struct ssl_ctx_st *
kvt_tls_ctx(const struct kvt_tls *t, const char *prog)
{
	struct ssl_ctx_st	*ctx;
	char			*err;

	if (!t->on)
		return NULL;
	if ((ctx = tls_client_ctx(t->ca, t->cert, t->key, &err)) == NULL) {
		fprintf(stderr, "%s: %s\n", prog,
		    err != NULL ? err : "out of memory");
		free(err);
	}
	return ctx;
}
