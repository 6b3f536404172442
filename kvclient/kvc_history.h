/* kvclient history file (one line per request, times and result) and the checker over it. */
#ifndef KVC_HISTORY_H
#define KVC_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Format (docs/kvstore-protocol.md, "History file"), one record per line:
 *   # tandem-kvclient history v1 ...          header and comments
 *   R CONN ID SEND_US REPLY_US STATUS OP KEY ARG REPLY...
 *   E TIME_US CONN TEXT...                     connection events
 * REPLY_US, ARG and REPLY are "-" when absent. STATUS is ack (a reply came),
 * broken (the connection failed first) or timeout (no reply in time).
 */

enum kvc_opcode { KVC_SET, KVC_GET, KVC_DEL, KVC_INCR, KVC_NOPS };
enum kvc_status { KVC_ACK, KVC_BROKEN, KVC_TIMEOUT };

struct kvc_op {
    int conn;
    uint64_t id;
    int64_t send_us;
    int64_t reply_us; /* -1 when no reply came */
    enum kvc_status status;
    enum kvc_opcode op;
    char key[65];
    char arg[257];   /* SET value, "" otherwise */
    char reply[300]; /* reply line without "\n", "" when none */
};

const char *kvc_op_name(enum kvc_opcode op);
const char *kvc_status_name(enum kvc_status st);

/* Write one R record. */
void kvc_history_write(FILE *f, const struct kvc_op *op);

/*
 * Parse one history line into *op. Returns 1 for an R record, 0 for a line
 * that holds none (comment, event, empty), -1 for a malformed line.
 */
int kvc_history_parse(const char *line, struct kvc_op *op);

/*
 * Load every R record of a history file into a growing array. Returns 0 or
 * -1 with a message naming the file and line in err.
 */
int kvc_history_load(const char *path, struct kvc_op **ops, size_t *n, char *err, size_t errlen);

/*
 * Decide whether the final state of one key, as read back from the server,
 * keeps every acknowledged write of that key. ops are all history records of
 * the key in any order; observed is the value read back, or NULL when the key
 * was not found.
 *
 * Keys only touched by INCR are counters: the value must be at least the
 * largest acknowledged INCR result and at most that plus the number of
 * unacknowledged INCRs (more would mean increments applied twice). Other keys
 * are registers: the observed state must come from a write that was not
 * certainly followed by another certain write (one sent after the first was
 * certain). A write is certain once acknowledged, or once a GET returned its
 * value (a client saw it, so losing it is a loss too); writes without a reply
 * that nobody read may or may not have happened.
 *
 * Returns 1 when a certain write was lost (why says which and how), 0 when
 * the state is consistent, -1 when the key has no certain write.
 */
int kvc_check_key(const struct kvc_op *ops, size_t n, const char *observed, char *why,
                  size_t whylen);

#endif
