#ifndef DEFERRED_CCURL_SHIM_H
#define DEFERRED_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call; these
   typed wrappers are the only way the Swift side reaches them. */
typedef size_t (*deferred_curl_io_callback)(char *buffer, size_t size, size_t count, void *userdata);

static inline CURLcode deferred_curl_set_string(CURL *c, CURLoption o, const char *v) {
    return curl_easy_setopt(c, o, v);
}
static inline CURLcode deferred_curl_set_long(CURL *c, CURLoption o, long v) {
    return curl_easy_setopt(c, o, v);
}
static inline CURLcode deferred_curl_set_offset(CURL *c, CURLoption o, curl_off_t v) {
    return curl_easy_setopt(c, o, v);
}
static inline CURLcode deferred_curl_set_pointer(CURL *c, CURLoption o, void *v) {
    return curl_easy_setopt(c, o, v);
}
static inline CURLcode deferred_curl_set_headers(CURL *c, struct curl_slist *v) {
    return curl_easy_setopt(c, CURLOPT_HTTPHEADER, v);
}
static inline CURLcode deferred_curl_set_callback(CURL *c, CURLoption o, deferred_curl_io_callback v) {
    return curl_easy_setopt(c, o, v);
}
static inline CURLcode deferred_curl_get_long(CURL *c, CURLINFO i, long *v) {
    return curl_easy_getinfo(c, i, v);
}
#endif
