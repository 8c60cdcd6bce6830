/* virtio-entropy (virtio 1.x, section 5.4): fills the driver's buffers with
 * bytes from the host kernel's CSPRNG. */
#include "virtio_devices.h"

#include <errno.h>
#include <sys/random.h>

#include <linux/virtio_ids.h>

#define RNG_QUEUE_SIZE 256u
/* A chain gets at most this much per kick, so one request cannot hold the
 * device lock (and a vCPU) for long; the driver asks again for more. */
#define RNG_MAX_PER_CHAIN (64u << 10)

static size_t fill_random(void *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = getrandom((char *)buf + done, len - done, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    return done;
}

static size_t fill_chain(const struct virtq_chain *c)
{
    size_t total = 0;

    for (unsigned i = c->nr_out; i < c->nr_out + c->nr_in && total < RNG_MAX_PER_CHAIN; i++) {
        size_t want = c->iov[i].iov_len, got;

        if (want > RNG_MAX_PER_CHAIN - total)
            want = RNG_MAX_PER_CHAIN - total;
        got = fill_random(c->iov[i].iov_base, want);
        total += got;
        if (got < want)
            break;
    }
    return total;
}

static void rng_queue_notify(struct virtio_mmio_dev *dev, unsigned qi)
{
    struct virtq *q = virtio_mmio_queue(dev, qi);
    struct virtq_chain c;
    int rc;

    if (!q)
        return;
    while ((rc = virtq_pop(q, &c)) > 0)
        virtq_push(q, c.head, (uint32_t)fill_chain(&c));
    if (rc < 0)
        virtio_mmio_device_error(dev, "malformed request queue");
    virtio_mmio_signal_used(dev, qi);
}

static const struct virtio_dev_ops rng_ops = {
    .name = "rng",
    .device_id = VIRTIO_ID_RNG,
    .num_queues = 1,
    .queue_max_size = RNG_QUEUE_SIZE,
    .queue_notify = rng_queue_notify,
};

struct virtio_mmio_dev *virtio_rng_create(struct bus *bus, uint64_t base, unsigned gsi,
                                          const struct irq_chip *irq,
                                          const struct guest_mem *mem)
{
    return virtio_mmio_create(bus, base, gsi, irq, mem, &rng_ops, NULL);
}
