/* postroom: ISC license, see LICENSE. */
#include "base64.h"

int base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *in, size_t n, char *out, size_t max, size_t *outlen)
{
	size_t o = 0;

	if (n % 4)
		return 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			v[k] = base64_value(in[i + k]);
			if (in[i + k] == '=' && i + 4 == n && k >= 2) {
				pad++;
				v[k] = 0;
			} else if (v[k] < 0 || pad) {
				return 0;	/* not base64, or data after padding */
			}
		}
		unsigned long group = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
				      (unsigned long)v[2] << 6 | (unsigned long)v[3];
		/* The bits the padding stands for must be zero (RFC 4648 section 3.5). */
		if ((pad == 2 && (group & 0xffff)) || (pad == 1 && (group & 0xff)))
			return 0;
		if (o + 3 - (size_t)pad > max)
			return 0;
		out[o++] = (char)(group >> 16);
		if (pad < 2)
			out[o++] = (char)(group >> 8 & 0xff);
		if (pad < 1)
			out[o++] = (char)(group & 0xff);
	}
	*outlen = o;
	return 1;
}

void base64_encode(const char *in, size_t n, char *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *u = (const unsigned char *)in;
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		unsigned long group = (unsigned long)u[i] << 16;
		if (i + 1 < n)
			group |= (unsigned long)u[i + 1] << 8;
		if (i + 2 < n)
			group |= u[i + 2];
		out[o++] = alphabet[group >> 18];
		out[o++] = alphabet[group >> 12 & 63];
		out[o++] = i + 1 < n ? alphabet[group >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? alphabet[group & 63] : '=';
	}
	out[o] = 0;
}
