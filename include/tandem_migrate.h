/* Live migration: transports (remote shell, PSK TCP) and both sides of the interlock. */
#ifndef TANDEM_MIGRATE_H
#define TANDEM_MIGRATE_H

#include <stdint.h>

#include "tandem_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Protocol and phases: docs/migration.md. The sender drives its domain's
 * VMM (`save` with the connection as the stream fd), the receiver starts a
 * VMM reading the stream from the same connection; interlock messages
 * before and after the stream decide which copy runs. Whatever fails,
 * at most one copy runs: the source resumes unless the receiver confirmed
 * it holds the whole state, and the receiver destroys its copy unless the
 * sender told it to run.
 */

#define TANDEM_MIGRATE_PROTO_VERSION 2u
#define TANDEM_MIGRATE_KEY_BYTES 32u
/* Default remote command: `ssh HOST tandem migrate-receive` (docs/migration.md). */
#define TANDEM_MIGRATE_DEFAULT_SHELL "ssh"
#define TANDEM_MIGRATE_DEFAULT_RECEIVER "tandem migrate-receive"

/* An open connection to the other side (either transport). */
typedef struct tandem_migrate_conn tandem_migrate_conn;

/*
 * Remote shell transport, sender side. Runs argv (argv[0] searched in
 * PATH) with its stdin and stdout on pipes; its stderr is inherited, so
 * the receiver's messages reach the user. 0 or TANDEM_ERR_IO.
 */
int tandem_migrate_conn_spawn(tandem_ctx *ctx, char *const argv[], tandem_migrate_conn **out);

/*
 * The remote-shell command line: the words of shell_cmd (NULL = "ssh";
 * "" = none, xl's `-s ''`: then host's words are the command), split on
 * blanks (no quoting: arguments with blanks belong in a wrapper script),
 * then host as one word (unless NULL or ""), then
 * the words of receiver_cmd (NULL = "tandem migrate-receive"), then
 * extra_args. shell_cmd "ip netns exec", host "ns-b", receiver_cmd
 * "env TANDEM_RUNDIR=/x tandem migrate-receive" gives
 * `ip netns exec ns-b env TANDEM_RUNDIR=/x tandem migrate-receive`.
 * *argv_out is a NULL-terminated malloc'd vector; free with
 * tandem_migrate_argv_free. TANDEM_ERR_INVAL if the result is empty.
 */
int tandem_migrate_shell_argv(tandem_ctx *ctx, const char *shell_cmd, const char *host,
                              const char *receiver_cmd, char *const extra_args[], char ***argv_out);
void tandem_migrate_argv_free(char **argv);

/* Receiver side of the remote shell: interlock on rfd/wfd (stdin/stdout). Never fails but NOMEM. */
int tandem_migrate_conn_stdio(tandem_ctx *ctx, int rfd, int wfd, tandem_migrate_conn **out);

/*
 * Load a pre-shared key: the file must be a regular file, not readable or
 * writable by group or others, holding at least 16 bytes (e.g.
 * `head -c 32 /dev/urandom > F; chmod 600 F`). The key is BLAKE2b-256 of
 * the contents, so any length and format works. Messages name the file.
 */
int tandem_migrate_key_load(tandem_ctx *ctx, const char *path,
                            uint8_t key[TANDEM_MIGRATE_KEY_BYTES]);

/*
 * TCP transport. addr is "HOST:PORT", "[V6]:PORT" (numeric or resolvable).
 * connect: open the connection and run the sender half of the mutual
 * PSK handshake (docs/migration.md "Authentication"); TANDEM_ERR_PERM
 * with a message saying the key did not match when the receiver rejects
 * the key or fails to prove it knows it.
 * listen: a listening socket (SO_REUSEADDR) in *fd_out.
 * accept: wait up to timeout_ms (<= 0: forever) for one connection and
 * run the receiver half of the handshake; TANDEM_ERR_PERM on a wrong key
 * (the sender is told so before the connection is closed).
 */
int tandem_migrate_conn_connect(tandem_ctx *ctx, const char *addr,
                                const uint8_t key[TANDEM_MIGRATE_KEY_BYTES],
                                tandem_migrate_conn **out);
int tandem_migrate_listen(tandem_ctx *ctx, const char *addr, int *fd_out);
int tandem_migrate_accept(tandem_ctx *ctx, int listen_fd,
                          const uint8_t key[TANDEM_MIGRATE_KEY_BYTES], int timeout_ms,
                          tandem_migrate_conn **out);

/*
 * Close the connection; a spawned remote shell gets its stdin closed and
 * is waited for (up to 5 s, then SIGKILL). Returns the shell's exit
 * status (0 when there was none). NULL is fine.
 */
int tandem_migrate_conn_close(tandem_migrate_conn *c);

/* What the sender asks of its VMM's `save` (docs/control.md). */
struct tandem_migrate_params {
    uint32_t downtime_ms;    /* target for the final copy; 0 = 5 */
    uint32_t bandwidth_mbps; /* MB/s cap, 0 = unlimited */
    uint32_t max_iters;      /* pre-copy rounds at most, 0 = 30 */
    const char *compression; /* "none" (NULL), "lz4", "zstd" */
    int copy_storage;        /* copy disk contents while paused (docs/migration.md "Storage"):
                                the receiver creates each disk file, which must not exist there */
    int leave_paused;        /* the receiver leaves the domain paused after the hand-over */
    int encrypt;             /* seal the stream too (TCP only; docs/migration.md "Encryption") */
};

struct tandem_migrate_progress {
    const char *phase; /* "precopy", "final", or an interlock phase name */
    uint64_t iter, pages_sent, pages_total, dirty, bytes;
    double rate_mbps;
};
typedef void tandem_migrate_progress_cb(void *opaque, const struct tandem_migrate_progress *p);

struct tandem_migrate_stats {
    uint64_t total_ms, downtime_ms, bytes, pages, iterations;
    uint64_t downtime_us;          /* the same downtime in µs (0 if the VMM did not say) */
    uint64_t handover_ms;          /* paused at the source until the receiver said it runs */
    uint64_t storage_bytes;        /* disk bytes copied (--copy-storage), zero chunks not counted */
    uint64_t storage_rounds;       /* --copy-storage: rounds of dirty blocks while the guest ran */
    uint64_t storage_dirty_blocks; /* blocks those rounds re-sent (written during the copy) */
    uint64_t storage_final_bytes;  /* of storage_bytes, sent with the source paused */
    uint64_t storage_final_ms;     /* how long that took (part of handover_ms) */
    uint32_t remote_domid;
    int in_doubt; /* `go` was sent but `running` never came: see tandem_domain_migrate_resolve */
    int source_was_running; /* else it was paused when the migration began */
};

/*
 * Sender: migrate domain domid over conn (already open, handshake done for
 * TCP). Runs the interlock in order (docs/migration.md): hello, config,
 * ready, stream (pre-copy + final copy), have-state, go, running, then
 * destroys the source. progress (may be NULL) is called from this thread
 * during the stream and at each phase. Outcomes:
 *  0: the domain runs on the receiver and the source is gone. A domain
 *    that was paused when the call began arrives paused (and stays paused
 *    here on failure).
 *  error before the receiver confirmed the whole state: the source runs
 *    as before (it is resumed), the message says which phase failed and why.
 *  error after `go` with no answer: TANDEM_ERR_BUSY and stats->in_doubt,
 *    the source is left PAUSED (it may be running on the receiver; the
 *    message says so).
 */
int tandem_domain_migrate_send(tandem_ctx *ctx, uint32_t domid, tandem_migrate_conn *conn,
                               const struct tandem_migrate_params *params,
                               tandem_migrate_progress_cb *progress, void *opaque,
                               struct tandem_migrate_stats *stats);

/* What tandem_domain_migrate_resolve found and did. */
enum tandem_migrate_resolution {
    TANDEM_MIGRATE_RESOLVED_THERE = 1, /* it runs on the receiver: the source was destroyed */
    TANDEM_MIGRATE_RESOLVED_HERE = 2,  /* it never ran there: the source was resumed */
};

/*
 * Settle a migration that ended in doubt (stats->in_doubt) by asking the
 * receiving host over a fresh connection conn (a remote shell running
 * `tandem migrate-receive --query`) whether domain `name` runs there.
 * Runs there: the source (domid, paused) is destroyed. Absent there, or
 * only its "NAME--incoming" copy (which only the receiver could have run):
 * the source is resumed (unless stats says it was paused to begin with). There but paused, or no
 * answer: nothing is done and TANDEM_ERR_BUSY says so. 0 with *outcome set otherwise.
 */
int tandem_domain_migrate_resolve(tandem_ctx *ctx, uint32_t domid, const char *name,
                                  const struct tandem_migrate_stats *stats,
                                  tandem_migrate_conn *conn, int *outcome);

/*
 * Receiver side of tandem_domain_migrate_resolve: answer one query on conn
 * with the state of the named domain on this host ("running", "paused",
 * "incoming", "none"). Creates and changes nothing.
 */
int tandem_migrate_query_serve(tandem_ctx *ctx, tandem_migrate_conn *conn);

/* Receiver log callback: one line of what happens (the CLI prints it to stderr). */
typedef void tandem_migrate_log_cb(void *opaque, const char *line);

/* Leave the migrated domain paused after `go` (tandem migrate-receive -p). */
#define TANDEM_MIGRATE_RECV_PAUSED 1u

/*
 * Receiver: serve one incoming migration on conn. Checks the config (name
 * free, kernel and bridges exist, shared disks identical), restores the
 * domain from the stream under the name "NAME--incoming", waits for go,
 * renames it to NAME, runs it and confirms. On any failure the incoming
 * domain is destroyed, the sender is told why (if it can be reached) and
 * the error returned. 0 with *domid_out on success.
 */
int tandem_domain_migrate_receive(tandem_ctx *ctx, tandem_migrate_conn *conn, unsigned flags,
                                  tandem_migrate_log_cb *log, void *opaque, uint32_t *domid_out);

#ifdef __cplusplus
}
#endif

#endif
