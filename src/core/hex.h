/* The value of one hexadecimal digit, either case, or -1. */
#ifndef DSD_CORE_HEX_H
#define DSD_CORE_HEX_H

static inline int
hex_digit(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

#endif
