#ifndef DRKIT_CSHIMS_H
#define DRKIT_CSHIMS_H

#include <zlib.h>

/* deflateInit2/inflateInit2 are macros; these give Swift typed entry points.
   windowBits 15 + 16 selects the gzip (RFC 1952) wrapper. */
int drkit_deflate_init_gzip(z_stream *stream, int level);
/* 15 + 32: accept gzip or zlib headers, and concatenated gzip members are handled by the caller. */
int drkit_inflate_init_gzip(z_stream *stream);

#endif
