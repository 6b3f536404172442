/* Migration transports: remote-shell child, TCP connect/listen, hello and PSK handshake. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migrate_internal.h"

/* Time either side waits for the other's hello / handshake answer. */
#define HANDSHAKE_TIMEOUT_MS 30000

static const char banner[] = "tandem-migrate";

int tdm_mig_conn_new(tandem_ctx *ctx, int rfd, int wfd, char role, const char *peer,
                     tandem_migrate_conn **out)
{
    tandem_migrate_conn *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (!c)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "cannot allocate a migration connection");
    c->rfd = rfd;
    c->wfd = wfd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    tdm_mig_chan_init(&c->chan, role);
    *out = c;
    return 0;
}

int tandem_migrate_conn_stdio(tandem_ctx *ctx, int rfd, int wfd, tandem_migrate_conn **out)
{
    return tdm_mig_conn_new(ctx, rfd, wfd, TDM_MIG_DIR_RECEIVER, "the sender", out);
}

/* ---------------------------------------------------------------- remote shell */

void tandem_migrate_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

/* Append the blank-separated words of s to (*v, *n). */
static int push_words(char ***v, size_t *n, const char *s)
{
    const char *p = s;

    while (*p) {
        size_t len;
        char **nv;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        len = strcspn(p, " \t");
        nv = realloc(*v, (*n + 2) * sizeof(char *));
        if (!nv)
            return -1;
        *v = nv;
        nv[*n] = strndup(p, len);
        if (!nv[*n])
            return -1;
        nv[++*n] = NULL;
        p += len;
    }
    return 0;
}

static int push_word(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 2) * sizeof(char *));
    if (!nv)
        return -1;
    *v = nv;
    nv[*n] = strdup(s);
    if (!nv[*n])
        return -1;
    nv[++*n] = NULL;
    return 0;
}

int tandem_migrate_shell_argv(tandem_ctx *ctx, const char *shell_cmd, const char *host,
                              const char *receiver_cmd, char *const extra_args[], char ***argv_out)
{
    char **v = calloc(1, sizeof(char *));
    size_t n = 0;
    int rc = 0;

    *argv_out = NULL;
    if (!v)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "cannot build the remote command");
    if (push_words(&v, &n, shell_cmd ? shell_cmd : TANDEM_MIGRATE_DEFAULT_SHELL) ||
        (host && host[0] &&
         (shell_cmd && !shell_cmd[0] ? push_words(&v, &n, host) : push_word(&v, &n, host))) ||
        push_words(&v, &n, receiver_cmd ? receiver_cmd : TANDEM_MIGRATE_DEFAULT_RECEIVER)) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "cannot build the remote command");
        goto out;
    }
    for (size_t i = 0; extra_args && extra_args[i]; i++)
        if (push_word(&v, &n, extra_args[i])) {
            rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "cannot build the remote command");
            goto out;
        }
    if (n == 0) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL, "the remote command is empty");
        goto out;
    }
    *argv_out = v;
    v = NULL;
out:
    tandem_migrate_argv_free(v);
    return rc;
}

int tandem_migrate_conn_spawn(tandem_ctx *ctx, char *const argv[], tandem_migrate_conn **out)
{
    int in[2] = {-1, -1}, outp[2] = {-1, -1}, rc = 0;
    char peer[128];
    pid_t pid;

    *out = NULL;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot create pipes for '%s'", argv[0]);
        goto out;
    }
    pid = fork();
    if (pid < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot fork '%s'", argv[0]);
        goto out;
    }
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        if (dup2(in[0], 0) < 0 || dup2(outp[1], 1) < 0)
            _exit(127);
        execvp(argv[0], argv);
        fprintf(stderr, "tandem: cannot run the remote command '%s': %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    in[0] = outp[1] = -1;
    snprintf(peer, sizeof(peer), "the receiver (via '%s')", argv[0]);
    rc = tdm_mig_conn_new(ctx, outp[0], in[1], TDM_MIG_DIR_SENDER, peer, out);
    if (rc) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        goto out;
    }
    (*out)->child = pid;
    in[1] = outp[0] = -1;
out:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (outp[i] >= 0)
            close(outp[i]);
    }
    return rc;
}

int tandem_migrate_conn_close(tandem_migrate_conn *c)
{
    int status = 0, st = 0;

    if (!c)
        return 0;
    if (c->wfd >= 0 && c->wfd != c->rfd)
        close(c->wfd);
    if (c->rfd >= 0)
        close(c->rfd);
    if (c->child > 0) {
        int64_t deadline = tdm_mig_now_ms() + 5000;
        pid_t w;
        for (;;) {
            w = waitpid(c->child, &st, WNOHANG);
            if (w == c->child || (w < 0 && errno != EINTR))
                break;
            if (tdm_mig_now_ms() > deadline) {
                kill(c->child, SIGKILL);
                w = waitpid(c->child, &st, 0);
                break;
            }
            usleep(10000);
        }
        if (w == c->child)
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    sodium_memzero(c->chan.key, sizeof(c->chan.key));
    free(c);
    return status;
}

/* ---------------------------------------------------------------- keys */

int tandem_migrate_key_load(tandem_ctx *ctx, const char *path,
                            uint8_t key[TANDEM_MIGRATE_KEY_BYTES])
{
    uint8_t buf[4096];
    struct stat st;
    ssize_t n;
    int fd, rc = 0;

    if (sodium_init() < 0)
        return tandem_error(ctx, TANDEM_ERR_FAIL, "libsodium failed to initialise");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tandem_error_errno(ctx, errno == ENOENT ? TANDEM_ERR_NOTFOUND : TANDEM_ERR_IO, errno,
                                  "key file %s", path);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL, "key file %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & 077) {
        rc = tandem_error(ctx, TANDEM_ERR_PERM,
                          "key file %s is accessible by group or others (mode %03o); "
                          "chmod 600 it",
                          path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    n = read(fd, buf, sizeof(buf));
    if (n < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot read key file %s", path);
        goto out;
    }
    if (n < 16) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL,
                          "key file %s holds %zd bytes; at least 16 are needed "
                          "(head -c 32 /dev/urandom > %s)",
                          path, n, path);
        goto out;
    }
    crypto_generichash(key, TANDEM_MIGRATE_KEY_BYTES, buf, (size_t)n, NULL, 0);
out:
    sodium_memzero(buf, sizeof(buf));
    close(fd);
    return rc;
}

void tdm_mig_proof(const uint8_t psk[32], char role, const uint8_t first[TDM_MIG_NONCE],
                   const uint8_t second[TDM_MIG_NONCE], uint8_t out[TDM_MIG_TAG])
{
    const char *label = role == TDM_MIG_DIR_SENDER ? "tandem-migrate sender proof"
                                                   : "tandem-migrate receiver proof";
    crypto_auth_hmacsha512256_state st;

    crypto_auth_hmacsha512256_init(&st, psk, 32);
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)label, strlen(label));
    crypto_auth_hmacsha512256_update(&st, first, TDM_MIG_NONCE);
    crypto_auth_hmacsha512256_update(&st, second, TDM_MIG_NONCE);
    crypto_auth_hmacsha512256_final(&st, out);
}

void tdm_mig_session_key(const uint8_t psk[32], const uint8_t n_recv[TDM_MIG_NONCE],
                         const uint8_t n_send[TDM_MIG_NONCE], uint8_t out[32])
{
    static const char label[] = "tandem-migrate session";
    crypto_generichash_state st;

    crypto_generichash_init(&st, psk, 32, 32);
    crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label) - 1);
    crypto_generichash_update(&st, n_recv, TDM_MIG_NONCE);
    crypto_generichash_update(&st, n_send, TDM_MIG_NONCE);
    crypto_generichash_final(&st, out, 32);
}

/* ---------------------------------------------------------------- hello + handshake */

/* Check a peer's hello: banner and protocol version. */
static int check_hello(tandem_ctx *ctx, tandem_migrate_conn *conn, const json_t *m)
{
    const char *b = json_string_value(json_object_get(m, "banner"));
    json_t *v = json_object_get(m, "version");

    if (!b || strcmp(b, banner) != 0)
        return tandem_error(ctx, TANDEM_ERR_PROTO, "%s did not identify as %s (banner \"%s\")",
                            conn->peer, banner, b ? b : "");
    if (!json_is_integer(v) || json_integer_value(v) != TANDEM_MIGRATE_PROTO_VERSION)
        return tandem_error(ctx, TANDEM_ERR_VERSION,
                            "%s speaks migration protocol version %lld, this tandem speaks "
                            "version %u",
                            conn->peer, (long long)json_integer_value(v),
                            TANDEM_MIGRATE_PROTO_VERSION);
    return 0;
}

static json_t *hello_msg(const char *auth)
{
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    return json_pack("{s:s,s:s,s:i,s:s,s:s}", "msg", "hello", "banner", banner, "version",
                     (int)TANDEM_MIGRATE_PROTO_VERSION, "host", host, "auth", auth);
}

int tdm_mig_handshake_receiver(tandem_ctx *ctx, tandem_migrate_conn *conn, const uint8_t *psk)
{
    uint8_t n_recv[TDM_MIG_NONCE], n_send[TDM_MIG_NONCE], proof[TDM_MIG_TAG], want[TDM_MIG_TAG];
    char hex[2 * TDM_MIG_TAG + 1];
    json_t *hello = hello_msg(psk ? "psk" : "none"), *m = NULL, *ok = NULL;
    int rc;

    if (sodium_init() < 0) {
        rc = tandem_error(ctx, TANDEM_ERR_FAIL, "libsodium failed to initialise");
        goto out;
    }
    if (!hello) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "cannot build the hello message");
        goto out;
    }
    if (psk) {
        randombytes_buf(n_recv, sizeof(n_recv));
        tdm_mig_hex(n_recv, sizeof(n_recv), hex);
        json_object_set_new(hello, "nonce", json_string(hex));
    }
    rc = tdm_mig_send(ctx, conn, hello);
    if (rc)
        goto out;
    rc = tdm_mig_recv(ctx, conn, HANDSHAKE_TIMEOUT_MS, "hello", &m);
    if (rc)
        goto out;
    rc = check_hello(ctx, conn, m);
    if (rc) {
        tdm_mig_send_error(conn, "hello", tandem_ctx_error(ctx));
        goto out;
    }
    if (!psk)
        goto out;
    if (tdm_mig_unhex(json_string_value(json_object_get(m, "nonce")), n_send, sizeof(n_send)) ||
        tdm_mig_unhex(json_string_value(json_object_get(m, "proof")), proof, sizeof(proof))) {
        rc =
            tandem_error(ctx, TANDEM_ERR_PROTO,
                         "%s sent no valid nonce and proof (does it have a key file?)", conn->peer);
        tdm_mig_send_error(conn, "auth", "authentication failed: no valid nonce and proof");
        goto out;
    }
    if (sodium_memcmp(n_send, n_recv, sizeof(n_recv)) == 0) {
        rc = tandem_error(ctx, TANDEM_ERR_PERM, "%s echoed our nonce (reflection)", conn->peer);
        tdm_mig_send_error(conn, "auth", "authentication failed: nonce reflected");
        goto out;
    }
    tdm_mig_proof(psk, TDM_MIG_DIR_SENDER, n_recv, n_send, want);
    if (sodium_memcmp(want, proof, sizeof(want)) != 0) {
        json_t *e =
            json_pack("{s:s,s:s,s:s,s:s}", "msg", "error", "phase", "auth", "code", "auth", "error",
                      "authentication failed: the sender's key does not match the "
                      "receiver's key file");
        if (e)
            (void)tdm_mig_send(NULL, conn, e);
        json_decref(e);
        rc = tandem_error(ctx, TANDEM_ERR_PERM,
                          "authentication failed: %s does not know our key (wrong key file?)",
                          conn->peer);
        goto out;
    }
    tdm_mig_proof(psk, TDM_MIG_DIR_RECEIVER, n_send, n_recv, proof);
    tdm_mig_hex(proof, sizeof(proof), hex);
    ok = json_pack("{s:s,s:s}", "msg", "auth-ok", "proof", hex);
    if (!ok) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "cannot build the auth-ok message");
        goto out;
    }
    rc = tdm_mig_send(ctx, conn, ok);
    if (rc)
        goto out;
    tdm_mig_session_key(psk, n_recv, n_send, conn->chan.key);
    conn->chan.auth = 1;
out:
    json_decref(hello);
    json_decref(m);
    json_decref(ok);
    return rc;
}

int tdm_mig_handshake_sender(tandem_ctx *ctx, tandem_migrate_conn *conn, const uint8_t *psk)
{
    uint8_t n_recv[TDM_MIG_NONCE], n_send[TDM_MIG_NONCE], proof[TDM_MIG_TAG], want[TDM_MIG_TAG];
    char hex[2 * TDM_MIG_TAG + 1];
    json_t *hello = NULL, *m = NULL, *ok = NULL;
    const char *auth;
    int rc;

    if (sodium_init() < 0)
        return tandem_error(ctx, TANDEM_ERR_FAIL, "libsodium failed to initialise");
    rc = tdm_mig_recv(ctx, conn, HANDSHAKE_TIMEOUT_MS, "hello", &m);
    if (rc)
        goto out;
    rc = check_hello(ctx, conn, m);
    if (rc) {
        tdm_mig_send_error(conn, "hello", tandem_ctx_error(ctx));
        goto out;
    }
    auth = json_string_value(json_object_get(m, "auth"));
    if (psk && (!auth || strcmp(auth, "psk") != 0)) {
        rc = tandem_error(ctx, TANDEM_ERR_PERM,
                          "%s does not authenticate (auth \"%s\"); refusing to send a domain "
                          "to it",
                          conn->peer, auth ? auth : "");
        tdm_mig_send_error(conn, "auth", "the sender requires key authentication");
        goto out;
    }
    hello = hello_msg(psk ? "psk" : "none");
    if (!hello) {
        rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "cannot build the hello message");
        goto out;
    }
    if (psk) {
        if (tdm_mig_unhex(json_string_value(json_object_get(m, "nonce")), n_recv, sizeof(n_recv))) {
            rc = tandem_error(ctx, TANDEM_ERR_PROTO, "%s sent no valid nonce", conn->peer);
            goto out;
        }
        randombytes_buf(n_send, sizeof(n_send));
        tdm_mig_hex(n_send, sizeof(n_send), hex);
        json_object_set_new(hello, "nonce", json_string(hex));
        tdm_mig_proof(psk, TDM_MIG_DIR_SENDER, n_recv, n_send, proof);
        tdm_mig_hex(proof, sizeof(proof), hex);
        json_object_set_new(hello, "proof", json_string(hex));
    } else if (auth && strcmp(auth, "none") != 0) {
        rc = tandem_error(ctx, TANDEM_ERR_PERM,
                          "%s requires key authentication (auth \"%s\"); give --key-file",
                          conn->peer, auth);
        goto out;
    }
    rc = tdm_mig_send(ctx, conn, hello);
    if (rc || !psk)
        goto out;
    rc = tdm_mig_recv(ctx, conn, HANDSHAKE_TIMEOUT_MS, "auth-ok", &ok);
    if (rc == TANDEM_ERR_PERM)
        tandem_error_prefix(ctx, "wrong key");
    if (rc)
        goto out;
    tdm_mig_proof(psk, TDM_MIG_DIR_RECEIVER, n_send, n_recv, want);
    if (tdm_mig_unhex(json_string_value(json_object_get(ok, "proof")), proof, sizeof(proof)) ||
        sodium_memcmp(want, proof, sizeof(want)) != 0) {
        rc = tandem_error(ctx, TANDEM_ERR_PERM,
                          "authentication failed: %s could not prove it knows our key (wrong "
                          "key file, or not the receiver we meant)",
                          conn->peer);
        goto out;
    }
    tdm_mig_session_key(psk, n_recv, n_send, conn->chan.key);
    conn->chan.auth = 1;
out:
    json_decref(hello);
    json_decref(m);
    json_decref(ok);
    return rc;
}

/* ---------------------------------------------------------------- TCP */

/*
 * A cut link must end the migration, not hang it: unacknowledged data
 * fails the socket after 10 s (TCP_USER_TIMEOUT, the sender's VMM is
 * writing) and keepalives find a silent peer within ~10 s (the
 * receiver's VMM is reading).
 */
static void tcp_liveness(int fd)
{
    int one = 1, idle = 5, intvl = 1, cnt = 5;
    unsigned ut = 10000;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
}

/* "HOST:PORT" or "[V6]:PORT" into host and port strings. */
static int split_addr(tandem_ctx *ctx, const char *addr, char *host, size_t hsz, char *port,
                      size_t psz)
{
    const char *colon;
    size_t hl;

    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            goto bad;
        hl = (size_t)(close - addr - 1);
        if (hl == 0 || hl >= hsz)
            goto bad;
        memcpy(host, addr + 1, hl);
        host[hl] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || colon == addr || memchr(addr, ':', (size_t)(colon - addr)))
            goto bad;
        hl = (size_t)(colon - addr);
        if (hl >= hsz)
            goto bad;
        memcpy(host, addr, hl);
        host[hl] = '\0';
    }
    if (!colon[1] || strlen(colon + 1) >= psz ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        goto bad;
    snprintf(port, psz, "%s", colon + 1);
    return 0;
bad:
    return tandem_error(ctx, TANDEM_ERR_INVAL, "address '%s': expected HOST:PORT or [IPV6]:PORT",
                        addr);
}

static int resolve(tandem_ctx *ctx, const char *addr, int passive, struct addrinfo **res)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    char host[256], port[16];
    int rc, g;

    rc = split_addr(ctx, addr, host, sizeof(host), port, sizeof(port));
    if (rc)
        return rc;
    g = getaddrinfo(host, port, &hints, res);
    if (g != 0)
        return tandem_error(ctx, TANDEM_ERR_INVAL, "address '%s': %s", addr, gai_strerror(g));
    return 0;
}

int tandem_migrate_conn_connect(tandem_ctx *ctx, const char *addr,
                                const uint8_t key[TANDEM_MIGRATE_KEY_BYTES],
                                tandem_migrate_conn **out)
{
    struct addrinfo *res = NULL;
    char peer[160];
    int fd = -1, rc, e = 0;

    *out = NULL;
    rc = resolve(ctx, addr, 0, &res);
    if (rc)
        return rc;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        e = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        rc = tandem_error_errno(ctx, TANDEM_ERR_IO, e, "cannot connect to receiver at %s", addr);
        goto out;
    }
    tcp_liveness(fd);
    snprintf(peer, sizeof(peer), "the receiver at %s", addr);
    rc = tdm_mig_conn_new(ctx, fd, fd, TDM_MIG_DIR_SENDER, peer, out);
    if (rc)
        goto out;
    fd = -1;
    rc = tdm_mig_handshake_sender(ctx, *out, key);
    if (rc) {
        tandem_migrate_conn_close(*out);
        *out = NULL;
    }
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return rc;
}

int tandem_migrate_listen(tandem_ctx *ctx, const char *addr, int *fd_out)
{
    struct addrinfo *res = NULL;
    int fd = -1, rc, e = 0, one = 1;

    *fd_out = -1;
    rc = resolve(ctx, addr, 1, &res);
    if (rc)
        return rc;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 4) == 0)
            break;
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return tandem_error_errno(ctx, TANDEM_ERR_IO, e, "cannot listen on %s", addr);
    *fd_out = fd;
    return 0;
}

int tandem_migrate_accept(tandem_ctx *ctx, int listen_fd,
                          const uint8_t key[TANDEM_MIGRATE_KEY_BYTES], int timeout_ms,
                          tandem_migrate_conn **out)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?", peer[160];
    struct pollfd p = {.fd = listen_fd, .events = POLLIN};
    int fd, rc, pr;

    *out = NULL;
    if (!key)
        return tandem_error(ctx, TANDEM_ERR_INVAL, "a TCP receiver needs a key (--key-file)");
    do
        pr = poll(&p, 1, timeout_ms > 0 ? timeout_ms : -1);
    while (pr < 0 && errno == EINTR);
    if (pr == 0)
        return tandem_error(ctx, TANDEM_ERR_TIMEOUT, "no sender connected within %d ms",
                            timeout_ms);
    fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
    if (fd < 0)
        return tandem_error_errno(ctx, TANDEM_ERR_IO, errno, "cannot accept a connection");
    tcp_liveness(fd);
    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
                NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(peer, sizeof(peer), "the sender at %s:%s", host, serv);
    rc = tdm_mig_conn_new(ctx, fd, fd, TDM_MIG_DIR_RECEIVER, peer, out);
    if (rc) {
        close(fd);
        return rc;
    }
    rc = tdm_mig_handshake_receiver(ctx, *out, key);
    if (rc) {
        tandem_migrate_conn_close(*out);
        *out = NULL;
    }
    return rc;
}
