#include "CShims.h"

CURLcode drkit_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode drkit_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode drkit_curl_set_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode drkit_curl_set_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode drkit_curl_set_headers(CURL *handle, struct curl_slist *headers) {
    return curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers);
}

CURLcode drkit_curl_set_write_callback(CURL *handle, drkit_curl_data_callback callback, void *context) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
    return rc != CURLE_OK ? rc : curl_easy_setopt(handle, CURLOPT_WRITEDATA, context);
}

CURLcode drkit_curl_set_header_callback(CURL *handle, drkit_curl_data_callback callback, void *context) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
    return rc != CURLE_OK ? rc : curl_easy_setopt(handle, CURLOPT_HEADERDATA, context);
}

CURLcode drkit_curl_set_read_callback(CURL *handle, drkit_curl_data_callback callback, void *context) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_READFUNCTION, callback);
    return rc != CURLE_OK ? rc : curl_easy_setopt(handle, CURLOPT_READDATA, context);
}

CURLcode drkit_curl_set_seek_callback(CURL *handle, drkit_curl_seek_callback callback, void *context) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_SEEKFUNCTION, callback);
    return rc != CURLE_OK ? rc : curl_easy_setopt(handle, CURLOPT_SEEKDATA, context);
}

long drkit_curl_response_code(CURL *handle) {
    long code = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
    return code;
}
