/* Embeds api/openapi.json; the assembler reads it relative to the build's
 * working directory (the repository root). */
#include "openapi.h"

__asm__(".section .rodata\n"
        ".global sbx_openapi_start\n"
        ".global sbx_openapi_end\n"
        "sbx_openapi_start:\n"
        ".incbin \"api/openapi.json\"\n"
        "sbx_openapi_end:\n"
        ".previous\n");

extern const char sbx_openapi_start[];
extern const char sbx_openapi_end[];

const char *openapi_document(size_t *len)
{
    *len = (size_t)(sbx_openapi_end - sbx_openapi_start);
    return sbx_openapi_start;
}
