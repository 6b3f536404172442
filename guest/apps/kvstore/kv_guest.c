/* kvstore guest: the kvstore core served over lwIP raw TCP, its log on the domain's first disk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_blockdev.h"
#include "kv_core.h"
#include "kv_lwip.h"
#include "tandem_guest.h"
#include "tandem_net.h"

/*
 * One loop (tandem_net.h): a round of input runs the commands of every
 * connection that sent something (kv_lwip feeds them to the core), then
 * kv_lwip_poll() commits: the round's log records are written and the disk
 * is flushed once for all of them (group commit). The core releases replies
 * only after that flush returned; kv_lwip then queues them on their TCP
 * connections. docs/guest-net.md has the details.
 */

static void print_stats(const struct kv_store *store, const struct kv_lwip *srv,
                        const struct kv_blockdev *bd)
{
    struct kv_stats ks;
    struct tn_stats ns;

    kv_store_stats(store, &ks);
    tn_stats(&ns);
    printf("kvstore: %u connections, %llu keys, %llu mutations, %llu flushes (%llu us avg), "
           "%llu writes (%llu us avg), log %llu/%llu bytes, rx %llu tx %llu frames\n",
           kv_lwip_connections(srv), (unsigned long long)ks.keys, (unsigned long long)ks.mutations,
           bd->flushes, bd->flushes ? bd->flush_ns / bd->flushes / 1000 : 0, bd->writes,
           bd->writes ? bd->write_ns / bd->writes / 1000 : 0, (unsigned long long)ks.log_bytes,
           (unsigned long long)ks.log_capacity, (unsigned long long)ns.rx_frames,
           (unsigned long long)ns.tx_frames);
}

int main(int argc, char **argv)
{
    static struct kv_blockdev bd;
    struct kv_config kcfg = {.max_keys = 0, .send = kv_lwip_send};
    struct kv_store *store;
    struct kv_lwip *srv;
    struct kv_stats ks;
    long port = tg_cmdline_long("port", 7000);
    long max_keys = tg_cmdline_long("max_keys", 0);
    char err[256];
    const char *kerr = NULL;
    uint64_t t0, next_report, reported_mutations = ~0ull;
    int rc;

    (void)argc;
    (void)argv;
    if (port < 1 || port > 65535) {
        printf("kvstore: port=%ld: must be 1..65535\n", port);
        tg_halt(TANDEM_HALT_POWEROFF, 2, "kvstore: bad port= on the command line");
    }
    if (max_keys < 0 || max_keys > 0xffffffffL) {
        printf("kvstore: max_keys=%ld: must be 0 (default) .. 4294967295\n", max_keys);
        tg_halt(TANDEM_HALT_POWEROFF, 2, "kvstore: bad max_keys= on the command line");
    }
    kcfg.max_keys = (uint32_t)max_keys;
    if (kv_blockdev_open(&bd, 0, err, sizeof(err)) != 0) {
        printf("kvstore: %s\n", err);
        tg_halt(TANDEM_HALT_POWEROFF, 2, err);
    }

    /* Replay before the network comes up: no client may see a state older than the log. */
    t0 = tg_clock_ns();
    rc = kv_store_open(&kcfg, &bd.be, &store, &kerr);
    if (rc != 0) {
        snprintf(err, sizeof(err), "kvstore: cannot open the log on disk %u: %s (error %d)",
                 bd.handle, kerr ? kerr : "?", rc);
        printf("%s\n", err);
        tg_halt(TANDEM_HALT_POWEROFF, 3, err);
    }
    kv_store_stats(store, &ks);
    printf("kvstore: log on disk %u (%llu bytes): %llu records replayed, %llu keys, in %llu ms\n",
           bd.handle, (unsigned long long)bd.be.capacity, (unsigned long long)ks.replayed,
           (unsigned long long)ks.keys, (unsigned long long)((tg_clock_ns() - t0) / 1000000));

    tn_start("kvstore");
    rc = kv_lwip_listen(store, IP_ANY_TYPE, (uint16_t)port, &srv);
    if (rc != 0)
        tg_panic("kvstore: cannot listen on TCP port %ld (error %d)", port, rc);
    printf("kvstore: listening on port %ld\n", port);

    next_report = tg_clock_ns() + 10ull * 1000000000u;
    for (;;) {
        tn_process();
        kv_lwip_poll(srv);
        /* Every 10 s while the store changes: useful in the console log, silent when idle. */
        if (tg_clock_ns() >= next_report) {
            kv_store_stats(store, &ks);
            if (ks.mutations != reported_mutations)
                print_stats(store, srv, &bd);
            reported_mutations = ks.mutations;
            next_report = tg_clock_ns() + 10ull * 1000000000u;
        }
        /* A commit may leave writes for the next flush (compaction); do not sleep on them. */
        tn_wait(kv_store_busy(store) ? tg_clock_ns() + 1 : next_report);
    }
}
