/*
 * libFuzzer target: one client connection's bytes into the real kvdb
 * server (the kvdb mode as dsd runs it: HTTP/2, gRPC framing, protobuf
 * decoding of every request, keys, budgets, the store and its log), over
 * loopback.  The input follows the HTTP/2 client preface, which mutation
 * would hardly find; the connection is then half-closed and the loop runs
 * until the server has closed it.  Every input must leave the server
 * serving: the next input connects to the same one.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/dsd.h"
#include "core/flags.h"
#include "core/log.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

static struct dsd		 d;
static struct sockaddr_in	 sin;
static char			 dir[] = "/tmp/dsd-fuzz-grpc.XXXXXX";

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void
cleanup(void)
{
	char	cmd[64];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_grpc: could not remove %s\n", dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char		 listen[64], datadir[128];
	char		*av[8];
	void		*state;
	socklen_t	 len = sizeof sin;
	int		 s, ac = 0;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	/* A free port: bind one, note it, let it go. */
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		abort();
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    getsockname(s, (struct sockaddr *)&sin, &len) == -1)
		abort();
	close(s);
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(listen, sizeof listen, "--listen=127.0.0.1:%d",
	    ntohs(sin.sin_port));
	snprintf(datadir, sizeof datadir, "--data-dir=%s/data", dir);
	av[ac++] = "dsd";
	av[ac++] = "--mode=kvdb";
	av[ac++] = listen;
	av[ac++] = datadir;
	av[ac++] = "--fsync=no";
	/* Small limits, so that inputs can reach them. */
	av[ac++] = "--max-message=4096";
	av[ac++] = "--max-streams=8";
	av[ac] = NULL;
	if (flags_parse(&d, ac, av) != 0)
		abort();
	log_init("dsd-fuzz", getenv("FUZZ_VERBOSE") != NULL ? 1 : -1);
	if ((d.base = event_base_new()) == NULL)
		abort();
	if (d.mode->init(&d, &state) == -1)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		 buf[16384];
	struct timespec	 t0, t;
	size_t		 off = 0;
	ssize_t		 n;
	int		 s, i, eof = 0;

	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		abort();
	if (connect(s, (struct sockaddr *)&sin, sizeof sin) == -1) {
		perror("fuzz_grpc: connect: the server is gone");
		abort();
	}
	if (fcntl(s, F_SETFL, O_NONBLOCK) == -1)
		abort();
	if (write(s, preface, sizeof preface - 1) != sizeof preface - 1)
		abort();
	/* Bounded: a server that keeps the connection open after the
	 * client's EOF with nothing left to do is a finding too.  The bound
	 * is generous, for loaded machines. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; !eof; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 10)
			break;
		if (off < size) {
			n = write(s, data + off, size - off);
			if (n > 0)
				off += (size_t)n;
			else if (n == -1 && errno != EAGAIN)
				off = size;	/* the server closed: fine */
			if (off == size)
				shutdown(s, SHUT_WR);
		} else if (size == 0 && i == 0)
			shutdown(s, SHUT_WR);
		event_base_loop(d.base, EVLOOP_NONBLOCK);
		while ((n = read(s, buf, sizeof buf)) > 0)
			;
		if (n == 0 || (n == -1 && errno != EAGAIN))
			eof = 1;
		if (!eof && i > 50)
			usleep(100);
	}
	close(s);
	if (!eof) {
		fprintf(stderr, "fuzz_grpc: connection still open after "
		    "the client's EOF\n");
		abort();
	}
	/* Let the server free the connection before the next input. */
	event_base_loop(d.base, EVLOOP_NONBLOCK);
	return 0;
}
