/* 16550A-compatible UART (the guest's ttyS0) on a port range with an ISA IRQ.
 * The register model is pure (runs in unit tests); output goes to a file
 * descriptor, input is pushed by the host side with uart_push_input. */
#ifndef SBX_VMM_UART8250_H
#define SBX_VMM_UART8250_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "irq.h"

#define UART_RX_FIFO 1024

struct uart8250 {
    pthread_mutex_t lock;
    const struct irq_chip *irq;
    unsigned gsi;
    int out_fd;                       /* -1: output discarded */
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    int thr_empty_pending;            /* THRE interrupt waiting for an IIR read */
    int irq_level;
    uint8_t rx[UART_RX_FIFO];
    unsigned rx_head, rx_len;
    void (*rx_space)(void *opaque);   /* called (with lock held) when the FIFO drains */
    void *rx_space_opaque;
};

extern const struct bus_ops uart8250_ops;

/* Initialises a UART writing its transmitted bytes to out_fd (-1: discard). */
void uart8250_init(struct uart8250 *u, const struct irq_chip *irq, unsigned gsi, int out_fd);

/* Queues received bytes; returns how many fit (the rest must be offered again after
 * rx_space is called). Safe from any thread. */
size_t uart8250_push_input(struct uart8250 *u, const uint8_t *data, size_t len);

#endif
