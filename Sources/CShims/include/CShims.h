#ifndef DRKIT_CSHIMS_H
#define DRKIT_CSHIMS_H

#include <zlib.h>
#include <curl/curl.h>

/* inflateInit2 is a macro; this gives Swift a typed entry point. windowBits 15 + 32 accepts
   gzip or zlib headers; concatenated gzip members are handled by the caller. */
int drkit_inflate_init_gzip(z_stream *stream);

/* curl_easy_setopt and curl_easy_getinfo are variadic; Swift needs one typed function per argument type. */
typedef size_t (*drkit_curl_data_callback)(char *data, size_t size, size_t count, void *context);

CURLcode drkit_curl_set_long(CURL *handle, CURLoption option, long value);
CURLcode drkit_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value);
CURLcode drkit_curl_set_string(CURL *handle, CURLoption option, const char *value);
CURLcode drkit_curl_set_pointer(CURL *handle, CURLoption option, void *value);
CURLcode drkit_curl_set_headers(CURL *handle, struct curl_slist *headers);
CURLcode drkit_curl_set_write_callback(CURL *handle, drkit_curl_data_callback callback, void *context);
CURLcode drkit_curl_set_header_callback(CURL *handle, drkit_curl_data_callback callback, void *context);
CURLcode drkit_curl_set_read_callback(CURL *handle, drkit_curl_data_callback callback, void *context);
/* Lets curl rewind an upload body when it resends a request on a new connection (a reused one
   died before answering); offset is from the start of the body (origin is always SEEK_SET). */
typedef int (*drkit_curl_seek_callback)(void *context, curl_off_t offset, int origin);
CURLcode drkit_curl_set_seek_callback(CURL *handle, drkit_curl_seek_callback callback, void *context);
long drkit_curl_response_code(CURL *handle);

#endif
