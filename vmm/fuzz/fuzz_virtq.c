/* Fuzzes virtq_pop/push over guest memory the fuzzer fills: random ring
 * placement, queue size, features, descriptors, indirect tables and indexes.
 * Input: u8 log2(size), u8 features, u16 desc/avail/used (x16 / x2 / x4),
 * then the bytes of guest memory (64 KiB, zero-padded). */
#include <stdint.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "../virtq.h"

#define MEM_SIZE (64u << 10)

static uint8_t mem_buf[MEM_SIZE] __attribute__((aligned(4096)));

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct virtq_chain c;
    struct guest_mem mem;
    struct virtq q;
    uint64_t features = 0;
    uint8_t scratch[256];

    if (size < 8)
        return 0;
    memset(mem_buf, 0, sizeof(mem_buf));
    memcpy(mem_buf, data + 8, size - 8 < MEM_SIZE ? size - 8 : MEM_SIZE);
    gmem_init_flat(&mem, mem_buf, MEM_SIZE);
    if (data[1] & 1)
        features |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
    if (data[1] & 2)
        features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
    if (virtq_init(&q, &mem, 1u << (data[0] % 16), get16(data + 2) * 16ull,
                   get16(data + 4) * 2ull, get16(data + 6) * 4ull, features) < 0)
        return 0;
    for (int i = 0; i < 64; i++) {
        int rc = virtq_pop(&q, &c);
        if (rc <= 0)
            break;
        virtq_chain_read(&c, 1, scratch, sizeof(scratch));
        virtq_chain_write(&c, 3, scratch, sizeof(scratch));
        if (virtq_push(&q, c.head, (uint32_t)c.in_len) < 0)
            __builtin_trap();
        virtq_need_interrupt(&q);
    }
    return 0;
}
