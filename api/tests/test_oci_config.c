/* The run settings kept from an image config (oci_run_config): what is kept
 * and how, and that hostile or oversized ones are refused with a message,
 * also through oci_check_config and its per-thread capture. */
#include "../oci_image.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* oci_run_config of JSON text doc: 0 with *out, or -1 with msg holding want. */
static void expect(const char *doc, const char *out_want, const char *msg_want)
{
    json_error_t jerr;
    json_t *cfg = json_loads(doc, JSON_ALLOW_NUL, &jerr);
    char msg[256] = "", *out = NULL;
    int rc;

    CHECK(cfg != NULL);
    rc = oci_run_config(cfg, &out, msg, sizeof(msg));
    if (out_want ? rc != 0 || strcmp(out, out_want) : rc != -1 || !strstr(msg, msg_want))
        fprintf(stderr, "%s -> %d %s %s\n", doc, rc, out ? out : "(null)", msg);
    if (out_want)
        CHECK(rc == 0 && !strcmp(out, out_want));
    else
        CHECK(rc == -1 && !out && strstr(msg, msg_want));
    free(out);
    json_decref(cfg);
}

/* {"config":{"Env":[n entries of len bytes]}} */
static char *env_doc(int n, int len)
{
    size_t cap = (size_t)n * ((size_t)len + 4) + 64, off;
    char *doc = malloc(cap);

    CHECK(doc != NULL);
    off = (size_t)snprintf(doc, cap, "{\"config\":{\"Env\":[");
    for (int i = 0; i < n; i++) {
        off += (size_t)snprintf(doc + off, cap - off, "%s\"A=", i ? "," : "");
        memset(doc + off, 'x', (size_t)len - 2);
        off += (size_t)len - 2;
        doc[off++] = '"';
    }
    snprintf(doc + off, cap - off, "]}}");
    return doc;
}

int main(void)
{
    char *doc, *sink = NULL, msg[256];
    json_t *cfg;

    /* kept, in the API's names; empty and absent ones left out */
    expect("{\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/opt/venv/bin:/bin\",\"A=b=c\"],"
           "\"WorkingDir\":\"/app\",\"User\":\"app:app\",\"Cmd\":[\"sh\"]}}",
           "{\"env\":[\"PATH=/opt/venv/bin:/bin\",\"A=b=c\"],\"working_dir\":\"/app\","
           "\"user\":\"app:app\",\"command\":[\"sh\"]}", NULL);
    expect("{\"config\":{\"Env\":[],\"WorkingDir\":\"\",\"User\":\"\"}}", "", NULL);
    expect("{\"config\":{\"Env\":null,\"WorkingDir\":null}}", "", NULL);
    expect("{\"config\":null}", "", NULL);
    expect("{}", "", NULL);
    /* refused */
    expect("{\"config\":[]}", NULL, "config is not an object");
    expect("{\"config\":{\"Env\":\"PATH=/bin\"}}", NULL, "Env is not a list");
    expect("{\"config\":{\"Env\":[1]}}", NULL, "Env[0] is not NAME=VALUE");
    expect("{\"config\":{\"Env\":[\"A=1\",\"NOEQUALS\"]}}", NULL, "Env[1] is not NAME=VALUE");
    expect("{\"config\":{\"Env\":[\"=x\"]}}", NULL, "Env[0] is not NAME=VALUE");
    expect("{\"config\":{\"Env\":[\"A=\\u0000x\"]}}", NULL, "Env[0] is not NAME=VALUE");
    expect("{\"config\":{\"WorkingDir\":\"app\"}}", NULL, "WorkingDir is not an absolute path");
    expect("{\"config\":{\"WorkingDir\":\"/a\\nb\"}}", NULL, "WorkingDir is not");
    expect("{\"config\":{\"WorkingDir\":7}}", NULL, "WorkingDir is not");
    expect("{\"config\":{\"User\":\"a\\u0000b\"}}", NULL, "User is not a name");
    expect("{\"config\":{\"User\":\"a\\u001bb\"}}", NULL, "User is not a name");
    /* the command: Entrypoint + Cmd, or Cmd alone, or Entrypoint alone */
    expect("{\"config\":{\"Entrypoint\":[\"nginx\"],\"Cmd\":[\"-g\",\"daemon off;\"]}}",
           "{\"command\":[\"nginx\",\"-g\",\"daemon off;\"]}", NULL);
    expect("{\"config\":{\"Cmd\":[\"python3\",\"-m\",\"http.server\"]}}",
           "{\"command\":[\"python3\",\"-m\",\"http.server\"]}", NULL);
    expect("{\"config\":{\"Entrypoint\":[\"/docker-entrypoint.sh\"],\"Cmd\":null}}",
           "{\"command\":[\"/docker-entrypoint.sh\"]}", NULL);
    expect("{\"config\":{\"Entrypoint\":[],\"Cmd\":[\"bash\"]}}", "{\"command\":[\"bash\"]}",
           NULL);
    expect("{\"config\":{\"Entrypoint\":[\"tini\",\"--\"],\"Cmd\":[\"app\",\"\"]}}",
           "{\"command\":[\"tini\",\"--\",\"app\",\"\"]}", NULL);
    expect("{\"config\":{\"Entrypoint\":null,\"Cmd\":[]}}", "", NULL);
    expect("{\"config\":{\"Entrypoint\":[],\"Cmd\":null,\"User\":\"a\"}}", "{\"user\":\"a\"}",
           NULL);
    /* hostile commands refused */
    expect("{\"config\":{\"Cmd\":\"nginx -g 'daemon off;'\"}}", NULL, "Cmd is not a list");
    expect("{\"config\":{\"Entrypoint\":{\"a\":1}}}", NULL, "Entrypoint is not a list");
    expect("{\"config\":{\"Cmd\":[\"sh\",7]}}", NULL, "Cmd[1] is not a string");
    expect("{\"config\":{\"Entrypoint\":[\"s\\u0000h\"]}}", NULL, "Entrypoint[0] is not");
    expect("{\"config\":{\"Cmd\":[\"\",\"x\"]}}", NULL, "Cmd starts with an empty string");
    expect("{\"config\":{\"Entrypoint\":[\"\"],\"Cmd\":[\"x\"]}}", NULL,
           "Entrypoint starts with an empty string");
    {
        /* count (each part, then both together) and total size */
        size_t cap = 2 * OCI_CMD_BYTES_MAX + 4096, off;
        char *big = malloc(cap);
        CHECK(big != NULL);
        off = (size_t)snprintf(big, cap, "{\"config\":{\"Cmd\":[");
        for (int i = 0; i <= OCI_CMD_ARGS_MAX; i++)
            off += (size_t)snprintf(big + off, cap - off, "%s\"a\"", i ? "," : "");
        snprintf(big + off, cap - off, "]}}");
        expect(big, NULL, "Cmd is not a list of at most 256 strings");
        off = (size_t)snprintf(big, cap, "{\"config\":{\"Entrypoint\":[");
        for (int i = 0; i < OCI_CMD_ARGS_MAX; i++)
            off += (size_t)snprintf(big + off, cap - off, "%s\"a\"", i ? "," : "");
        snprintf(big + off, cap - off, "],\"Cmd\":[\"b\"]}}");
        expect(big, NULL, "more than 256 arguments together");
        off = (size_t)snprintf(big, cap, "{\"config\":{\"Entrypoint\":[\"");
        memset(big + off, 'e', OCI_CMD_BYTES_MAX / 2);
        off += OCI_CMD_BYTES_MAX / 2;
        off += (size_t)snprintf(big + off, cap - off, "\"],\"Cmd\":[\"");
        memset(big + off, 'c', OCI_CMD_BYTES_MAX / 2);
        off += OCI_CMD_BYTES_MAX / 2;
        snprintf(big + off, cap - off, "\"]}}");
        expect(big, NULL, "Entrypoint and Cmd are larger than 16384 bytes");
        off = (size_t)snprintf(big, cap, "{\"config\":{\"Cmd\":[\"");
        memset(big + off, 'c', OCI_CMD_BYTES_MAX + 1);
        off += OCI_CMD_BYTES_MAX + 1;
        snprintf(big + off, cap - off, "\"]}}");
        expect(big, NULL, "Cmd[0] is not a string without NUL of at most 16384 bytes");
        free(big);
    }
    /* bounds: count, entry length, total */
    doc = env_doc(OCI_ENV_MAX, 64);
    {
        json_t *j = json_loads(doc, 0, NULL);
        char *out = NULL;
        CHECK(j && oci_run_config(j, &out, msg, sizeof(msg)) == 0 && out[0]);
        free(out);
        json_decref(j);
    }
    free(doc);
    doc = env_doc(OCI_ENV_MAX + 1, 8);
    expect(doc, NULL, "at most 256 strings");
    free(doc);
    doc = env_doc(1, OCI_ENV_ENTRY_MAX + 1);
    expect(doc, NULL, "Env[0] is not NAME=VALUE (at most 4096 bytes)");
    free(doc);
    doc = env_doc(9, OCI_ENV_ENTRY_MAX);
    expect(doc, NULL, "Env is larger than 32768 bytes");
    free(doc);
    {
        char wd[OCI_WORKDIR_MAX + 64] = "{\"config\":{\"WorkingDir\":\"/";
        size_t n = strlen(wd);
        memset(wd + n, 'd', OCI_WORKDIR_MAX);
        strcpy(wd + n + OCI_WORKDIR_MAX, "\"}}");
        expect(wd, NULL, "WorkingDir is not an absolute path of at most 1024 bytes");
    }

    /* oci_check_config: the platform first, then the run settings, left in
     * (and replacing) *run */
    cfg = json_loads("{\"os\":\"linux\",\"config\":{\"User\":\"1000\"}}", 0, NULL);
    CHECK(oci_check_config(cfg, &sink, msg, sizeof(msg)) == 0 && sink &&
          !strcmp(sink, "{\"user\":\"1000\"}"));
    json_decref(cfg);
    cfg = json_loads("{\"config\":{\"WorkingDir\":\"/w\"}}", 0, NULL);
    CHECK(oci_check_config(cfg, &sink, msg, sizeof(msg)) == 0 && !strcmp(sink, "{\"working_dir\":\"/w\"}"));
    json_decref(cfg);
    cfg = json_loads("{\"os\":\"windows\",\"config\":{\"User\":\"x\"}}", 0, NULL);
    CHECK(oci_check_config(cfg, &sink, msg, sizeof(msg)) == -1 && strstr(msg, "windows"));
    json_decref(cfg);
    cfg = json_loads("{\"config\":{\"Env\":{}}}", 0, NULL);
    CHECK(oci_check_config(cfg, &sink, msg, sizeof(msg)) == -1 && strstr(msg, "Env"));
    json_decref(cfg);
    free(sink);
    printf("ok\n");
    return 0;
}
