/* Service URL pieces (see route.h). */
#include <string.h>
#include <strings.h>

#include "route.h"

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Strips ":<port>" and a trailing dot from a host value. Returns -1 on an IP literal. */
static int host_name_part(struct http_span host, struct http_span *name)
{
    if (host.len == 0 || host.p[0] == '[')
        return -1;
    size_t n = host.len;
    const char *colon = memchr(host.p, ':', n);
    if (colon) {
        for (const char *c = colon + 1; c < host.p + n; c++)
            if (*c < '0' || *c > '9')
                return -1;
        n = (size_t)(colon - host.p);
    }
    if (n > 0 && host.p[n - 1] == '.')
        n--;
    *name = (struct http_span){host.p, n};
    return 0;
}

static int parse_port(const char *s, size_t len, unsigned *port)
{
    if (len == 0 || len > 5 || s[0] == '0')
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = v;
    return 0;
}

int route_parse_host(struct http_span host, const char *domain, struct route_target *t)
{
    struct http_span name;
    if (host_name_part(host, &name) < 0)
        return -1;
    const char *dot = memchr(name.p, '.', name.len);
    if (!dot)
        return -1;
    size_t label_len = (size_t)(dot - name.p);
    size_t domain_len = strlen(domain);
    if (name.len - label_len - 1 != domain_len ||
        strncasecmp(dot + 1, domain, domain_len) != 0)
        return -1;
    char label[SVC_TOKEN_SANDBOX_MAX + 8];
    if (label_len >= sizeof(label))
        return -1;
    for (size_t i = 0; i < label_len; i++)
        label[i] = lower(name.p[i]);
    label[label_len] = '\0';
    char *sep = strstr(label, "--");
    if (!sep)
        return -1;
    size_t sandbox_len = (size_t)(sep - label);
    if (!svc_token_sandbox_valid(label, sandbox_len))
        return -1;
    if (parse_port(sep + 2, label_len - sandbox_len - 2, &t->port) < 0)
        return -1;
    memcpy(t->sandbox, label, sandbox_len);
    t->sandbox[sandbox_len] = '\0';
    return 0;
}

bool route_path_is(struct http_span url, const char *path)
{
    const char *q = memchr(url.p, '?', url.len);
    size_t n = q ? (size_t)(q - url.p) : url.len;
    return n == strlen(path) && memcmp(url.p, path, n) == 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes (and '+' to space) s[0..len) into out; returns length or -2. */
static long percent_decode(const char *s, size_t len, char *out, size_t out_size)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (len - i < 3)
                return -2;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -2;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= out_size)
            return -2;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

long route_query_param(struct http_span url, const char *name, char *out, size_t out_size)
{
    const char *q = memchr(url.p, '?', url.len);
    if (!q || out_size == 0)
        return -1;
    const char *end = url.p + url.len;
    const char *hash = memchr(q, '#', (size_t)(end - q));
    if (hash)
        end = hash;
    size_t name_len = strlen(name);
    for (const char *p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (eq && (size_t)(eq - p) == name_len && memcmp(p, name, name_len) == 0)
            return percent_decode(eq + 1, (size_t)(stop - eq - 1), out, out_size);
        p = stop + 1;
    }
    return -1;
}

bool route_next_ok(const char *next, size_t len)
{
    if (len == 0 || next[0] != '/')
        return false;
    if (len > 1 && (next[1] == '/' || next[1] == '\\'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (next[i] <= ' ' || next[i] >= 0x7f || next[i] == '\\')
            return false;
    return true;
}

/* Calls back each "name=value" pair of a Cookie header; stops when fn returns true. */
struct cookie_pair {
    struct http_span name, value, whole;
};

static bool cookie_next(const char **pp, const char *end, struct cookie_pair *c)
{
    const char *p = *pp;
    while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
        p++;
    if (p >= end)
        return false;
    const char *semi = memchr(p, ';', (size_t)(end - p));
    const char *stop = semi ? semi : end;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    const char *name_end = eq ? eq : stop;
    while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t'))
        name_end--;
    c->whole = (struct http_span){p, (size_t)(stop - p)};
    c->name = (struct http_span){p, (size_t)(name_end - p)};
    const char *v = eq ? eq + 1 : stop;
    const char *v_end = stop;
    while (v < v_end && (*v == ' ' || *v == '\t'))
        v++;
    while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
        v_end--;
    if (v_end - v >= 2 && *v == '"' && v_end[-1] == '"') {
        v++;
        v_end--;
    }
    c->value = (struct http_span){v, (size_t)(v_end - v)};
    *pp = stop;
    return true;
}

static bool name_is(struct http_span s, const char *name)
{
    return s.len == strlen(name) && memcmp(s.p, name, s.len) == 0;
}

bool route_cookie_find(struct http_span header, const char *name, size_t *pos,
                       struct http_span *value)
{
    if (*pos > header.len)
        return false;
    const char *p = header.p + *pos, *end = header.p + header.len;
    struct cookie_pair c;
    while (cookie_next(&p, end, &c)) {
        if (name_is(c.name, name)) {
            *value = c.value;
            *pos = (size_t)(p - header.p);
            return true;
        }
    }
    *pos = header.len + 1;
    return false;
}

size_t route_cookie_strip(struct http_span header, const char *name, char *out, size_t out_size)
{
    const char *p = header.p, *end = header.p + header.len;
    struct cookie_pair c;
    size_t o = 0;
    while (cookie_next(&p, end, &c)) {
        if (name_is(c.name, name))
            continue;
        size_t need = c.whole.len + (o ? 2 : 0);
        if (o + need > out_size)
            break;
        if (o) {
            memcpy(out + o, "; ", 2);
            o += 2;
        }
        memcpy(out + o, c.whole.p, c.whole.len);
        o += c.whole.len;
    }
    return o;
}
