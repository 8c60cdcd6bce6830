/* uart8250: the 16550A register model driven through its bus ops the way Linux's
 * 8250 driver does, with a recording interrupt chip and a pipe as the output:
 * THR to the pipe, LSR, the divisor latch, THRI raised and cleared by an IIR read,
 * RX with LSR.DR and RDI, the FIFO's limit and drain callback, FIFO clearing,
 * loopback (MCR bit 4) and the scratch register. */
#include "../uart8250.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
                     __FILE__, __LINE__, #c); exit(1); } } while (0)

enum { DATA, IER, IIR, LCR, MCR, LSR, MSR, SCR };
#define FCR IIR
#define GSI 4

struct irq_rec {
    int level;
    unsigned raises, calls;
    unsigned last_gsi;
};

static int rec_set_level(void *ctx, unsigned gsi, int level)
{
    struct irq_rec *r = ctx;

    r->calls++;
    r->last_gsi = gsi;
    if (level && !r->level)
        r->raises++;
    r->level = level;
    return 0;
}

static struct irq_rec irq;
static const struct irq_chip chip = { .set_level = rec_set_level, .ctx = &irq };
static struct uart8250 uart;
static int pipe_rd = -1, pipe_wr = -1;
static unsigned drained;

static uint8_t rd(unsigned reg)
{
    uint8_t v = 0x5a;

    uart8250_ops.read(&uart, reg, &v, 1);
    return v;
}

static void wr(unsigned reg, uint8_t v)
{
    uart8250_ops.write(&uart, reg, &v, 1);
}

/* Whatever the UART has written to the pipe so far. */
static size_t drain_pipe(char *buf, size_t cap)
{
    ssize_t n = read(pipe_rd, buf, cap);

    if (n < 0) {
        CHECK(errno == EAGAIN);
        return 0;
    }
    return (size_t)n;
}

static void on_rx_space(void *opaque)
{
    (void)opaque;
    drained++;
}

static void setup(void)
{
    char junk[4096];

    if (pipe_rd >= 0)
        while (drain_pipe(junk, sizeof(junk)) > 0)
            ;
    memset(&irq, 0, sizeof(irq));
    drained = 0;
    uart8250_init(&uart, &chip, GSI, pipe_wr);
    uart.rx_space = on_rx_space;
}

static void test_reset_state(void)
{
    setup();
    CHECK(rd(LSR) == 0x60);                              /* THRE | TEMT */
    CHECK(rd(IIR) == 0x01);                              /* nothing pending, no FIFO */
    CHECK(rd(IER) == 0);
    CHECK(rd(LCR) == 0);
    CHECK(rd(MCR) == 0x08);
    CHECK(rd(MSR) == 0xb0);                              /* DCD, DSR, CTS */
    CHECK(irq.calls == 0);

    /* A wide read fills every byte: the register, then zeros. */
    uint8_t wide[4];
    memset(wide, 0xee, sizeof(wide));
    uart8250_ops.read(&uart, LSR, wide, 4);
    CHECK(wide[0] == 0x60 && wide[1] == 0 && wide[2] == 0 && wide[3] == 0);
}

static void test_transmit(void)
{
    char out[64];

    setup();
    wr(DATA, 'h');
    wr(DATA, 'i');
    wr(DATA, '\n');
    CHECK(drain_pipe(out, sizeof(out)) == 3 && memcmp(out, "hi\n", 3) == 0);
    CHECK(rd(LSR) & 0x20 && rd(LSR) & 0x40);             /* always ready to send */
    CHECK(irq.calls == 0);                               /* IER is 0 */

    /* LSR and MSR are read-only. */
    wr(LSR, 0);
    wr(MSR, 0);
    CHECK(rd(LSR) == 0x60 && rd(MSR) == 0xb0);

    /* Output discarded when there is nowhere to write it. */
    uart8250_init(&uart, NULL, GSI, -1);
    wr(DATA, 'x');
    wr(IER, 0x02);                                       /* no chip: nothing to call */
    CHECK(rd(IIR) == 0x02);
    CHECK(drain_pipe(out, sizeof(out)) == 0);
}

static void test_divisor_latch(void)
{
    char out[8];

    setup();
    wr(LCR, 0x83);                                       /* DLAB, 8N1 */
    CHECK(rd(DATA) == 12);                               /* 9600 baud at reset */
    CHECK(rd(IER) == 0);
    wr(DATA, 1);                                         /* 115200 baud */
    wr(IER, 0x00);
    CHECK(rd(DATA) == 1 && rd(IER) == 0);
    wr(IER, 0x02);                                       /* DLM, not IER */
    CHECK(rd(IER) == 0x02);
    CHECK(drain_pipe(out, sizeof(out)) == 0);            /* DLL writes are not output */
    wr(LCR, 0x03);
    CHECK(rd(LCR) == 0x03);
    CHECK(rd(IER) == 0);                                 /* the real IER was untouched */
    CHECK(irq.calls == 0);
    wr(DATA, 'z');
    CHECK(drain_pipe(out, sizeof(out)) == 1 && out[0] == 'z');
    wr(LCR, 0x83);
    CHECK(rd(DATA) == 1 && rd(IER) == 0x02);             /* the latch kept its value */
}

static void test_thr_interrupt(void)
{
    char out[8];

    setup();
    wr(IER, 0x02);                                       /* THRI with an empty THR */
    CHECK(irq.level == 1 && irq.raises == 1 && irq.last_gsi == GSI);
    CHECK(rd(IIR) == 0x02);                              /* reading IIR acknowledges it */
    CHECK(irq.level == 0);
    CHECK(rd(IIR) == 0x01);
    wr(DATA, 'a');                                       /* sent at once: THR empty again */
    CHECK(irq.level == 1 && irq.raises == 2);
    CHECK(drain_pipe(out, sizeof(out)) == 1);
    CHECK(rd(IIR) == 0x02 && irq.level == 0);
    wr(DATA, 'b');
    CHECK(irq.level == 1);
    wr(IER, 0x00);                                       /* masking drops the line */
    CHECK(irq.level == 0);
    CHECK(rd(IIR) == 0x01);
    wr(IER, 0x02);                                       /* re-enabling raises it again */
    CHECK(irq.level == 1 && irq.raises == 4);
    wr(IER, 0x02);                                       /* no new edge while pending */
    CHECK(irq.raises == 4);
    CHECK(rd(IER) == 0x02);
    wr(IER, 0xff);
    CHECK(rd(IER) == 0x0f);                              /* upper bits reserved */
}

static void test_receive(void)
{
    setup();
    CHECK(uart8250_push_input(&uart, (const uint8_t *)"ok", 2) == 2);
    CHECK(rd(LSR) & 0x01);                               /* DR */
    CHECK(irq.calls == 0);                               /* RDI not enabled */
    wr(IER, 0x01);
    CHECK(irq.level == 1);
    CHECK(rd(IIR) == 0x04);
    CHECK(irq.level == 1);                               /* an IIR read does not clear RDI */
    CHECK(rd(DATA) == 'o');
    CHECK(irq.level == 1 && (rd(LSR) & 0x01));
    CHECK(drained == 0);
    CHECK(rd(DATA) == 'k');
    CHECK(irq.level == 0 && !(rd(LSR) & 0x01));
    CHECK(drained == 1);                                 /* the host may offer more */
    CHECK(rd(DATA) == 0 && drained == 1);                /* empty: reads 0 */
    CHECK(rd(IIR) == 0x01);

    /* RDI has priority over THRI; both enabled. */
    wr(IER, 0x03);
    CHECK(rd(IIR) == 0x02);                              /* THRI pending from enabling it */
    CHECK(uart8250_push_input(&uart, (const uint8_t *)"x", 1) == 1);
    wr(DATA, '!');
    CHECK(rd(IIR) == 0x04);
    CHECK(rd(DATA) == 'x');
    CHECK(rd(IIR) == 0x02);
    CHECK(rd(IIR) == 0x01 && irq.level == 0);
    CHECK(uart8250_push_input(&uart, NULL, 0) == 0);
}

static void test_fifo_limit(void)
{
    static uint8_t in[UART_RX_FIFO + 500];

    setup();
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 13);
    wr(FCR, 0x01);                                       /* FIFO on */
    CHECK((rd(IIR) & 0xc0) == 0xc0);
    wr(IER, 0x01);
    CHECK(uart8250_push_input(&uart, in, sizeof(in)) == UART_RX_FIFO);
    CHECK(irq.level == 1 && irq.raises == 1);
    CHECK(uart8250_push_input(&uart, in, 1) == 0);       /* full */
    CHECK(rd(IIR) == 0xc4);
    for (size_t i = 0; i < 100; i++)
        CHECK(rd(DATA) == in[i]);
    /* Room again: the rest is taken, and the order kept across the ring's wrap. */
    CHECK(uart8250_push_input(&uart, in + UART_RX_FIFO, 100) == 100);
    for (size_t i = 100; i < UART_RX_FIFO + 100; i++)
        CHECK(rd(DATA) == in[i]);
    CHECK(!(rd(LSR) & 0x01) && irq.level == 0 && drained == 1);

    /* FCR bit 1 empties the receive FIFO. */
    CHECK(uart8250_push_input(&uart, in, 10) == 10);
    CHECK(irq.level == 1);
    wr(FCR, 0x03);
    CHECK(!(rd(LSR) & 0x01));
    CHECK(irq.level == 0);
    CHECK(rd(IIR) == 0xc1);
    wr(FCR, 0x00);
    CHECK(rd(IIR) == 0x01);
}

static void test_loopback(void)
{
    char out[8];

    setup();
    wr(MCR, 0x10);
    wr(IER, 0x01);
    wr(DATA, 'L');
    CHECK(drain_pipe(out, sizeof(out)) == 0);            /* not sent out */
    CHECK(rd(LSR) & 0x01);
    CHECK(irq.level == 1);
    CHECK(rd(DATA) == 'L');
    CHECK(irq.level == 0);
    /* Modem lines loop back: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
    wr(MCR, 0x1f);
    CHECK(rd(MCR) == 0x1f && rd(MSR) == 0xf0);
    wr(MCR, 0x11);
    CHECK(rd(MSR) == 0x20);
    wr(MCR, 0x12);
    CHECK(rd(MSR) == 0x10);
    wr(MCR, 0x14);
    CHECK(rd(MSR) == 0x40);
    wr(MCR, 0x18);
    CHECK(rd(MSR) == 0x80);
    wr(MCR, 0x10);
    CHECK(rd(MSR) == 0x00);
    wr(MCR, 0xff);
    CHECK(rd(MCR) == 0x1f);
    wr(MCR, 0x0b);                                       /* back to normal */
    CHECK(rd(MSR) == 0xb0);
    wr(DATA, 'N');
    CHECK(drain_pipe(out, sizeof(out)) == 1 && out[0] == 'N');
}

static void test_scratch(void)
{
    setup();
    CHECK(rd(SCR) == 0);
    for (unsigned v = 0; v < 256; v++) {
        wr(SCR, (uint8_t)v);
        CHECK(rd(SCR) == v);
    }
    /* Offsets wrap within the 8 registers. */
    uint8_t v = 0x42;
    uart8250_ops.write(&uart, 8 + SCR, &v, 1);
    CHECK(rd(SCR) == 0x42);
}

int main(void)
{
    int fds[2];

    CHECK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
    pipe_rd = fds[0];
    pipe_wr = fds[1];
    test_reset_state();
    test_transmit();
    test_divisor_latch();
    test_thr_interrupt();
    test_receive();
    test_fifo_limit();
    test_loopback();
    test_scratch();
    close(pipe_rd);
    close(pipe_wr);
    printf("test_uart8250: ok\n");
    return 0;
}
