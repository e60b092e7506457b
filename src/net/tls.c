/* TLS contexts for the gRPC server and client; see tls.h. */
#include "config.h"

#include <sys/types.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/tls.h"

/* TLS 1.2 suites RFC 9113 section 9.2.2 allows for HTTP/2 (TLS 1.3's
 * own are all fine and configured apart). */
#define TLS_CIPHERS_12	"ECDHE+AESGCM:ECDHE+CHACHA20"

/* ALPN, in wire format: gRPC speaks HTTP/2 only. */
static const unsigned char tls_alpn[] = { 2, 'h', '2' };

/* A malloc'd sentence, or NULL if memory ran out. */
static char * __attribute__((format(printf, 1, 2)))
tls_sprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n == -1 ? NULL : s;
}

char *
tls_errors(void)
{
	unsigned long	 e;
	char		*s = NULL, *t;
	const char	*r;

	while ((e = ERR_get_error()) != 0) {
		if ((r = ERR_reason_error_string(e)) == NULL)
			r = "unknown error";
		t = s == NULL ? tls_sprintf("%s", r) :
		    tls_sprintf("%s; %s", s, r);
		free(s);
		if ((s = t) == NULL)
			break;
	}
	ERR_clear_error();
	if (s == NULL)
		s = tls_sprintf("no further detail from OpenSSL");
	return s;
}

/* Set *err to what, with OpenSSL's queued reasons after it. */
static void
tls_fail(char **err, const char *what, const char *file)
{
	char	*why = tls_errors();

	*err = tls_sprintf("%s %s: %s", what, file,
	    why != NULL ? why : "out of memory");
	free(why);
}

/* The protocols and options both sides share. */
static int
tls_ctx_common(SSL_CTX *ctx)
{
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1)
		return -1;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	/* Buffers of idle connections go back to the heap. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

/* Choose "h2" or fail the handshake (no_application_protocol alert): a
 * client that offers ALPN without h2 cannot speak gRPC. */
static int
tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char	*sel;

	if (SSL_select_next_proto(&sel, outlen, tls_alpn, sizeof tls_alpn,
	    in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* Load a certificate chain and its key into ctx; -1 and *err. */
static int
tls_load_pair(SSL_CTX *ctx, const char *cert, const char *key, char **err)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_fail(err, "cannot load the certificate chain", cert);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_fail(err, "cannot load the private key", key);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_fail(err, "the private key does not match the certificate",
		    cert);
		return -1;
	}
	return 0;
}

SSL_CTX *
tls_server_ctx(const char *cert, const char *key, const char *client_ca,
    char **err)
{
	SSL_CTX			*ctx;
	STACK_OF(X509_NAME)	*names;
	static const unsigned char sid[] = "dsd";

	*err = NULL;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    tls_ctx_common(ctx) == -1) {
		tls_fail(err, "cannot set up TLS for", cert);
		goto fail;
	}
	if (tls_load_pair(ctx, cert, key, err) == -1)
		goto fail;
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
	/* TLS 1.2 session resumption with client certificates needs it. */
	if (SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1) != 1) {
		tls_fail(err, "cannot set up TLS for", cert);
		goto fail;
	}
	if (client_ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
			tls_fail(err, "cannot load the client CA", client_ca);
			goto fail;
		}
		/* The CA names sent in CertificateRequest, for a client
		 * that picks among several certificates. */
		if ((names = SSL_load_client_CA_file(client_ca)) == NULL) {
			tls_fail(err, "cannot read CA names from", client_ca);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;

fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_client_ctx(const char *ca, const char *cert, const char *key,
    char **err)
{
	SSL_CTX	*ctx;

	*err = NULL;
	ERR_clear_error();
	if ((cert == NULL) != (key == NULL)) {
		*err = tls_sprintf("a client certificate needs its key and "
		    "a key its certificate");
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    tls_ctx_common(ctx) == -1 ||
	    SSL_CTX_set_alpn_protos(ctx, tls_alpn, sizeof tls_alpn) != 0) {
		tls_fail(err, "cannot set up TLS for", "a client");
		goto fail;
	}
	if (ca != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			tls_fail(err, "cannot load the CA", ca);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		tls_fail(err, "cannot load the system's CA store for", "TLS");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cert != NULL && tls_load_pair(ctx, cert, key, err) == -1)
		goto fail;
	return ctx;

fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL *
tls_client_ssl(SSL_CTX *ctx, const char *name)
{
	SSL			*ssl;
	struct in6_addr		 a6;
	struct in_addr		 a4;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	if (inet_pton(AF_INET, name, &a4) == 1 ||
	    inet_pton(AF_INET6, name, &a6) == 1) {
		/* RFC 6066 3: no SNI for an address literal. */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    name) != 1)
			goto fail;
	} else if (SSL_set_tlsext_host_name(ssl, name) != 1 ||
	    SSL_set1_host(ssl, name) != 1)
		goto fail;
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

int
tls_alpn_h2(SSL *ssl)
{
	const unsigned char	*p;
	unsigned int		 len;

	SSL_get0_alpn_selected(ssl, &p, &len);
	return len == 2 && memcmp(p, "h2", 2) == 0;
}

unsigned long
tls_pick_error(unsigned long best, unsigned long e)
{
	/* libevent also queues SSL_get_error() values (SSL_ERROR_SYSCALL
	 * for a reset): no library, no reason, nothing to say. */
	if (ERR_SYSTEM_ERROR(e) || ERR_GET_LIB(e) == 0)
		return best;
	if (best == 0 || ERR_GET_LIB(e) == ERR_LIB_SSL)
		return e;
	return best;
}

char *
tls_failure(SSL *ssl, unsigned long err)
{
	const char	*reason, *hint = "";
	long		 vr;

	if (err == 0)
		return tls_sprintf("connection closed during the handshake");
	if ((reason = ERR_reason_error_string(err)) == NULL)
		reason = "unknown error";
	switch (ERR_GET_LIB(err) == ERR_LIB_SSL ? ERR_GET_REASON(err) : 0) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
		if (vr != X509_V_OK)
			return tls_sprintf("%s: %s (untrusted certificate)",
			    reason, X509_verify_cert_error_string(vr));
		hint = " (untrusted certificate)";
		break;
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		hint = " (no client certificate)";
		break;
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_RECORD_LENGTH_MISMATCH:
	case SSL_R_UNKNOWN_PROTOCOL:
		hint = " (plain text on a TLS port?)";
		break;
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
		hint = " (the client offers nothing from TLS 1.2 and 1.3)";
		break;
	case SSL_R_NO_APPLICATION_PROTOCOL:
		hint = " (the client does not offer ALPN h2)";
		break;
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
		hint = " (the peer rejected our certificate)";
		break;
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		hint = " (the server requires a client certificate)";
		break;
	}
	return tls_sprintf("%s%s", reason, hint);
}
