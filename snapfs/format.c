/* Encoders and parsers of snapfs' on-disk structures (FORMAT.md). The parsers
 * take bytes from disk as untrusted: every length, count and offset is checked
 * before use. They return bytes consumed, -1 if malformed, -2 if incomplete. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char MAN_MAGIC[8] = "SNAPIMG1";
static const char OVL_MAGIC[8] = "SNAPOVL1";
static const char MAP_MAGIC[8] = "SNAPMAP1";
static const char REC_MAGIC[4] = "SNCK";
#define FORMAT_VERSION 1u

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = v >> (8 * i); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = v >> (8 * i); }

static uint32_t get32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static long fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -1;
}

/* A NUL-padded string field: must hold a NUL; copied to out. */
static bool get_str(const uint8_t *p, size_t field, char *out)
{
    const uint8_t *nul = memchr(p, 0, field);
    if (!nul)
        return false;
    memcpy(out, p, nul - p + 1);
    return true;
}

bool ref_is_zero(const struct ref *r) { return r->pack == 0; }

uint32_t manifest_nchunks(uint64_t virtual_size, uint32_t chunk_size)
{
    return (uint32_t)((virtual_size + chunk_size - 1) / chunk_size);
}

uint32_t chunk_len(const struct manifest *m, uint32_t idx)
{
    uint64_t start = (uint64_t)idx * m->chunk_size;
    uint64_t left = m->virtual_size - start;
    return left < m->chunk_size ? (uint32_t)left : m->chunk_size;
}

size_t manifest_size(uint32_t nchunks) { return MANIFEST_HDR + (size_t)nchunks * REF_SIZE; }

void manifest_free(struct manifest *m)
{
    free(m->refs);
    m->refs = NULL;
}

static void ref_encode(const struct ref *r, uint8_t *p)
{
    memcpy(p, r->hash, HASH_LEN);
    put32(p + 32, r->pack);
    put32(p + 36, r->clen);
    put64(p + 40, r->offset);
}

void manifest_encode(const struct manifest *m, uint8_t *buf)
{
    memset(buf, 0, MANIFEST_HDR);
    memcpy(buf, MAN_MAGIC, 8);
    put32(buf + 8, FORMAT_VERSION);
    put32(buf + 12, MANIFEST_HDR);
    put64(buf + 16, m->virtual_size);
    put32(buf + 24, m->chunk_size);
    put32(buf + 28, m->nchunks);
    put64(buf + 32, m->ctime);
    strncpy((char *)buf + 40, m->parent, 64);
    strncpy((char *)buf + 104, m->label, 128);
    for (uint32_t i = 0; i < m->nchunks; i++)
        ref_encode(&m->refs[i], buf + MANIFEST_HDR + (size_t)i * REF_SIZE);
    put32(buf + 236, crc32c(0, buf + MANIFEST_HDR, (size_t)m->nchunks * REF_SIZE));
    put32(buf + 252, crc32c(0, buf, 252));
}

static bool ref_valid(const struct ref *r, uint32_t chunk_size)
{
    if (r->pack == 0)
        return r->clen == 0 && r->offset == 0;
    if (r->clen == 0 || r->clen > chunk_size + chunk_size / 8 + 1024)
        return false;
    return r->offset >= PACK_HDR && r->offset <= (UINT64_C(1) << 48);
}

static long manifest_parse_refs(const uint8_t *p, struct manifest *m, const char **why)
{
    m->refs = calloc(m->nchunks ? m->nchunks : 1, sizeof(*m->refs));
    if (!m->refs)
        return fail(why, "out of memory");
    for (uint32_t i = 0; i < m->nchunks; i++, p += REF_SIZE) {
        struct ref *r = &m->refs[i];
        memcpy(r->hash, p, HASH_LEN);
        r->pack = get32(p + 32);
        r->clen = get32(p + 36);
        r->offset = get64(p + 40);
        if (!ref_valid(r, m->chunk_size)) {
            manifest_free(m);
            return fail(why, "bad chunk reference");
        }
    }
    return 0;
}

static bool chunk_size_valid(uint32_t cs)
{
    return cs >= SNAPFS_MIN_CHUNK && cs <= SNAPFS_MAX_CHUNK && (cs & (cs - 1)) == 0;
}

long manifest_parse(const uint8_t *buf, size_t len, struct manifest *m, const char **why)
{
    memset(m, 0, sizeof(*m));
    if (len < MANIFEST_HDR)
        return -2;
    if (memcmp(buf, MAN_MAGIC, 8) != 0)
        return fail(why, "not a snapfs manifest (bad magic)");
    if (crc32c(0, buf, 252) != get32(buf + 252))
        return fail(why, "manifest header checksum mismatch");
    if (get32(buf + 8) != FORMAT_VERSION || get32(buf + 12) != MANIFEST_HDR)
        return fail(why, "unsupported manifest version");
    m->virtual_size = get64(buf + 16);
    m->chunk_size = get32(buf + 24);
    m->nchunks = get32(buf + 28);
    m->ctime = get64(buf + 32);
    if (!chunk_size_valid(m->chunk_size))
        return fail(why, "bad chunk size");
    if (m->virtual_size == 0 || m->virtual_size % 512 ||
        m->virtual_size > (uint64_t)MAX_CHUNKS * m->chunk_size)
        return fail(why, "bad virtual size");
    if (m->nchunks != manifest_nchunks(m->virtual_size, m->chunk_size))
        return fail(why, "chunk count does not match virtual size");
    if (!get_str(buf + 40, 64, m->parent) || !get_str(buf + 104, 128, m->label))
        return fail(why, "unterminated parent or label");
    if (m->parent[0] && !snapfs_name_valid(m->parent))
        return fail(why, "bad parent name");
    if (len < manifest_size(m->nchunks))
        return -2;
    if (crc32c(0, buf + MANIFEST_HDR, (size_t)m->nchunks * REF_SIZE) != get32(buf + 236))
        return fail(why, "chunk table checksum mismatch");
    if (manifest_parse_refs(buf + MANIFEST_HDR, m, why) < 0)
        return -1;
    return (long)manifest_size(m->nchunks);
}

void record_hdr_encode(const struct record_hdr *r, uint8_t *buf)
{
    memcpy(buf, REC_MAGIC, 4);
    put32(buf + 4, r->clen);
    put32(buf + 8, r->ulen);
    put32(buf + 12, 0);
    memcpy(buf + 16, r->hash, HASH_LEN);
    put32(buf + 12, crc32c(0, buf, RECORD_HDR));
}

long record_hdr_parse(const uint8_t *buf, size_t len, struct record_hdr *r, const char **why)
{
    uint8_t tmp[RECORD_HDR];
    if (len < RECORD_HDR)
        return -2;
    if (memcmp(buf, REC_MAGIC, 4) != 0)
        return fail(why, "bad chunk record magic");
    memcpy(tmp, buf, RECORD_HDR);
    put32(tmp + 12, 0);
    if (crc32c(0, tmp, RECORD_HDR) != get32(buf + 12))
        return fail(why, "chunk record header checksum mismatch");
    r->clen = get32(buf + 4);
    r->ulen = get32(buf + 8);
    memcpy(r->hash, buf + 16, HASH_LEN);
    if (r->ulen == 0 || r->ulen > SNAPFS_MAX_CHUNK || r->clen == 0)
        return fail(why, "bad chunk record lengths");
    return RECORD_HDR;
}

void ovl_head_encode(const struct ovl_head *h, uint8_t *buf)
{
    memset(buf, 0, OVL_HEAD_SIZE);
    memcpy(buf, OVL_MAGIC, 8);
    put32(buf + 8, FORMAT_VERSION);
    put32(buf + 12, h->block_size);
    put64(buf + 16, h->gen);
    put64(buf + 24, h->virtual_size);
    strncpy((char *)buf + 32, h->base, 64);
    memcpy(buf + 96, h->base_digest, HASH_LEN);
    put32(buf + 252, crc32c(0, buf, 252));
}

long ovl_head_parse(const uint8_t *buf, size_t len, struct ovl_head *h, const char **why)
{
    if (len < OVL_HEAD_SIZE)
        return -2;
    if (memcmp(buf, OVL_MAGIC, 8) != 0)
        return fail(why, "not a snapfs overlay head (bad magic)");
    if (crc32c(0, buf, 252) != get32(buf + 252))
        return fail(why, "overlay head checksum mismatch");
    if (get32(buf + 8) != FORMAT_VERSION)
        return fail(why, "unsupported overlay version");
    h->block_size = get32(buf + 12);
    h->gen = get64(buf + 16);
    h->virtual_size = get64(buf + 24);
    memcpy(h->base_digest, buf + 96, HASH_LEN);
    if (h->block_size != SNAPFS_BLOCK_SIZE)
        return fail(why, "unsupported overlay block size");
    if (h->virtual_size == 0 || h->virtual_size % 512 ||
        h->virtual_size > (uint64_t)MAX_CHUNKS * SNAPFS_MAX_CHUNK)
        return fail(why, "bad overlay virtual size");
    if (!get_str(buf + 32, 64, h->base) || !snapfs_name_valid(h->base))
        return fail(why, "bad base image name in overlay head");
    return OVL_HEAD_SIZE;
}

void map_hdr_encode(const struct map_hdr *h, uint8_t *buf)
{
    memset(buf, 0, MAP_PAGE);
    memcpy(buf, MAP_MAGIC, 8);
    put32(buf + 8, FORMAT_VERSION);
    put32(buf + 12, SNAPFS_BLOCK_SIZE);
    put64(buf + 16, h->gen);
    put64(buf + 24, h->nblocks);
    put32(buf + 32, h->npages);
    put32(buf + 60, crc32c(0, buf, 60));
}

long map_hdr_parse(const uint8_t *buf, size_t len, struct map_hdr *h, const char **why)
{
    if (len < MAP_PAGE)
        return -2;
    if (memcmp(buf, MAP_MAGIC, 8) != 0)
        return fail(why, "not a snapfs allocation map (bad magic)");
    if (crc32c(0, buf, 60) != get32(buf + 60))
        return fail(why, "allocation map header checksum mismatch");
    if (get32(buf + 8) != FORMAT_VERSION || get32(buf + 12) != SNAPFS_BLOCK_SIZE)
        return fail(why, "unsupported allocation map version");
    h->gen = get64(buf + 16);
    h->nblocks = get64(buf + 24);
    h->npages = get32(buf + 32);
    if (h->nblocks == 0 || h->nblocks > (uint64_t)MAX_CHUNKS * (SNAPFS_MAX_CHUNK / SNAPFS_BLOCK_SIZE))
        return fail(why, "bad block count in allocation map");
    if (h->npages != (h->nblocks + MAP_PAGE_BITS - 1) / MAP_PAGE_BITS)
        return fail(why, "page count does not match block count");
    return MAP_PAGE;
}

void map_slot_encode(uint8_t *buf, uint32_t page_index, uint64_t seq, const uint8_t *bits)
{
    put64(buf, seq);
    put32(buf + 8, page_index);
    put32(buf + 12, 0);
    memcpy(buf + MAP_SLOT_HDR, bits, MAP_PAGE - MAP_SLOT_HDR);
    put32(buf + 12, crc32c(0, buf, MAP_PAGE));
}

long map_slot_parse(const uint8_t *buf, size_t len, uint32_t page_index, uint64_t *seq,
                    const uint8_t **bits, const char **why)
{
    uint32_t want, crc;
    uint8_t hdr[MAP_SLOT_HDR];
    if (len < MAP_PAGE)
        return -2;
    memcpy(hdr, buf, MAP_SLOT_HDR);
    put32(hdr + 12, 0);
    want = get32(buf + 12);
    crc = crc32c(crc32c(0, hdr, MAP_SLOT_HDR), buf + MAP_SLOT_HDR, MAP_PAGE - MAP_SLOT_HDR);
    if (crc != want)
        return fail(why, "allocation map page checksum mismatch");
    if (get32(buf + 8) != page_index)
        return fail(why, "allocation map page in the wrong place");
    *seq = get64(buf);
    *bits = buf + MAP_SLOT_HDR;
    return MAP_PAGE;
}
