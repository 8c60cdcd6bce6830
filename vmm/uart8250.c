/* 16550A UART register model (National Semiconductor PC16550D data sheet):
 * THR/RBR, IER, IIR/FCR, LCR, MCR, LSR, MSR, SCR and the divisor latch. */
#include "uart8250.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

enum { REG_DATA, REG_IER, REG_IIR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR };

#define IER_RDI   0x01
#define IER_THRI  0x02
#define IIR_NONE  0x01
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_FIFO  0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB  0x80
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define MCR_LOOP  0x10
#define MSR_IDLE  0xb0   /* DCD, DSR, CTS */

void uart8250_init(struct uart8250 *u, const struct irq_chip *irq, unsigned gsi, int out_fd)
{
    memset(u, 0, sizeof(*u));
    pthread_mutex_init(&u->lock, NULL);
    u->irq = irq;
    u->gsi = gsi;
    u->out_fd = out_fd;
    u->dll = 12;  /* 9600 baud */
    u->mcr = 0x08;
}

static uint8_t uart_iir(const struct uart8250 *u)
{
    uint8_t fifo = (u->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

    if ((u->ier & IER_RDI) && u->rx_len)
        return IIR_RDI | fifo;
    if ((u->ier & IER_THRI) && u->thr_empty_pending)
        return IIR_THRI | fifo;
    return IIR_NONE | fifo;
}

/* Drives the IRQ line to match the pending state: edges happen on 0->1. */
static void uart_update_irq(struct uart8250 *u)
{
    int level = uart_iir(u) != (IIR_NONE | ((u->fcr & FCR_ENABLE) ? IIR_FIFO : 0));

    if (level == u->irq_level)
        return;
    u->irq_level = level;
    if (u->irq)
        u->irq->set_level(u->irq->ctx, u->gsi, level);
}

static void uart_rx_put(struct uart8250 *u, uint8_t byte)
{
    if (u->rx_len == UART_RX_FIFO)
        return;
    u->rx[(u->rx_head + u->rx_len) % UART_RX_FIFO] = byte;
    u->rx_len++;
}

static uint8_t uart_rx_get(struct uart8250 *u)
{
    if (!u->rx_len)
        return 0;
    uint8_t byte = u->rx[u->rx_head];
    u->rx_head = (u->rx_head + 1) % UART_RX_FIFO;
    if (--u->rx_len == 0 && u->rx_space)
        u->rx_space(u->rx_space_opaque);
    return byte;
}

static void uart_transmit(struct uart8250 *u, uint8_t byte)
{
    if (u->mcr & MCR_LOOP) {
        uart_rx_put(u, byte);
    } else if (u->out_fd >= 0) {
        ssize_t n;
        do
            n = write(u->out_fd, &byte, 1);
        while (n < 0 && errno == EINTR);
    }
    u->thr_empty_pending = 1;
}

static uint8_t uart_read_reg(struct uart8250 *u, unsigned reg)
{
    int dlab = u->lcr & LCR_DLAB;
    uint8_t v;

    switch (reg) {
    case REG_DATA: return dlab ? u->dll : uart_rx_get(u);
    case REG_IER: return dlab ? u->dlm : u->ier;
    case REG_IIR:
        v = uart_iir(u);
        if ((v & 0x0f) == IIR_THRI)
            u->thr_empty_pending = 0;
        return v;
    case REG_LCR: return u->lcr;
    case REG_MCR: return u->mcr;
    case REG_LSR: return LSR_THRE | LSR_TEMT | (u->rx_len ? LSR_DR : 0);
    case REG_MSR:
        if (u->mcr & MCR_LOOP)  /* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
            return (uint8_t)(((u->mcr & 0x1) << 5) | ((u->mcr & 0x2) << 3) |
                             ((u->mcr & 0x4) << 4) | ((u->mcr & 0x8) << 4));
        return MSR_IDLE;
    default: return u->scr;
    }
}

static void uart_write_reg(struct uart8250 *u, unsigned reg, uint8_t v)
{
    int dlab = u->lcr & LCR_DLAB;

    switch (reg) {
    case REG_DATA:
        if (dlab)
            u->dll = v;
        else
            uart_transmit(u, v);
        break;
    case REG_IER:
        if (dlab) {
            u->dlm = v;
            break;
        }
        /* Enabling THRI with an empty THR raises it at once, as real 16550s do. */
        if (!(u->ier & IER_THRI) && (v & IER_THRI))
            u->thr_empty_pending = 1;
        u->ier = v & 0x0f;
        break;
    case REG_IIR:
        u->fcr = v & 0xc9;
        if ((v & FCR_CLEAR_RX) && u->rx_len) {
            u->rx_len = 0;
            if (u->rx_space)
                u->rx_space(u->rx_space_opaque);
        }
        break;
    case REG_LCR: u->lcr = v; break;
    case REG_MCR: u->mcr = v & 0x1f; break;
    case REG_SCR: u->scr = v; break;
    default: break;  /* LSR and MSR are read-only */
    }
}

static void uart_bus_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
    struct uart8250 *u = opaque;

    memset(data, 0, len);
    pthread_mutex_lock(&u->lock);
    *(uint8_t *)data = uart_read_reg(u, (unsigned)offset & 7);
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
}

static void uart_bus_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
    struct uart8250 *u = opaque;

    (void)len;
    pthread_mutex_lock(&u->lock);
    uart_write_reg(u, (unsigned)offset & 7, *(const uint8_t *)data);
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
}

const struct bus_ops uart8250_ops = { .read = uart_bus_read, .write = uart_bus_write };

size_t uart8250_push_input(struct uart8250 *u, const uint8_t *data, size_t len)
{
    size_t n = 0;

    pthread_mutex_lock(&u->lock);
    while (n < len && u->rx_len < UART_RX_FIFO)
        uart_rx_put(u, data[n++]);
    uart_update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return n;
}
