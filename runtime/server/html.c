/* HTML building for the web pages: escaping, URL encoding, the page frame
 * with its inline stylesheet, and the responses (every one carries the
 * security headers: a strict Content-Security-Policy, nosniff, no framing).
 *
 * Rule: text that comes from outside (component names, log messages, file
 * paths, user names) only ever goes through html_text or html_url;
 * html_raw/html_fmt take trusted markup and numbers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "server/internal.h"

#define CSP                                                                                        \
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "                              \
    "form-action 'self' http://127.0.0.1:*; frame-ancestors 'none'; base-uri 'none'"

static const char STYLE[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;"
    "background:#f6f8fa}"
    "header{background:#24292f;color:#fff;padding:.6em 1.5em;display:flex;align-items:center;"
    "gap:1em}"
    "header a{color:#fff;text-decoration:none}"
    "header .brand{font-weight:700;font-size:1.2em;letter-spacing:.02em}"
    "header .who{margin-left:auto;display:flex;align-items:center;gap:.6em}"
    "header form{margin:0}"
    "header button{background:transparent;color:#fff;border:1px solid #8c959f;border-radius:6px;"
    "padding:.2em .8em;cursor:pointer;font:inherit}"
    "main{max-width:64em;margin:1.5em auto;padding:0 1.5em}"
    "h1{font-size:1.6em;margin:.2em 0 .6em;word-break:break-all}"
    "h2{font-size:1.15em;margin:1.6em 0 .5em}"
    "a{color:#0969da}"
    ".crumbs{color:#57606a;margin-bottom:.3em}"
    ".card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1em 1.2em;"
    "margin:.8em 0}"
    "table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de;"
    "border-radius:8px;overflow:hidden}"
    "th,td{text-align:left;padding:.45em .8em;border-bottom:1px solid #eaeef2;"
    "vertical-align:top}"
    "th{background:#f6f8fa;font-weight:600;font-size:.9em;color:#57606a}"
    "tr.selected td{background:#ddf4ff}"
    "th.num,td.num{text-align:right;white-space:nowrap}"
    ".muted{color:#57606a}"
    ".badge{display:inline-block;padding:0 .55em;border-radius:1em;font-size:.8em;"
    "border:1px solid #d0d7de;color:#57606a}"
    ".badge.public{border-color:#1a7f37;color:#1a7f37}"
    "pre,code{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}"
    "pre{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1em;"
    "overflow:auto;white-space:pre}"
    ".message{white-space:pre-wrap;word-break:break-word}"
    ".error{background:#ffebe9;border:1px solid #ff8182;border-radius:6px;padding:.6em 1em;"
    "margin:.8em 0}"
    ".notice{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.6em 1em;"
    "margin:.8em 0}"
    "form.signin{max-width:22em}"
    "form.signin label{display:block;margin:.8em 0 .2em;font-weight:600}"
    "form.signin input{width:100%;padding:.45em .6em;border:1px solid #d0d7de;"
    "border-radius:6px;font:inherit}"
    "form.signin button{margin-top:1.2em;width:100%;padding:.55em;border:0;border-radius:6px;"
    "background:#1f883d;color:#fff;font:inherit;font-weight:600;cursor:pointer}";

void html_raw(struct html *h, const char *s)
{
    if (srv_buf_add(&h->buf, s, strlen(s)) != 0)
        h->oom = true;
}

void html_fmt(struct html *h, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        h->oom = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        html_raw(h, small);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        h->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    html_raw(h, big);
    free(big);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned min;
    unsigned cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, min = 0x80, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, min = 0x800, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, min = 0x10000, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void html_textn(struct html *h, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0; // bytes of p copied as they are, pending
    for (size_t i = 0; i < n;) {
        const char *entity = NULL;
        size_t step = 1;
        switch (p[i]) {
        case '&': entity = "&amp;"; break;
        case '<': entity = "&lt;"; break;
        case '>': entity = "&gt;"; break;
        case '"': entity = "&quot;"; break;
        case '\'': entity = "&#39;"; break;
        case '\0': entity = "\xef\xbf\xbd"; break;
        default:
            step = utf8_length(p + i, n - i);
            if (step == 0)
                entity = "\xef\xbf\xbd", step = 1;
        }
        if (entity) {
            if (srv_buf_add(&h->buf, p + i - run, run) != 0)
                h->oom = true;
            html_raw(h, entity);
            run = 0;
        } else {
            run += step;
        }
        i += step;
    }
    if (srv_buf_add(&h->buf, p + n - run, run) != 0)
        h->oom = true;
}

void html_text(struct html *h, const char *s)
{
    html_textn(h, s ? s : "", s ? strlen(s) : 0);
}

void html_url(struct html *h, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char c = (char)*p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && keep_slash)) {
            if (srv_buf_add(&h->buf, &c, 1) != 0)
                h->oom = true;
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            if (srv_buf_add(&h->buf, enc, 3) != 0)
                h->oom = true;
        }
    }
}

void html_begin(struct html *h, const char *title, const char *viewer, const char *logout_csrf)
{
    html_raw(h, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                "<title>");
    html_text(h, title);
    html_raw(h, " · bbit</title><style>");
    html_raw(h, STYLE);
    html_raw(h, "</style></head>\n<body><header><a class=\"brand\" href=\"/\">bbit</a>"
                "<span class=\"muted\">scopes</span><span class=\"who\">");
    if (viewer) {
        html_raw(h, "<span>Signed in as <b id=\"viewer\">");
        html_text(h, viewer);
        html_raw(h, "</b></span><form method=\"post\" action=\"/logout\">"
                    "<input type=\"hidden\" name=\"csrf\" value=\"");
        html_text(h, logout_csrf ? logout_csrf : "");
        html_raw(h, "\"><button type=\"submit\" id=\"signout\">Sign out</button></form>");
    } else {
        html_raw(h, "<a href=\"/login\" id=\"signin\">Sign in</a>");
    }
    html_raw(h, "</span></header>\n<main>\n");
}

void html_end(struct html *h)
{
    html_raw(h, "\n</main></body></html>\n");
}

void html_free(struct html *h)
{
    srv_buf_free(&h->buf);
}

void html_security_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
}

static void add_headers(struct MHD_Response *resp, const char *const *headers)
{
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
}

static int queue_response(struct srv_request *r, unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result ok = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ok != MHD_YES)
        return -1;
    r->status = status;
    r->responded = true;
    return 0;
}

int html_send(struct srv_request *r, unsigned status, struct html *h, const char *const *headers)
{
    if (h->oom || !h->buf.data) {
        html_free(h);
        return srv_send_internal(r, "out of memory while rendering a page");
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(h->buf.len, h->buf.data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        html_free(h);
        return -1;
    }
    h->buf.data = NULL; // owned by the response now
    html_free(h);
    MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
    html_security_headers(resp);
    add_headers(resp, headers);
    return queue_response(r, status, resp);
}

int html_send_message(struct srv_request *r, unsigned status, const char *title,
                      const char *message, const char *const *headers)
{
    struct html h = {0};
    html_begin(&h, title, NULL, NULL);
    html_raw(&h, "<h1>");
    html_text(&h, title);
    html_raw(&h, "</h1><p class=\"message\" id=\"message\">");
    html_text(&h, message);
    html_raw(&h, "</p><p><a href=\"/\">All scopes</a></p>");
    html_end(&h);
    return html_send(r, status, &h, headers);
}

int html_redirect(struct srv_request *r, const char *location, const char *const *headers)
{
    static const char body[] = "See Other\n";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return -1;
    MHD_add_response_header(resp, "Location", location);
    MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    html_security_headers(resp);
    add_headers(resp, headers);
    return queue_response(r, 303, resp);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *html_form_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '\0') {
            free(out);
            return NULL;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}
