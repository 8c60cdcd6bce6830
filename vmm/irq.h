/* Interrupt lines from device models to the guest's interrupt controller.
 *
 * In sbx-vmm the chip is KVM's in-kernel IOAPIC/PIC (KVM_IRQ_LINE); in unit tests
 * it is whatever records the calls. Safe to call from any thread. */
#ifndef SBX_VMM_IRQ_H
#define SBX_VMM_IRQ_H

struct irq_chip {
    /* Sets GSI gsi to level (0 or 1). Returns 0 or negative errno. */
    int (*set_level)(void *ctx, unsigned gsi, int level);
    void *ctx;
};

/* An edge on gsi: raise then lower (ISA devices and virtio-mmio use edges). */
static inline int irq_pulse(const struct irq_chip *chip, unsigned gsi)
{
    int rc = chip->set_level(chip->ctx, gsi, 1);

    if (rc == 0)
        rc = chip->set_level(chip->ctx, gsi, 0);
    return rc;
}

#endif
