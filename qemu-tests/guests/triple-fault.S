/* A "kernel" that triple-faults at once: loads an empty IDT and raises an
 * exception, which cannot be delivered (#GP, then #DF, then shutdown). Entered in
 * 64-bit mode like a Linux vmlinux; used to check that sbx-vmm reports it. */
    .text
    .globl _start
_start:
    cli
    lidt empty_idt(%rip)
    int3
1:  hlt
    jmp 1b

    .data
empty_idt:
    .word 0
    .quad 0
