/* virtio-mmio transport: the test does the driver's side of initialisation
 * through the bus, against a dummy device type that records its callbacks. */
#include "test_virtio_driver.h"

#include <errno.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../evloop.h"

#define DUMMY_ID 42u
#define DUMMY_FEATURE (1ull << 3)

static struct {
    int activated, resets, notifies, last_notify;
    int fail_activate;
    uint8_t config[8];
} dummy;

static void dummy_config_read(struct virtio_mmio_dev *dev, uint32_t off, void *data, unsigned len)
{
    (void)dev;
    if (off < sizeof(dummy.config) && len <= sizeof(dummy.config) - off)
        memcpy(data, dummy.config + off, len);
}

static void dummy_config_write(struct virtio_mmio_dev *dev, uint32_t off, const void *data,
                               unsigned len)
{
    (void)dev;
    if (off < sizeof(dummy.config) && len <= sizeof(dummy.config) - off)
        memcpy(dummy.config + off, data, len);
}

static int dummy_activate(struct virtio_mmio_dev *dev)
{
    CHECK(virtio_mmio_queue(dev, 0) && virtio_mmio_queue(dev, 1));
    CHECK(!virtio_mmio_queue(dev, 2));
    dummy.activated++;
    return dummy.fail_activate ? -EIO : 0;
}

static void dummy_notify(struct virtio_mmio_dev *dev, unsigned q)
{
    struct virtq *vq = virtio_mmio_queue(dev, q);
    struct virtq_chain c;
    int rc;

    dummy.notifies++;
    dummy.last_notify = (int)q;
    while ((rc = virtq_pop(vq, &c)) > 0)
        virtq_push(vq, c.head, (uint32_t)c.in_len);
    if (rc < 0)
        virtio_mmio_device_error(dev, "test");
    virtio_mmio_signal_used(dev, q);
}

static void dummy_reset(struct virtio_mmio_dev *dev)
{
    (void)dev;
    dummy.resets++;
}

static const struct virtio_dev_ops dummy_ops = {
    .name = "dummy", .device_id = DUMMY_ID, .features = DUMMY_FEATURE,
    .num_queues = 2, .queue_max_size = 64,
    .config_read = dummy_config_read, .config_write = dummy_config_write,
    .activate = dummy_activate, .queue_notify = dummy_notify, .reset = dummy_reset,
};

static const uint32_t ALL_OK = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                               VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
static const uint64_t V1 = 1ull << VIRTIO_F_VERSION_1;

static void test_identity_and_layout(struct td *t, struct virtio_mmio_dev *dev)
{
    char line[80];
    uint16_t half;
    uint8_t byte;

    CHECK(virtio_mmio_base(dev) == TD_BASE && virtio_mmio_size(dev) == 0x200);
    CHECK(virtio_mmio_gsi(dev) == TD_GSI);
    virtio_mmio_cmdline(dev, line, sizeof(line));
    CHECK(strcmp(line, "virtio_mmio.device=512@0xd0000000:5") == 0);
    CHECK(td_rd(t, VIRTIO_MMIO_VENDOR_ID) == VIRTIO_MMIO_VENDOR);
    /* Registers want 32-bit accesses; anything else reads 0 and writes nothing. */
    CHECK(bus_read(&t->bus, TD_BASE, &half, 2) && half == 0);
    byte = 0;
    CHECK(bus_write(&t->bus, TD_BASE + VIRTIO_MMIO_STATUS, &byte, 1));
    /* Config space: any width. */
    memcpy(dummy.config, "ABCDEFGH", 8);
    CHECK(bus_read(&t->bus, TD_BASE + 0x102, &half, 2) && memcmp(&half, "CD", 2) == 0);
    byte = 'z';
    CHECK(bus_write(&t->bus, TD_BASE + 0x107, &byte, 1) && dummy.config[7] == 'z');
    /* The last byte of the window is decoded; one past it is not ours. */
    CHECK(bus_read(&t->bus, TD_BASE + 0x1ff, &byte, 1));
    CHECK(!bus_read(&t->bus, TD_BASE + 0x200, &byte, 1));
}

static void test_feature_negotiation(struct td *t)
{
    /* A legacy driver (no VERSION_1) does not get FEATURES_OK. */
    CHECK(!(td_probe(t, DUMMY_ID, DUMMY_FEATURE, 2, 16) & VIRTIO_CONFIG_S_FEATURES_OK));
    CHECK(dummy.activated == 0);
    /* Features the device did not offer are refused too. */
    td_wr(t, VIRTIO_MMIO_STATUS, 0);
    td_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1u << 7);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
    td_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                 VIRTIO_CONFIG_S_FEATURES_OK);
    CHECK(!(td_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK));
    /* DRIVER_OK without FEATURES_OK does not activate. */
    td_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                 VIRTIO_CONFIG_S_DRIVER_OK);
    CHECK(dummy.activated == 0);
}

static void test_queues_and_interrupts(struct td *t, struct virtio_mmio_dev *dev)
{
    uint64_t buf = td_alloc(t, 4096);
    uint32_t id, len;
    int edges;

    CHECK(td_probe(t, DUMMY_ID, V1 | DUMMY_FEATURE, 2, 16) == ALL_OK);
    CHECK(dummy.activated == 1);
    CHECK(virtio_mmio_features(dev) == (V1 | DUMMY_FEATURE));
    /* Queue 2 does not exist: NUM_MAX 0; a notify for it is ignored. */
    td_wr(t, VIRTIO_MMIO_QUEUE_SEL, 2);
    CHECK(td_rd(t, VIRTIO_MMIO_QUEUE_NUM_MAX) == 0);
    td_kick(t, 2);
    CHECK(dummy.notifies == 0);
    /* A live queue's address cannot be changed. */
    td_wr(t, VIRTIO_MMIO_QUEUE_SEL, 1);
    td_wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x12345);
    td_post(t, 1, buf, 100, true);
    edges = atomic_load(&t->irq_edges);
    td_kick(t, 1);
    CHECK(dummy.notifies == 1 && dummy.last_notify == 1);
    CHECK(td_used(t, 1, &id, &len) && len == 100);
    CHECK(atomic_load(&t->irq_edges) == edges + 1);
    CHECK(td_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_VRING);
    td_wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
    CHECK(td_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
    /* Config change: generation moves, config interrupt. */
    uint32_t gen = td_rd(t, VIRTIO_MMIO_CONFIG_GENERATION);
    virtio_mmio_lock(dev);
    virtio_mmio_config_changed(dev);
    virtio_mmio_unlock(dev);
    CHECK(td_rd(t, VIRTIO_MMIO_CONFIG_GENERATION) == gen + 1);
    CHECK(td_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_CONFIG);
    td_wr(t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
}

/* What a kick registrar was asked; fail_at makes that call fail. */
static struct {
    unsigned calls, fail_at;
    uint64_t gpa[8];
    uint32_t match[8];
    int fd[8];
    bool assign[8];
} reg_log;

static int fake_register(void *ctx, uint64_t gpa, uint32_t datamatch, int fd, bool assign)
{
    unsigned i = reg_log.calls++;

    (void)ctx;
    CHECK(i < 8);
    reg_log.gpa[i] = gpa, reg_log.match[i] = datamatch, reg_log.fd[i] = fd;
    reg_log.assign[i] = assign;
    return i + 1 == reg_log.fail_at ? -ENOSYS : 0;
}

/* Queue kicks through eventfds (KVM_IOEVENTFD in sbx-vmm): a failed bind takes
 * back what it registered; a bound queue's eventfd reaches queue_notify on the
 * loop. */
static void test_kicks(struct td *t, struct virtio_mmio_dev *dev)
{
    struct evloop *loop = evloop_new();
    pthread_t thread;
    int before;

    CHECK(loop && virtio_mmio_of_range(&t->bus.ranges[0]) == dev);
    reg_log = (typeof(reg_log)){ .fail_at = 2 };
    CHECK(virtio_mmio_bind_kicks(dev, loop, fake_register, NULL) == -ENOSYS);
    CHECK(reg_log.calls == 3 && reg_log.assign[0] && reg_log.assign[1] && !reg_log.assign[2]);
    CHECK(reg_log.fd[2] == reg_log.fd[0] && reg_log.match[2] == 0);
    reg_log = (typeof(reg_log)){ 0 };
    CHECK(virtio_mmio_bind_kicks(dev, loop, fake_register, NULL) == 0);
    CHECK(reg_log.calls == 2 && reg_log.gpa[1] == TD_BASE + VIRTIO_MMIO_QUEUE_NOTIFY);
    CHECK(reg_log.match[0] == 0 && reg_log.match[1] == 1 && reg_log.fd[0] != reg_log.fd[1]);
    CHECK(pthread_create(&thread, NULL, td_loop_main, loop) == 0);
    virtio_mmio_lock(dev);
    before = dummy.notifies;
    virtio_mmio_unlock(dev);
    CHECK(eventfd_write(reg_log.fd[1], 1) == 0);
    for (long end = td_now_ms() + 5000; td_now_ms() < end;) {
        virtio_mmio_lock(dev);
        int now = dummy.notifies, q = dummy.last_notify;
        virtio_mmio_unlock(dev);
        if (now == before + 1 && q == 1)
            break;
        usleep(1000);
    }
    virtio_mmio_lock(dev);
    CHECK(dummy.notifies == before + 1 && dummy.last_notify == 1);
    virtio_mmio_unlock(dev);
    evloop_stop(loop, 0);
    pthread_join(thread, NULL);
    virtio_mmio_destroy(dev); /* unbinds: the loop must still exist */
    evloop_free(loop);
}

static void test_device_error_and_reset(struct td *t, struct virtio_mmio_dev *dev)
{
    struct td_queue *q = &t->q[0];
    int resets = dummy.resets;

    /* A malformed chain (address outside memory) puts the device in NEEDS_RESET. */
    td_desc(t, q, 0, TD_MEM_SIZE - 8, 64, VRING_DESC_F_WRITE, 0);
    td_publish(t, q, 0);
    td_kick(t, 0);
    CHECK(td_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    CHECK(td_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
    virtio_mmio_lock(dev);
    CHECK(virtio_mmio_queue(dev, 0) == NULL);
    virtio_mmio_unlock(dev);
    int notifies = dummy.notifies;
    td_kick(t, 1);
    CHECK(dummy.notifies == notifies); /* no more work until reset */
    /* Reset clears everything and tells the device. */
    td_wr(t, VIRTIO_MMIO_STATUS, 0);
    CHECK(dummy.resets == resets + 1);
    CHECK(td_rd(t, VIRTIO_MMIO_STATUS) == 0 && td_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
    td_wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
    CHECK(td_rd(t, VIRTIO_MMIO_QUEUE_READY) == 0);
    /* And the device works again after a fresh initialisation. */
    CHECK(td_probe(t, DUMMY_ID, V1, 2, 8) == ALL_OK);
    /* A failing activate means NEEDS_RESET. */
    dummy.fail_activate = 1;
    td_wr(t, VIRTIO_MMIO_STATUS, 0);
    CHECK(td_probe(t, DUMMY_ID, V1, 2, 8) == (ALL_OK | VIRTIO_CONFIG_S_NEEDS_RESET));
    dummy.fail_activate = 0;
}

static void test_bad_queue_setup(struct td *t)
{
    td_wr(t, VIRTIO_MMIO_STATUS, 0);
    td_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
    td_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                 VIRTIO_CONFIG_S_FEATURES_OK);
    td_wr(t, VIRTIO_MMIO_QUEUE_SEL, 0);
    td_wr(t, VIRTIO_MMIO_QUEUE_NUM, 128); /* above NUM_MAX 64 */
    td_wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
    CHECK(td_rd(t, VIRTIO_MMIO_QUEUE_READY) == 0);
    CHECK(td_rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
    td_wr(t, VIRTIO_MMIO_STATUS, 0);
    CHECK(td_rd(t, VIRTIO_MMIO_STATUS) == 0);
}

int main(void)
{
    static struct td t;
    struct virtio_mmio_dev *dev;

    td_init(&t);
    CHECK(!virtio_mmio_create(&t.bus, TD_BASE, TD_GSI, &t.irq, &t.mem,
                              &(struct virtio_dev_ops){ .name = "bad", .queue_max_size = 3 },
                              NULL));
    dev = virtio_mmio_create(&t.bus, TD_BASE, TD_GSI, &t.irq, &t.mem, &dummy_ops, NULL);
    CHECK(dev);
    CHECK(!virtio_mmio_create(&t.bus, TD_BASE + 0x100, TD_GSI, &t.irq, &t.mem, &dummy_ops, NULL));
    CHECK(errno == EEXIST);
    test_identity_and_layout(&t, dev);
    test_feature_negotiation(&t);
    test_queues_and_interrupts(&t, dev);
    test_device_error_and_reset(&t, dev);
    test_bad_queue_setup(&t);
    td_probe(&t, DUMMY_ID, V1 | DUMMY_FEATURE, 2, 16);
    test_kicks(&t, dev);
    free(t.mem_buf);
    printf("test_virtio_mmio: ok\n");
    return 0;
}
