/* A stand-in tandem-vmm that follows docs/control.md without KVM, to test the lifecycle library. */
/*
 * Behaviour is chosen by the domain's b_info.cmdline:
 *   ""              start, print "hello from NAME" to console.log, serve requests
 *   "refuse"        report {"ok":false,"error":"fake refuses ..."} and exit 1
 *   "die"           exit 3 without a ready line, after writing a line to stderr
 *   "hang"          never report ready (the library must time out and kill it)
 *   "deaf"          report ready, then never answer requests
 *   "noaccept"      report ready, then never accept connections (its backlog fills up)
 *   "stubborn"      answer destroy but never exit
 *   "exit-soon"     report ready, then exit (poweroff) after 300 ms, writing exit-status
 * Requests: info, pause, unpause, destroy, rename, and "write-fd" (writes "fd-ok" into the
 * first SCM_RIGHTS fd received).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tandem.h"

static char dir[4096], name[256];
static unsigned domid;
static int paused;

static void path_of(char *buf, size_t n, const char *file)
{
    snprintf(buf, n, "%s/%s", dir, file);
}

static void cleanup_and_exit(const char *reason, int code)
{
    char p[4200];
    FILE *f;

    path_of(p, sizeof(p), "control.sock");
    unlink(p);
    path_of(p, sizeof(p), "vmm.pid");
    unlink(p);
    path_of(p, sizeof(p), "exit-status");
    f = fopen(p, "w");
    if (f) {
        fprintf(f, "{\"reason\":\"%s\",\"code\":%d,\"message\":\"fake %s\"}\n", reason, code,
                reason);
        fclose(f);
    }
    exit(0);
}

static void reply(int c, json_t *r)
{
    char *t = json_dumps(r, JSON_COMPACT);
    if (t)
        (void)!send(c, t, strlen(t), MSG_NOSIGNAL);
    free(t);
    json_decref(r);
}

static void serve(int c, int deaf, int stubborn)
{
    char buf[65536], cbuf[CMSG_SPACE(sizeof(int) * 16)];
    struct iovec iov = {buf, sizeof(buf) - 1};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
    struct cmsghdr *cm;
    int fd_in = -1;
    ssize_t n = recvmsg(c, &mh, 0);
    json_t *req;
    const char *cmd;

    if (n <= 0)
        return;
    for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && fd_in < 0)
            memcpy(&fd_in, CMSG_DATA(cm), sizeof(int));
    buf[n] = '\0';
    if (deaf)
        return;
    req = json_loads(buf, 0, NULL);
    cmd = json_string_value(json_object_get(req, "cmd"));
    if (!cmd) {
        reply(c, json_pack("{s:b,s:s}", "ok", 0, "error", "no cmd"));
    } else if (!strcmp(cmd, "info")) {
        reply(c, json_pack("{s:b,s:{s:i,s:s,s:s,s:I,s:I,s:i,s:I,s:i}}", "ok", 1, "info", "domid",
                           (int)domid, "name", name, "state", paused ? "paused" : "running",
                           "max_memkb", (json_int_t)65536, "current_memkb", (json_int_t)65536,
                           "vcpu_online", 1, "cpu_time_ns", (json_int_t)1500000000, "vmm_pid",
                           (int)getpid()));
    } else if (!strcmp(cmd, "pause") || !strcmp(cmd, "unpause")) {
        int want = !strcmp(cmd, "pause");
        if (paused == want)
            reply(c, json_pack("{s:b,s:s}", "ok", 0, "error",
                               want ? "domain is already paused" : "domain is not paused"));
        else {
            paused = want;
            reply(c, json_pack("{s:b}", "ok", 1));
        }
    } else if (!strcmp(cmd, "rename")) {
        const char *nn = json_string_value(json_object_get(req, "name"));
        if (nn && !strcmp(nn, "vmm-says-no")) {
            reply(c, json_pack("{s:b,s:s}", "ok", 0, "error", "fake refuses that name"));
        } else if (nn) {
            snprintf(name, sizeof(name), "%s", nn);
            reply(c, json_pack("{s:b}", "ok", 1));
        } else
            reply(c, json_pack("{s:b,s:s}", "ok", 0, "error", "rename: no name"));
    } else if (!strcmp(cmd, "write-fd")) {
        if (fd_in >= 0 && write(fd_in, "fd-ok", 5) == 5)
            reply(c, json_pack("{s:b}", "ok", 1));
        else
            reply(c, json_pack("{s:b,s:s}", "ok", 0, "error", "no fd"));
    } else if (!strcmp(cmd, "garbage")) {
        (void)!send(c, "this is not json", 16, MSG_NOSIGNAL);
    } else if (!strcmp(cmd, "destroy")) {
        reply(c, json_pack("{s:b}", "ok", 1));
        close(c);
        if (stubborn)
            for (;;)
                pause();
        cleanup_and_exit("destroyed", 0);
    } else {
        reply(c, json_pack("{s:b,s:s+}", "ok", 0, "error", "unknown command ", cmd));
    }
    if (fd_in >= 0)
        close(fd_in);
    json_decref(req);
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    tandem_domain_config cfg;
    tandem_ctx *ctx = NULL;
    char p[4200], *text = NULL;
    const char *mode = "";
    int ready = -1, ls, deaf = 0;
    struct timespec start;
    FILE *f;
    long len;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--domain-dir") && i + 1 < argc)
            snprintf(dir, sizeof(dir), "%s", argv[++i]);
        else if (!strcmp(argv[i], "--domid") && i + 1 < argc)
            domid = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ready-fd") && i + 1 < argc)
            ready = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--paused"))
            paused = 1;
    }
    if (!dir[0] || ready < 0 || tandem_ctx_alloc(&ctx))
        return 2;
    tandem_domain_config_init(&cfg);
    path_of(p, sizeof(p), "config.json");
    f = fopen(p, "r");
    if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        return 2;
    text = calloc(1, (size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len)
        return 2;
    fclose(f);
    if (tandem_domain_config_from_json(ctx, &cfg, text)) {
        dprintf(ready, "{\"ok\":false,\"error\":\"config.json: %s\"}\n", tandem_ctx_error(ctx));
        return 1;
    }
    snprintf(name, sizeof(name), "%s", cfg.c_info.name);
    if (cfg.b_info.cmdline)
        mode = cfg.b_info.cmdline;
    if (!strcmp(mode, "refuse")) {
        dprintf(ready, "{\"ok\":false,\"error\":\"fake refuses to start '%s'\"}\n", name);
        return 1;
    }
    if (!strcmp(mode, "die")) {
        fprintf(stderr, "fake-vmm: dying on purpose\n");
        tandem_domain_config_dispose(&cfg); /* so LeakSanitizer has no last word */
        tandem_ctx_free(ctx);
        free(text);
        return 3;
    }
    if (!strcmp(mode, "hang"))
        for (;;)
            pause();
    deaf = !strcmp(mode, "deaf");

    path_of(p, sizeof(p), "console.log");
    f = fopen(p, "w");
    if (f) {
        fprintf(f, "hello from %s\n", name);
        fclose(f);
    }
    ls = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", dir) >=
        sizeof(sa.sun_path)) {
        dprintf(ready, "{\"ok\":false,\"error\":\"socket path too long\"}\n");
        return 1;
    }
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 16)) {
        dprintf(ready, "{\"ok\":false,\"error\":\"cannot listen: %s\"}\n", strerror(errno));
        return 1;
    }
    path_of(p, sizeof(p), "vmm.pid");
    f = fopen(p, "w");
    if (!f)
        return 1;
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    dprintf(ready, "{\"ok\":true}\n");
    close(ready);
    if (!strcmp(mode, "noaccept"))
        for (;;)
            pause();
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd pf = {.fd = ls, .events = POLLIN};
        if (poll(&pf, 1, 50) > 0) {
            int c = accept(ls, NULL, NULL);
            if (c >= 0) {
                serve(c, deaf, !strcmp(mode, "stubborn"));
                if (!deaf)
                    close(c);
            }
        }
        if (!strcmp(mode, "exit-soon")) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
                300) {
                path_of(p, sizeof(p), "console.log");
                f = fopen(p, "a");
                if (f) {
                    fprintf(f, "goodbye\n");
                    fclose(f);
                }
                cleanup_and_exit("poweroff", 0);
            }
        }
    }
}
