#ifndef DRKIT_CSHIMS_H
#define DRKIT_CSHIMS_H

#include <zlib.h>

/* inflateInit2 is a macro; this gives Swift a typed entry point. windowBits 15 + 32 accepts
   gzip or zlib headers; concatenated gzip members are handled by the caller. */
int drkit_inflate_init_gzip(z_stream *stream);

#endif
