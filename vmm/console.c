/* The serial console: a 16550A on COM1 (0x3f8, IRQ 4) whose output goes to stdout,
 * a file or nowhere, and whose input comes from stdin when the console is stdio. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "devices.h"
#include "log.h"
#include "uart8250.h"
#include "vm.h"

#define COM1_PORT 0x3f8
#define COM1_IRQ  4

struct console {
    struct uart8250 uart;
    struct vm *vm;
    int in_fd;
    uint8_t pending[256];
    size_t pending_len, pending_off;
};

static struct console the_console;

static void console_offer(struct console *c)
{
    while (c->pending_off < c->pending_len) {
        size_t n = uart8250_push_input(&c->uart, c->pending + c->pending_off,
                                       c->pending_len - c->pending_off);
        if (n == 0)
            return;
        c->pending_off += n;
    }
    c->pending_off = c->pending_len = 0;
}

/* Runs on the loop thread: stdin readable. */
static void console_input(void *opaque, int fd, uint32_t events)
{
    struct console *c = opaque;

    (void)events;
    if (c->pending_len) {
        console_offer(c);
        if (c->pending_len)
            return;
    }
    ssize_t n = read(fd, c->pending, sizeof(c->pending));
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        evloop_del(c->vm->loop, fd);  /* EOF: the guest just sees no more input */
        return;
    }
    c->pending_len = (size_t)n;
    console_offer(c);
    if (c->pending_len)  /* FIFO full: wait for the guest to drain it */
        evloop_mod(c->vm->loop, fd, 0);
}

static void console_resume(void *opaque)
{
    struct console *c = opaque;

    console_offer(c);
    if (!c->pending_len)
        evloop_mod(c->vm->loop, c->in_fd, EPOLLIN);
}

/* Called by the UART, lock held, on a vCPU thread, when the guest drained the FIFO. */
static void console_rx_space(void *opaque)
{
    struct console *c = opaque;

    if (c->pending_len)
        evloop_call(c->vm->loop, console_resume, c);
}

static int console_open_output(const char *where, char *err, size_t errlen)
{
    if (strcmp(where, "stdio") == 0)
        return STDOUT_FILENO;
    if (strcmp(where, "none") == 0)
        return -1;
    int fd = open(where, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        snprintf(err, errlen, "cannot open console file %s: %s", where, strerror(errno));
    return fd < 0 ? -2 : fd;
}

int console_setup(struct vm *vm, const struct vmm_options *opts, char *err, size_t errlen)
{
    struct console *c = &the_console;
    int out = console_open_output(opts->console, err, errlen);

    if (out == -2)
        return -EINVAL;
    uart8250_init(&c->uart, &vm->irq, COM1_IRQ, out);
    c->vm = vm;
    c->in_fd = -1;
    c->uart.rx_space = console_rx_space;
    c->uart.rx_space_opaque = c;
    int rc = bus_register(&vm->pio, COM1_PORT, 8, &uart8250_ops, &c->uart, "com1");
    if (rc < 0) {
        snprintf(err, errlen, "console: cannot register COM1");
        return rc;
    }
    if (strcmp(opts->console, "stdio") == 0 &&
        evloop_add(vm->loop, STDIN_FILENO, EPOLLIN, console_input, c) == 0) {
        c->in_fd = STDIN_FILENO;
    }
    return 0;
}
