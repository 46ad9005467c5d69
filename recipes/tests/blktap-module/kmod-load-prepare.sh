#!/bin/bash
# On the host, before the VM boots: build the tap check against the
# module's own ioctl ABI (include/linux/blktap.h of the tree under test), as
# a static program the VM runs without a C library of its own.
set -u
fail() { echo "FAIL: $*"; exit 1; }
header=$SULTANA_SRC/include/linux/blktap.h
[ -f "$header" ] || fail "no $header: the module's ioctl ABI"
command -v cc >/dev/null || { echo "no C compiler on the host for the tap check"; exit 99; }
# The ioctl numbers, flags and the two structures the control and ring
# devices take; the rest of the header needs the kernel's Xen ring macros.
{
    echo '/* extracted from the module under test: include/linux/blktap.h */'
    grep -E '^#define (BLKTAP_IOCTL_|BLKTAP2_IOCTL_|BLKTAP_DEVICE_FLAG_)' "$header"
    sed -n '/^struct blktap_info {/,/^};/p; /^struct blktap_device_info {/,/^};/p' "$header"
} >"$SULTANA_WORK/blktap-abi.h"
for name in BLKTAP_IOCTL_ALLOC_TAP BLKTAP_IOCTL_FREE_TAP BLKTAP_IOCTL_CREATE_DEVICE BLKTAP_IOCTL_REMOVE_DEVICE \
    'struct blktap_info' 'struct blktap_device_info'; do
    grep -q "$name" "$SULTANA_WORK/blktap-abi.h" || fail "$header does not define $name"
done
cat >"$SULTANA_WORK/tapcheck.c" <<'C'
/* Allocate a tap, create its block device with a capacity, check the
 * kernel's view of it, remove it, free the tap: tap-ctl's path through
 * the blktap2 module, without tapdisk. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "blktap-abi.h"

static int fail(const char *what)
{
    printf("FAIL: %s: %s\n", what, strerror(errno));
    return 1;
}

/* The module's own naming: tda..tdz, tdaa.. */
static void disk_name(unsigned int minor, char *out, size_t size)
{
    if (minor < 26)
        snprintf(out, size, "td%c", 'a' + minor % 26);
    else
        snprintf(out, size, "td%c%c", 'a' + minor / 26 - 1, 'a' + minor % 26);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: tapcheck CONTROL-DEVICE SECTORS\n");
        return 2;
    }
    unsigned long long sectors = strtoull(argv[2], NULL, 10);
    int control = open(argv[1], O_RDWR);
    if (control < 0)
        return fail(argv[1]);
    struct blktap_info info;
    memset(&info, 0, sizeof(info));
    if (ioctl(control, BLKTAP_IOCTL_ALLOC_TAP, &info) < 0)
        return fail("BLKTAP_IOCTL_ALLOC_TAP");
    printf("allocated tap %u (ring major %u, device major %u)\n", info.ring_minor, info.ring_major, info.bdev_major);

    char ring_path[64];
    snprintf(ring_path, sizeof(ring_path), "/tmp/blktap-ring-%u", info.ring_minor);
    unlink(ring_path);
    if (mknod(ring_path, S_IFCHR | 0600, makedev(info.ring_major, info.ring_minor)) < 0)
        return fail("mknod of the ring device");
    int ring = open(ring_path, O_RDWR);
    if (ring < 0)
        return fail(ring_path);
    long page = sysconf(_SC_PAGESIZE);
    void *shared = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, ring, 0);
    if (shared == MAP_FAILED)
        return fail("mmap of the ring");

    struct blktap_device_info params;
    memset(&params, 0, sizeof(params));
    params.capacity = sectors;
    params.sector_size = 512;
    if (ioctl(ring, BLKTAP_IOCTL_CREATE_DEVICE, &params) < 0)
        return fail("BLKTAP_IOCTL_CREATE_DEVICE");
    char name[16], sys[64], text[64] = "";
    disk_name(info.ring_minor, name, sizeof(name));
    snprintf(sys, sizeof(sys), "/sys/block/%s/size", name);
    FILE *f = fopen(sys, "r");
    if (!f)
        return fail(sys);
    if (!fgets(text, sizeof(text), f))
        text[0] = 0;
    fclose(f);
    unsigned long long seen = strtoull(text, NULL, 10);
    printf("created /dev/%s: %llu sectors in %s\n", name, seen, sys);
    if (seen != sectors) {
        printf("FAIL: %s has %llu sectors, not %llu\n", name, seen, sectors);
        return 1;
    }

    if (ioctl(ring, BLKTAP_IOCTL_REMOVE_DEVICE, 0) < 0)
        return fail("BLKTAP_IOCTL_REMOVE_DEVICE");
    snprintf(sys, sizeof(sys), "/sys/block/%s", name);
    if (access(sys, F_OK) == 0) {
        printf("FAIL: %s is still there after BLKTAP_IOCTL_REMOVE_DEVICE\n", sys);
        return 1;
    }
    printf("removed /dev/%s\n", name);
    munmap(shared, page);
    close(ring);
    unlink(ring_path);
    if (ioctl(control, BLKTAP_IOCTL_FREE_TAP, (unsigned long)info.ring_minor) < 0)
        return fail("BLKTAP_IOCTL_FREE_TAP");
    printf("freed tap %u\n", info.ring_minor);
    close(control);
    return 0;
}
C
cc -O2 -Wall -static -I"$SULTANA_WORK" -o "$SULTANA_WORK/tapcheck" "$SULTANA_WORK/tapcheck.c" ||
    { echo "cannot build the tap check (a static C library is needed: Debian libc6-dev)"; exit 99; }
echo "built the tap check against $header"
