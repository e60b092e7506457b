/*
 * TLS for gRPC over HTTP/2 (RFC 9113 section 3.2, "h2" by ALPN), on
 * OpenSSL: the contexts the server (net/h2.h) and the client
 * (net/grpc_client.h) hand to libevent's OpenSSL bufferevents, and the
 * words for what went wrong in a handshake.
 *
 * Both sides speak TLS 1.2 and 1.3 only, with the cipher suites RFC 9113
 * section 9.2 allows for HTTP/2 over TLS 1.2 (ephemeral ECDHE with an
 * AEAD), and require ALPN "h2", as gRPC does.
 *
 * Contexts are reference counted by OpenSSL: a connection's SSL holds a
 * reference to the context it was made from, so a context swapped out on a
 * reload (SIGHUP) lives on for the connections already made from it.
 *
 * Nothing here exits: errors come back as a malloc'd sentence (*err, NULL
 * if even that could not be allocated), since a reload at run time must
 * keep the old context when the new files are bad.
 */
#ifndef DSD_TLS_H
#define DSD_TLS_H

#include <stddef.h>

struct ssl_ctx_st;
struct ssl_st;

/*
 * A server context from a PEM certificate chain and its private key.  With
 * client_ca (a PEM file of CA certificates), clients must present a
 * certificate that chains to one of them (mutual TLS): one that sends
 * none, or an untrusted one, fails the handshake.  Returns NULL and *err
 * if a file cannot be read or the key does not match the certificate.
 */
struct ssl_ctx_st *tls_server_ctx(const char *cert, const char *key,
		    const char *client_ca, char **err);

/*
 * A client context: the server's certificate is verified against ca (a
 * PEM file; NULL: the system's store), and cert and key (both or
 * neither) are presented as a client certificate.  NULL and *err as
 * above.
 */
struct ssl_ctx_st *tls_client_ctx(const char *ca, const char *cert,
		    const char *key, char **err);

/*
 * A client connection's SSL: SNI and the name checked against the
 * server's certificate are name (a DNS name; an IP address literal is
 * checked against the certificate's IP subjectAltNames and sent no SNI).
 * NULL if memory ran out.
 */
struct ssl_st	*tls_client_ssl(struct ssl_ctx_st *, const char *name);

/* Whether the handshake chose ALPN "h2". */
int		 tls_alpn_h2(struct ssl_st *);

/*
 * Why a handshake failed, in words for a log line: OpenSSL's reason for
 * err (an ERR_get_error() code, 0 if none), the certificate check's
 * result if that was it, and a hint for the usual causes ("plain text on
 * a TLS port", "no client certificate").  Malloc'd; NULL if memory ran
 * out.
 */
char		*tls_failure(struct ssl_st *, unsigned long err);

/*
 * Of a connection's queued errors, handed over newest first (as libevent's
 * bufferevent_get_openssl_error() does), the one to report: the oldest
 * from the TLS library, which names the cause, rather than a system error
 * (a reset, a broken pipe) that followed it; never a bare SSL_get_error()
 * value, which libevent queues too.  Start with best = 0; 0 at the end
 * means there is no OpenSSL reason to give.
 */
unsigned long	 tls_pick_error(unsigned long best, unsigned long e);

/* One line for the OpenSSL errors queued now (and clears them).
 * Malloc'd; NULL if memory ran out. */
char		*tls_errors(void);

#endif
