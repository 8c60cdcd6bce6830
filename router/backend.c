/* The table of backends (see backend.h). Add a backend here. */
#include <string.h>

#include "backend.h"

static const struct backend_ops *const backends[] = {
    &backend_unix_dir,
    &backend_sbx,
};

const struct backend_ops *backend_find(const char *name)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

const char *backend_names(void)
{
    return "unix-dir, sbx";
}
