/* blktest: block device round trips and refusals; mode=rw|write|verify|ro, seed=N. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tandem_dev.h"
#include "tandem_guest.h"

#define CHUNK (64 * 1024)
static uint8_t buf[CHUNK] __attribute__((aligned(4096)));
static uint8_t want[CHUNK] __attribute__((aligned(4096)));
static int failures;

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL: " __VA_ARGS__);                                                          \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* Deterministic pattern: every 8 bytes hold (seed, byte offset on the disk). */
static void pattern(uint8_t *p, uint64_t offset, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = ((uint64_t)seed << 40) ^ (offset + i);
        memcpy(p + i, &v, 8);
    }
}

/* Offsets the round trips use: start, an odd sector in the middle, the very end. */
static uint64_t spots(const struct tandem_device *dev, int i)
{
    uint64_t cap = dev->capacity;
    switch (i) {
    case 0:
        return 0;
    case 1:
        return (cap / 2 / 512 | 1) * 512 < cap - CHUNK ? (cap / 2 / 512 | 1) * 512 : 0;
    default:
        return cap - CHUNK;
    }
}

static void write_all(unsigned h, const struct tandem_device *dev, uint32_t seed)
{
    for (int i = 0; i < 3; i++) {
        uint64_t off = spots(dev, i);
        pattern(buf, off, CHUNK, seed);
        EXPECT(tg_block_write(h, off, buf, CHUNK) == 0, "write at %" PRIu64, off);
    }
    EXPECT(tg_block_flush(h) == 0, "flush");
}

static void verify_all(unsigned h, const struct tandem_device *dev, uint32_t seed)
{
    for (int i = 0; i < 3; i++) {
        uint64_t off = spots(dev, i);
        memset(buf, 0xee, CHUNK);
        EXPECT(tg_block_read(h, off, buf, CHUNK) == 0, "read at %" PRIu64, off);
        pattern(want, off, CHUNK, seed);
        EXPECT(memcmp(buf, want, CHUNK) == 0, "data at %" PRIu64 " differs from seed %u", off,
               seed);
    }
}

static void bad_requests(unsigned h, const struct tandem_device *dev)
{
    uint64_t cap = dev->capacity;

    EXPECT(tg_block_read(h, cap, buf, 512) == TANDEM_HC_EINVAL, "read at capacity accepted");
    EXPECT(tg_block_read(h, cap - 512, buf, 1024) == TANDEM_HC_EINVAL, "read past end accepted");
    EXPECT(tg_block_read(h, UINT64_MAX - 511, buf, 1024) == TANDEM_HC_EINVAL,
           "wrapping offset accepted");
    EXPECT(tg_block_read(h, 100, buf, 512) == TANDEM_HC_EINVAL, "misaligned offset accepted");
    EXPECT(tg_block_read(h, 0, buf, 100) == TANDEM_HC_EINVAL, "misaligned length accepted");
    EXPECT(tg_block_write(h, 0, buf, 513) == TANDEM_HC_EINVAL, "misaligned write accepted");
    EXPECT(tg_block_read(h, 0, buf, 0) == 0, "empty read refused");
    EXPECT(tg_block_read(99, 0, buf, 512) == TANDEM_HC_EINVAL, "bad handle accepted");
    EXPECT(tg_block_flush(99) == TANDEM_HC_EINVAL, "flush on a bad handle accepted");
    int vif = tg_dev_find(TANDEM_DEVICE_VIF, 0);
    if (vif >= 0)
        EXPECT(tg_block_read((unsigned)vif, 0, buf, 512) == TANDEM_HC_EINVAL,
               "block read on a vif accepted");
}

int main(int argc, char **argv)
{
    char mode[16] = "rw";
    uint32_t seed = (uint32_t)tg_cmdline_long("seed", 1);
    int h = tg_dev_find(TANDEM_DEVICE_DISK, 0);
    const struct tandem_device *dev;

    (void)argc;
    (void)argv;
    tg_cmdline_str("mode", mode, sizeof(mode));
    if (h < 0) {
        printf("FAIL: no disk in the boot info\n");
        return 1;
    }
    dev = tg_dev((unsigned)h);
    printf("disk %s handle %d capacity %" PRIu64 " sector %u flags %u\n", dev->name, h,
           dev->capacity, dev->sector_size, dev->flags);
    EXPECT(dev->sector_size == 512, "sector size %u", dev->sector_size);
    EXPECT(dev->capacity >= 4 * CHUNK, "disk too small for the test");
    if (failures)
        return 1;

    if (strcmp(mode, "ro") == 0) {
        EXPECT(dev->flags & TANDEM_DEVICE_F_READONLY, "read-only flag missing");
        EXPECT(tg_block_write((unsigned)h, 0, buf, 512) == TANDEM_HC_EROFS,
               "write to a read-only disk not refused with EROFS");
        verify_all((unsigned)h, dev, seed);
    } else {
        EXPECT(!(dev->flags & TANDEM_DEVICE_F_READONLY), "read-write disk flagged read-only");
        if (strcmp(mode, "verify") != 0)
            write_all((unsigned)h, dev, seed);
        if (strcmp(mode, "write") != 0)
            verify_all((unsigned)h, dev, seed);
        bad_requests((unsigned)h, dev);
    }
    if (failures)
        return 1;
    printf("SUCCESS\n");
    return 0;
}
