/* virtio-entropy: the test initialises the device as a driver would, posts
 * buffers of many shapes and checks they come back filled. */
#include "test_virtio_driver.h"

#include <linux/virtio_ids.h>

#include "../virtio_devices.h"

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

int main(void)
{
    static struct td t;
    const uint32_t ok = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                        VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
    uint64_t bufs[8];
    uint32_t id, len;
    struct virtio_mmio_dev *dev;

    td_init(&t);
    dev = virtio_rng_create(&t.bus, TD_BASE, TD_GSI, &t.irq, &t.mem);
    CHECK(dev);
    CHECK(td_probe(&t, VIRTIO_ID_RNG, 1ull << VIRTIO_F_VERSION_1, 1, 8) == ok);
    /* Eight buffers of growing size, one kick. */
    for (unsigned i = 0; i < 8; i++) {
        bufs[i] = td_alloc(&t, 64u << i);
        td_post(&t, 0, bufs[i], 64u << i, true);
    }
    td_kick(&t, 0);
    for (unsigned i = 0; i < 8; i++) {
        CHECK(td_used(&t, 0, &id, &len));
        CHECK(id == i && len == 64u << i);
        CHECK(!all_zero(t.mem_buf + bufs[i], len));
    }
    CHECK(!td_used(&t, 0, &id, &len));
    CHECK(atomic_load(&t.irq_edges) >= 1);
    /* A read-only buffer gets nothing; a huge one is capped at 64 KiB. */
    uint64_t big = td_alloc(&t, 1u << 20);
    td_post(&t, 0, bufs[0], 64, false);
    td_post(&t, 0, big, 1u << 20, true);
    td_kick(&t, 0);
    CHECK(td_used(&t, 0, &id, &len) && len == 0);
    CHECK(td_used(&t, 0, &id, &len) && len == 64u << 10);
    /* A buffer outside guest memory: device error, not a crash. */
    td_post(&t, 0, TD_MEM_SIZE - 16, 64, true);
    td_kick(&t, 0);
    CHECK(td_rd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    CHECK(!td_used(&t, 0, &id, &len));
    virtio_mmio_destroy(dev);
    free(t.mem_buf);
    printf("test_virtio_rng: ok\n");
    return 0;
}
