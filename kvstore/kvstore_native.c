/* tandem-kvstore-native: the kvstore core in a plain host process (file log, fdatasync). */
#include "kv_addr.h"
#include "kv_core.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* Stop reading from a client whose unsent replies pass this (it is not reading them). */
#define OUT_HIGH (256u * 1024u)
#define READ_CHUNK 16384

/*
 * With --async-flush, fdatasync runs on a worker thread and completes through
 * an eventfd in the poll loop: the completion model of the guest's block
 * device, so the core's held-reply path runs under real load. The core never
 * writes while a flush is outstanding, so the flush covers exactly the writes
 * before it.
 */
struct file_backend {
    struct kv_backend be;
    int fd;
    int async, efd;
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int requested, quit, result;
    kv_flush_done_fn *done;
    void *arg;
};

struct client {
    int fd;
    struct kv_conn *kc;
    char *out;
    size_t outlen, outoff, outcap;
    int dead; /* write failed or peer closed: drop after this round */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int fb_read(void *opaque, uint64_t off, void *buf, size_t len)
{
    struct file_backend *fb = opaque;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fb->fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) { /* beyond the end of the file: reads as zeros */
            memset((char *)buf + done, 0, len - done);
            break;
        }
        done += (size_t)n;
    }
    return 0;
}

static int fb_write(void *opaque, uint64_t off, const void *buf, size_t len)
{
    struct file_backend *fb = opaque;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fb->fd, (const char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return 0;
}

static int fb_flush(void *opaque, kv_flush_done_fn *done, void *arg)
{
    struct file_backend *fb = opaque;
    if (!fb->async) {
        int rc = fdatasync(fb->fd) ? -errno : 0;
        done(arg, rc);
        return 0;
    }
    pthread_mutex_lock(&fb->mu);
    fb->done = done;
    fb->arg = arg;
    fb->requested = 1;
    pthread_cond_signal(&fb->cv);
    pthread_mutex_unlock(&fb->mu);
    return 0;
}

static void *flush_worker(void *opaque)
{
    struct file_backend *fb = opaque;
    pthread_mutex_lock(&fb->mu);
    for (;;) {
        while (!fb->requested && !fb->quit)
            pthread_cond_wait(&fb->cv, &fb->mu);
        if (fb->quit)
            break;
        pthread_mutex_unlock(&fb->mu);
        int rc = fdatasync(fb->fd) ? -errno : 0;
        pthread_mutex_lock(&fb->mu);
        fb->result = rc;
        fb->requested = 0;
        uint64_t one = 1;
        if (write(fb->efd, &one, sizeof(one)) != sizeof(one))
            abort(); /* an eventfd write of 1 cannot fail short of a bug */
    }
    pthread_mutex_unlock(&fb->mu);
    return NULL;
}

/* In the poll loop: the worker finished a flush; report it to the core. */
static void flush_completed(struct file_backend *fb)
{
    uint64_t v;
    if (read(fb->efd, &v, sizeof(v)) != sizeof(v))
        return;
    pthread_mutex_lock(&fb->mu);
    kv_flush_done_fn *done = fb->done;
    void *arg = fb->arg;
    int rc = fb->result;
    fb->done = NULL;
    pthread_mutex_unlock(&fb->mu);
    if (done)
        done(arg, rc);
}

static void client_send(void *arg, const char *data, size_t len)
{
    struct client *cl = arg;
    if (cl->dead)
        return;
    if (cl->outlen + len > cl->outcap) {
        size_t cap = cl->outcap ? cl->outcap : 4096;
        while (cap < cl->outlen + len)
            cap *= 2;
        char *nb = realloc(cl->out, cap);
        if (!nb) {
            cl->dead = 1;
            return;
        }
        cl->out = nb;
        cl->outcap = cap;
    }
    memcpy(cl->out + cl->outlen, data, len);
    cl->outlen += len;
}

static void client_write(struct client *cl)
{
    while (!cl->dead && cl->outoff < cl->outlen) {
        ssize_t n = send(cl->fd, cl->out + cl->outoff, cl->outlen - cl->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            cl->dead = 1;
            return;
        }
        cl->outoff += (size_t)n;
    }
    if (cl->outoff == cl->outlen)
        cl->outoff = cl->outlen = 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tandem-kvstore-native --listen ADDR:PORT --log FILE [--size MiB] "
               "[--max-keys N] [--async-flush]\n"
               "Serve the kvstore line protocol (docs/kvstore-protocol.md) over TCP with a\n"
               "durable log in FILE: a write is answered only after fdatasync(FILE).\n"
               "  --listen ADDR:PORT  address to listen on (port 0 picks a free port; the\n"
               "                      chosen address is printed on the first line)\n"
               "  --log FILE          log file; created with --size MiB (default 64) when it\n"
               "                      is missing or empty, otherwise its size is used as is\n"
               "  --max-keys N        key limit (default 65536)\n"
               "  --async-flush       fdatasync on a worker thread, completed through the poll\n"
               "                      loop (how the guest's block device completes flushes)\n"
               "Stops on SIGTERM or SIGINT.\n");
}

int main(int argc, char **argv)
{
    const char *listen_spec = NULL, *log_path = NULL;
    unsigned long size_mib = 64, max_keys = KV_DEFAULT_MAX_KEYS;
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"log", required_argument, NULL, 'f'},
        {"size", required_argument, NULL, 's'},
        {"max-keys", required_argument, NULL, 'k'},
        {"async-flush", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct file_backend fb = {.fd = -1, .efd = -1};
    int worker_started = 0;
    struct kv_store *st = NULL;
    struct client **cls = NULL;
    struct pollfd *pfds = NULL;
    size_t ncls = 0, capcls = 0;
    struct addrinfo *ai = NULL;
    int lfd = -1, ret = 1, opt;
    char *end;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            listen_spec = optarg;
            break;
        case 'f':
            log_path = optarg;
            break;
        case 's':
            size_mib = strtoul(optarg, &end, 10);
            if (*end || size_mib == 0 || size_mib > 1024 * 1024) {
                fprintf(stderr, "tandem-kvstore-native: --size '%s' is not a size in MiB\n",
                        optarg);
                return 2;
            }
            break;
        case 'k':
            max_keys = strtoul(optarg, &end, 10);
            if (*end || max_keys == 0 || max_keys > (1ul << 26)) {
                fprintf(stderr, "tandem-kvstore-native: --max-keys '%s' is not 1..67108864\n",
                        optarg);
                return 2;
            }
            break;
        case 'a':
            fb.async = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!listen_spec || !log_path || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (kv_addr_resolve(listen_spec, AI_PASSIVE, &ai)) {
        fprintf(stderr, "tandem-kvstore-native: --listen '%s' is not ADDR:PORT\n", listen_spec);
        return 2;
    }

    fb.fd = open(log_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fb.fd < 0) {
        fprintf(stderr, "tandem-kvstore-native: cannot open log '%s': %s\n", log_path,
                strerror(errno));
        goto out;
    }
    struct stat sb;
    if (fstat(fb.fd, &sb)) {
        fprintf(stderr, "tandem-kvstore-native: stat '%s': %s\n", log_path, strerror(errno));
        goto out;
    }
    uint64_t cap = (uint64_t)sb.st_size / KV_SECTOR * KV_SECTOR;
    if (cap == 0) {
        cap = (uint64_t)size_mib << 20;
        /* Allocate now: no block allocation inside fdatasync later, and ENOSPC shows here. */
        int frc = posix_fallocate(fb.fd, 0, (off_t)cap);
        if (frc == EOPNOTSUPP || frc == EINVAL)
            frc = ftruncate(fb.fd, (off_t)cap) ? errno : 0;
        if (frc) {
            fprintf(stderr, "tandem-kvstore-native: cannot size log '%s' to %lu MiB: %s\n",
                    log_path, size_mib, strerror(frc));
            goto out;
        }
    }
    fb.be = (struct kv_backend){
        .opaque = &fb, .capacity = cap, .read = fb_read, .write = fb_write, .flush = fb_flush};
    if (fb.async) {
        pthread_mutex_init(&fb.mu, NULL);
        pthread_cond_init(&fb.cv, NULL);
        fb.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fb.efd < 0 || pthread_create(&fb.worker, NULL, flush_worker, &fb)) {
            fprintf(stderr, "tandem-kvstore-native: cannot start the flush worker: %s\n",
                    strerror(errno));
            goto out;
        }
        worker_started = 1;
    }
    struct kv_config cfg = {.max_keys = (uint32_t)max_keys, .send = client_send};
    const char *err;
    int rc = kv_store_open(&cfg, &fb.be, &st, &err);
    if (rc) {
        fprintf(stderr, "tandem-kvstore-native: log '%s': %s (%s)\n", log_path, err, strerror(-rc));
        goto out;
    }
    kv_store_commit(st); /* makes a fresh format durable (completes in the loop when async) */

    lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(lfd, ai->ai_addr, ai->ai_addrlen) || listen(lfd, 512)) {
        fprintf(stderr, "tandem-kvstore-native: cannot listen on '%s': %s\n", listen_spec,
                strerror(errno));
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
    if (getsockname(lfd, (struct sockaddr *)&ss, &sl) ||
        getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
                    NI_NUMERICHOST | NI_NUMERICSERV)) {
        fprintf(stderr, "tandem-kvstore-native: getsockname: %s\n", strerror(errno));
        goto out;
    }
    struct kv_stats ks;
    kv_store_stats(st, &ks);
    printf("tandem-kvstore-native: listening on %s%s%s:%s log %s (%llu records replayed, "
           "%llu keys)\n",
           ss.ss_family == AF_INET6 ? "[" : "", hbuf, ss.ss_family == AF_INET6 ? "]" : "", pbuf,
           log_path, (unsigned long long)ks.replayed, (unsigned long long)ks.keys);
    fflush(stdout);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    while (!stop_requested) {
        if (capcls < ncls + 1) {
            size_t nc = capcls ? capcls * 2 : 64;
            struct pollfd *np = realloc(pfds, (nc + 2) * sizeof(*np));
            if (!np)
                goto out;
            pfds = np;
            struct client **ncl = realloc(cls, nc * sizeof(*ncl));
            if (!ncl)
                goto out;
            cls = ncl;
            capcls = nc;
        }
        pfds[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        pfds[1] = (struct pollfd){.fd = fb.efd, .events = POLLIN};
        for (size_t i = 0; i < ncls; i++) {
            short ev = 0;
            /* Backpressure: unsent and held replies bound what is read from a client. */
            if (cls[i]->outlen < OUT_HIGH && kv_conn_pending(cls[i]->kc) < 4096)
                ev |= POLLIN;
            if (cls[i]->outlen > cls[i]->outoff)
                ev |= POLLOUT;
            pfds[i + 2] = (struct pollfd){.fd = cls[i]->fd, .events = ev};
        }
        int n = poll(pfds, ncls + 2, 1000);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "tandem-kvstore-native: poll: %s\n", strerror(errno));
            goto out;
        }
        size_t polled = ncls;
        for (size_t i = 0; n > 0 && i < polled; i++) {
            struct client *cl = cls[i];
            if (pfds[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) {
                char buf[READ_CHUNK];
                ssize_t r = recv(cl->fd, buf, sizeof(buf), 0);
                if (r > 0)
                    kv_conn_input(cl->kc, buf, (size_t)r);
                else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                    cl->dead = 1;
            }
        }
        if (n > 0 && (pfds[1].revents & POLLIN))
            flush_completed(&fb);
        if (n > 0 && (pfds[0].revents & POLLIN)) {
            while (ncls < capcls) { /* the rest waits for the next round, once cls grew */
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    break;
                struct client *cl = calloc(1, sizeof(*cl));
                if (cl)
                    cl->kc = kv_conn_open(st, cl);
                if (!cl || !cl->kc) {
                    free(cl);
                    close(fd);
                    break;
                }
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                cl->fd = fd;
                cls[ncls++] = cl;
            }
        }
        /* Group commit: one flush covers the writes of every connection read this round. */
        kv_store_commit(st);
        for (size_t i = 0; i < ncls;) {
            struct client *cl = cls[i];
            client_write(cl);
            if (cl->dead) {
                kv_conn_close(cl->kc);
                close(cl->fd);
                free(cl->out);
                free(cl);
                cls[i] = cls[--ncls];
                continue;
            }
            i++;
        }
    }
    ret = 0;
out:
    for (size_t i = 0; i < ncls; i++) {
        close(cls[i]->fd);
        free(cls[i]->out);
        free(cls[i]);
    }
    free(cls);
    free(pfds);
    if (worker_started) {
        pthread_mutex_lock(&fb.mu);
        fb.quit = 1;
        pthread_cond_signal(&fb.cv);
        pthread_mutex_unlock(&fb.mu);
        pthread_join(fb.worker, NULL);
    }
    if (fb.efd >= 0)
        close(fb.efd);
    kv_store_close(st);
    if (lfd >= 0)
        close(lfd);
    if (fb.fd >= 0)
        close(fb.fd);
    if (ai)
        freeaddrinfo(ai);
    return ret;
}
