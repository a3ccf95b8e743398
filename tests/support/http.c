/* SPDX-License-Identifier: Apache-2.0
 *
 * http.c - a blocking HTTP helper for tests, on libcurl's easy interface.
 */
#include "support.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct buf {
        char *data;
        size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
        struct buf *b = opaque;
        size_t n = size * nmemb;
        char *nd = realloc(b->data, b->len + n + 1);

        if (!nd)
                return 0;
        memcpy(nd + b->len, ptr, n);
        b->data = nd;
        b->len += n;
        b->data[b->len] = '\0';
        return n;
}

long mls_http_req(const char *method, const char *url, const char *ctype,
                  const char *body, char **respp)
{
        CURL *eh = curl_easy_init();
        struct curl_slist *hdrs = NULL;
        struct buf b = { NULL, 0 };
        long status = -1;
        char hdr[256];

        if (!eh)
                return -1;
        curl_easy_setopt(eh, CURLOPT_URL, url);
        curl_easy_setopt(eh, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(eh, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(eh, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(eh, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(eh, CURLOPT_NOSIGNAL, 1L);
        if (body) {
                curl_easy_setopt(eh, CURLOPT_POSTFIELDS, body);
                snprintf(hdr, sizeof(hdr), "Content-Type: %s",
                         ctype ? ctype : "application/json");
                hdrs = curl_slist_append(hdrs, hdr);
                curl_easy_setopt(eh, CURLOPT_HTTPHEADER, hdrs);
        }
        if (curl_easy_perform(eh) == CURLE_OK)
                curl_easy_getinfo(eh, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(eh);
        if (respp)
                *respp = b.data ? b.data : strdup("");
        else
                free(b.data);
        return status;
}
