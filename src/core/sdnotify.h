/*
 * The systemd notification protocol (sd_notify(3)): one datagram of
 * "KEY=VALUE\n" lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a
 * path, or an abstract name written with a leading '@').  Written here
 * rather than linking libsystemd for two messages.  Without the variable
 * it does nothing, so the same binary runs outside systemd.
 */
#ifndef DSD_SDNOTIFY_H
#define DSD_SDNOTIFY_H

/* Send state (e.g. "READY=1"); 0 if sent or not under systemd, -1 if
 * sending failed (logged; the caller goes on). */
int	sdnotify(const char *state);

#endif
