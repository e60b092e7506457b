/*
 * Allocators that never return NULL: they log and exit on failure, as
 * tmux's and OpenSMTPD's do.  Use them for small allocations whose failure
 * leaves nothing sensible to do; sizes that come from the network are
 * bounded before they reach an allocator.
 */
#ifndef DSD_XMALLOC_H
#define DSD_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
