/* Remus output commit: a vif's frames held per epoch and released when the backup acknowledged it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm_remus.h"

/*
 * Every frame the guest transmits passes vmm_net_output() -> vif.out.send
 * (hypercall and ring paths alike), whatever its protocol: IPv4, IPv6,
 * ARP all wait here. A frame is stamped with the epoch it was sent in
 * (the checkpoint taken at the end of that epoch holds the state that
 * produced it) and leaves only at that epoch's commit.
 */
struct nb_frame {
    struct nb_frame *next;
    uint64_t epoch;
    size_t len;
    uint8_t data[];
};

struct vmm_netbuf {
    pthread_mutex_t lock;
    struct vmm *vm;
    struct vmm_net_output inner; /* where released frames go (the TAP) */
    struct nb_frame *head, *tail;
    uint64_t stamp; /* epoch of frames sent now */
    uint64_t bytes;
    struct vmm_netbuf_stats st;
};

void (*vmm_netbuf_full_hook)(struct vmm *vm);

static int nb_send(struct vmm_dev *d, const void *frame, size_t len)
{
    struct vmm_netbuf *nb = d->vif.out.opaque;
    struct nb_frame *f;
    bool full;

    pthread_mutex_lock(&nb->lock);
    full = nb->bytes + len > VMM_NETBUF_CAP;
    if (full)
        nb->st.stalls++;
    pthread_mutex_unlock(&nb->lock);
    if (full) {
        /* Nothing is dropped: the guest sees EAGAIN and retries; the epoch ends early. */
        if (vmm_netbuf_full_hook)
            vmm_netbuf_full_hook(nb->vm);
        return TANDEM_HC_EAGAIN;
    }
    f = malloc(sizeof(*f) + len);
    if (!f)
        return TANDEM_HC_EAGAIN;
    f->next = NULL;
    f->len = len;
    memcpy(f->data, frame, len);
    pthread_mutex_lock(&nb->lock);
    f->epoch = nb->stamp;
    if (nb->tail)
        nb->tail->next = f;
    else
        nb->head = f;
    nb->tail = f;
    nb->bytes += len;
    nb->st.held_frames++;
    nb->st.held_bytes = nb->bytes;
    pthread_mutex_unlock(&nb->lock);
    return 0;
}

/* Send (in order) every held frame of epochs <= epoch; all of them when epoch is UINT64_MAX. */
static void nb_release(struct vmm_dev *d, struct vmm_netbuf *nb, uint64_t epoch)
{
    struct nb_frame *list = NULL, **tailp = &list, *f;

    pthread_mutex_lock(&nb->lock);
    while (nb->head && nb->head->epoch <= epoch) {
        f = nb->head;
        nb->head = f->next;
        if (!nb->head)
            nb->tail = NULL;
        nb->bytes -= f->len;
        nb->st.held_frames--;
        f->next = NULL;
        *tailp = f;
        tailp = &f->next;
    }
    nb->st.held_bytes = nb->bytes;
    pthread_mutex_unlock(&nb->lock);
    /* Outside the lock: the guest keeps queueing the next epoch's frames meanwhile. */
    while ((f = list)) {
        int rc = nb->inner.send(d, f->data, f->len);
        list = f->next;
        pthread_mutex_lock(&nb->lock);
        if (rc == 0)
            nb->st.released_frames++;
        else
            nb->st.release_drops++; /* the TAP queue is full: lost as on a busy wire, and counted */
        pthread_mutex_unlock(&nb->lock);
        free(f);
    }
}

static int nb_setup(struct vmm *vm, struct vmm_dev *d, char *err, size_t errlen)
{
    struct vmm_netbuf *nb = calloc(1, sizeof(*nb));

    if (!nb) {
        snprintf(err, errlen, "vif %s: out of memory for the output buffer", d->vif.ifname);
        return -1;
    }
    pthread_mutex_init(&nb->lock, NULL);
    nb->vm = vm;
    nb->stamp = 1;
    nb->inner = d->vif.out;
    /* The vCPU and I/O thread are suspended (setup runs at the first pause): no send in flight. */
    d->vif.out.opaque = nb;
    d->vif.out.send = nb_send;
    return 0;
}

static void nb_postsuspend(struct vmm *vm, struct vmm_dev *d, uint64_t epoch)
{
    struct vmm_netbuf *nb = d->vif.out.opaque;

    (void)vm;
    pthread_mutex_lock(&nb->lock);
    nb->stamp = epoch + 1;
    pthread_mutex_unlock(&nb->lock);
}

static void nb_commit(struct vmm *vm, struct vmm_dev *d, uint64_t epoch)
{
    nb_release(d, d->vif.out.opaque, epoch);
    vmm_io_wake(vm); /* a TX ring that stalled on the full buffer goes on */
}

static void nb_teardown(struct vmm *vm, struct vmm_dev *d, bool release)
{
    struct vmm_netbuf *nb = d->vif.out.opaque;
    struct nb_frame *f;

    if (!nb || d->vif.out.send != nb_send)
        return;
    /* Switch back first: frames sent from now on go straight out, after the held ones. */
    pthread_mutex_lock(&nb->lock);
    d->vif.out = nb->inner;
    pthread_mutex_unlock(&nb->lock);
    if (release) {
        nb_release(d, nb, UINT64_MAX);
    } else {
        while ((f = nb->head)) {
            nb->head = f->next;
            free(f);
        }
    }
    pthread_mutex_destroy(&nb->lock);
    free(nb);
    vmm_io_wake(vm);
}

void vmm_netbuf_stats(struct vmm_dev *d, struct vmm_netbuf_stats *s)
{
    struct vmm_netbuf *nb = d->vif.out.opaque;

    memset(s, 0, sizeof(*s));
    if (!nb || d->vif.out.send != nb_send)
        return;
    pthread_mutex_lock(&nb->lock);
    *s = nb->st;
    pthread_mutex_unlock(&nb->lock);
}

const struct vmm_remus_dev_ops vmm_netbuf_ops = {
    .name = "netbuf",
    .setup = nb_setup,
    .postsuspend = nb_postsuspend,
    .commit = nb_commit,
    .teardown = nb_teardown,
};
