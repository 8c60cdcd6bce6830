/* The OpenAPI 3 description of the sbx-api REST interface (api/openapi.json,
 * embedded at build time). */
#ifndef SBX_API_OPENAPI_H
#define SBX_API_OPENAPI_H

#include <stddef.h>

/* The document's JSON text (not NUL-terminated) and its length. */
const char *openapi_document(size_t *len);

#endif
