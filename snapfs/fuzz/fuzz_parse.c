/* libFuzzer target for the parsers of everything snapfs reads from disk:
 * manifests, chunk records (header and zstd payload), overlay heads and
 * allocation map pages. The first byte picks the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

static void fuzz_manifest(const uint8_t *p, size_t n)
{
    struct manifest m;
    long r = manifest_parse(p, n, &m, NULL);
    if (r > 0) {
        for (uint32_t i = 0; i < m.nchunks; i++)
            (void)chunk_len(&m, i);
        uint8_t *again = malloc(manifest_size(m.nchunks));
        if (again) {
            manifest_encode(&m, again);
            if (memcmp(again + MANIFEST_HDR, p + MANIFEST_HDR, (size_t)m.nchunks * REF_SIZE) != 0)
                abort();            /* what parses must re-encode to the same refs */
            free(again);
        }
        manifest_free(&m);
    }
}

/* A record read from a pack: header checks, then decompression. */
static void fuzz_record(const uint8_t *p, size_t n)
{
    struct record_hdr h;
    struct ref r = { .pack = 1, .offset = PACK_HDR };
    static uint8_t out[SNAPFS_MAX_CHUNK];
    if (record_hdr_parse(p, n, &h, NULL) < 0 || n - RECORD_HDR < h.clen)
        return;
    r.clen = h.clen;
    memcpy(r.hash, h.hash, HASH_LEN);
    (void)chunk_decode("fuzz", &r, 0, 0, h.ulen, p, out, NULL);
}

static void fuzz_overlay(const uint8_t *p, size_t n)
{
    struct ovl_head h;
    struct map_hdr mh;
    uint64_t seq;
    const uint8_t *bits;
    (void)ovl_head_parse(p, n, &h, NULL);
    (void)map_hdr_parse(p, n, &mh, NULL);
    (void)map_slot_parse(p, n, n > 8 ? p[8] : 0, &seq, &bits, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: fuzz_manifest(data + 1, size - 1); break;
    case 1: fuzz_record(data + 1, size - 1); break;
    default: fuzz_overlay(data + 1, size - 1); break;
    }
    return 0;
}
