#include "CShims.h"
#include <string.h>

int drkit_inflate_init_gzip(z_stream *stream) {
    memset(stream, 0, sizeof(*stream));
    return inflateInit2(stream, 15 + 32);
}
