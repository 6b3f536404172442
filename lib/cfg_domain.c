/* Domain options of an xl.cfg file turned into a validated tandem_domain_config. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domain_internal.h"
#include "json_util.h"

#define DEFAULT_MEMORY_MIB 128
#define MAX_VCPUS 128
/* Guest RAM is addressed with 32-bit guest-physical hypercall arguments for
 * boot data, but RAM itself may be larger; 1 TiB is the toolstack's limit. */
#define MAX_MEMORY_MIB (1024L * 1024L)

/* Options of xl.cfg that Tandem knows; anything else is refused. */
static const char *const known_options[] = {
    "name", "uuid", "memory", "maxmem", "vcpus", "maxvcpus", "kernel", "cmdline", "extra", "root",
    "disk", "vif", "on_poweroff", "on_reboot", "on_crash", "remus_backup", "type", "builder",
};

/* Prefix "FILE:LINE: OPTION: " to the message already recorded. */
static int opt_error(tandem_ctx *ctx, const tandem_cfg *cfg, const char *opt, int rc)
{
    tandem_error_prefix(ctx, "%s:%d: %s", tandem_cfg_source_of(cfg, opt), tandem_cfg_line(cfg, opt),
                        opt);
    return rc;
}

static int opt_fail(tandem_ctx *ctx, const tandem_cfg *cfg, const char *opt, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int opt_fail(tandem_ctx *ctx, const tandem_cfg *cfg, const char *opt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tandem_verror(ctx, TANDEM_ERR_INVAL, fmt, ap);
    va_end(ap);
    return opt_error(ctx, cfg, opt, TANDEM_ERR_INVAL);
}

/* One set of rules: a name in a config is checked as create and rename check it. */
int tandem_domain_name_check(tandem_ctx *ctx, const char *name)
{
    return tdm_name_check(ctx, name);
}

/* Optional string option: *out stays NULL when absent. */
static int get_opt_string(tandem_ctx *ctx, const tandem_cfg *cfg, const char *opt, char **out)
{
    const char *s;
    int rc = tandem_cfg_get_string(ctx, cfg, opt, &s);

    if (rc == TANDEM_ERR_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    free(*out);
    *out = strdup(s);
    return *out ? 0 : tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
}

/* Optional positive integer option within [min, max]; *present tells whether it was set. */
static int get_opt_long(tandem_ctx *ctx, const tandem_cfg *cfg, const char *opt, long min, long max,
                        long *out, int *present)
{
    long v;
    int rc = tandem_cfg_get_long(ctx, cfg, opt, &v);

    *present = 0;
    if (rc == TANDEM_ERR_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (v < min || v > max)
        return opt_fail(ctx, cfg, opt, "%ld is out of range (%ld to %ld)", v, min, max);
    *out = v;
    *present = 1;
    return 0;
}

static int check_known(tandem_ctx *ctx, const tandem_cfg *cfg)
{
    for (int i = 0; i < tandem_cfg_count(cfg); i++) {
        const char *name = tandem_cfg_name_at(cfg, i);
        size_t k;
        for (k = 0; k < TDM_ARRAY_SIZE(known_options); k++)
            if (!strcmp(name, known_options[k]))
                break;
        if (k == TDM_ARRAY_SIZE(known_options))
            return opt_fail(ctx, cfg, name,
                            "unknown option (Tandem's options are listed in docs/xl-cfg.md)");
    }
    return 0;
}

static int convert_guest_type(tandem_ctx *ctx, const tandem_cfg *cfg)
{
    static const char *const opts[] = {"type", "builder"};
    for (size_t i = 0; i < TDM_ARRAY_SIZE(opts); i++) {
        const char *s;
        int rc = tandem_cfg_get_string(ctx, cfg, opts[i], &s);
        if (rc == TANDEM_ERR_NOTFOUND)
            continue;
        if (rc)
            return rc;
        if (strcmp(s, "pv") && strcmp(s, "generic") && strcmp(s, "pvh"))
            return opt_fail(ctx, cfg, opts[i],
                            "'%s' guests are not supported; Tandem runs paravirtual guests only "
                            "(use \"pv\" or leave it out)",
                            s);
    }
    return 0;
}

static int convert_memory(tandem_ctx *ctx, const tandem_cfg *cfg, tandem_domain_build_info *b)
{
    long memory = DEFAULT_MEMORY_MIB, maxmem = 0;
    int have_mem, have_max, rc;

    rc = get_opt_long(ctx, cfg, "memory", 1, MAX_MEMORY_MIB, &memory, &have_mem);
    if (rc)
        return rc;
    rc = get_opt_long(ctx, cfg, "maxmem", 1, MAX_MEMORY_MIB, &maxmem, &have_max);
    if (rc)
        return rc;
    if (!have_mem && have_max)
        memory = maxmem;
    if (!have_max)
        maxmem = memory;
    if (maxmem < memory)
        return opt_fail(ctx, cfg, "maxmem", "%ld MiB is less than memory (%ld MiB)", maxmem,
                        memory);
    b->target_memkb = (uint64_t)memory * 1024;
    b->max_memkb = (uint64_t)maxmem * 1024;
    return 0;
}

static int convert_vcpus(tandem_ctx *ctx, const tandem_cfg *cfg, tandem_domain_build_info *b)
{
    long vcpus = 1, maxvcpus = 0;
    int have, have_max, rc;

    rc = get_opt_long(ctx, cfg, "vcpus", 1, MAX_VCPUS, &vcpus, &have);
    if (rc)
        return rc;
    rc = get_opt_long(ctx, cfg, "maxvcpus", 1, MAX_VCPUS, &maxvcpus, &have_max);
    if (rc)
        return rc;
    if (have_max && maxvcpus < vcpus)
        return opt_fail(ctx, cfg, "maxvcpus", "%ld is less than vcpus (%ld)", maxvcpus, vcpus);
    b->max_vcpus = (int)(have_max ? maxvcpus : vcpus);
    return 0;
}

/* kernel: as given if absolute or found from the cwd, else next to the config file. */
static int convert_kernel(tandem_ctx *ctx, const tandem_cfg *cfg, tandem_domain_build_info *b)
{
    const char *src = tandem_cfg_source(cfg), *slash;
    char *k = NULL, *alt = NULL, resolved[PATH_MAX];
    int rc = get_opt_string(ctx, cfg, "kernel", &k);

    if (rc)
        goto out;
    if (!k) {
        rc = tandem_error(ctx, TANDEM_ERR_INVAL, "%s: kernel: option is mandatory (the guest image)",
                          src);
        goto out;
    }
    if (!k[0]) {
        rc = opt_fail(ctx, cfg, "kernel", "empty path");
        goto out;
    }
    if (k[0] != '/' && access(k, F_OK) != 0 && (slash = strrchr(src, '/')) != NULL) {
        if (asprintf(&alt, "%.*s/%s", (int)(slash - src), src, k) < 0) {
            alt = NULL;
            rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (access(alt, F_OK) == 0) {
            free(k);
            k = alt;
            alt = NULL;
        }
    }
    /* Absolute, so the daemonised VMM (cwd "/") finds it. */
    if (realpath(k, resolved)) {
        free(k);
        k = strdup(resolved);
        if (!k) {
            rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    free(b->kernel);
    b->kernel = k;
    k = NULL;
out:
    free(k);
    free(alt);
    return rc;
}

/* cmdline wins; otherwise "root=ROOT EXTRA" as xl builds it. */
static int convert_cmdline(tandem_ctx *ctx, const tandem_cfg *cfg, tandem_domain_build_info *b)
{
    char *cmdline = NULL, *root = NULL, *extra = NULL;
    int rc;

    if ((rc = get_opt_string(ctx, cfg, "cmdline", &cmdline)) ||
        (rc = get_opt_string(ctx, cfg, "root", &root)) ||
        (rc = get_opt_string(ctx, cfg, "extra", &extra)))
        goto out;
    if (cmdline && (root || extra)) {
        rc = opt_fail(ctx, cfg, "cmdline", "cannot be combined with 'root' or 'extra'");
        goto out;
    }
    if (!cmdline && (root || extra)) {
        if (asprintf(&cmdline, "%s%s%s%s", root ? "root=" : "", root ? root : "",
                     root && extra ? " " : "", extra ? extra : "") < 0) {
            cmdline = NULL;
            rc = tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    free(b->cmdline);
    b->cmdline = cmdline;
    cmdline = NULL;
out:
    free(cmdline);
    free(root);
    free(extra);
    return rc;
}

/* Element i of list option opt as a string and its line, or an error naming it. */
static int list_string(tandem_ctx *ctx, const tandem_cfg *cfg, const char *opt,
                       const tandem_cfg_value *list, int i, const char **out, int *line)
{
    const tandem_cfg_value *v = tandem_cfg_value_elem(list, i);

    *line = tandem_cfg_value_line(v);
    if (tandem_cfg_value_kind(v) != TANDEM_CFG_STRING)
        return tandem_error(ctx, TANDEM_ERR_INVAL,
                            "%s:%d: %s[%d]: expected a string spec, got a list",
                            tandem_cfg_source(cfg), *line, opt, i);
    *out = tandem_cfg_value_string(v);
    return 0;
}

/*
 * Fetch list option opt (a single string is refused, naming it) and
 * allocate *array, zeroed, for its *n elements of elem_size bytes. An
 * absent option is an empty list: *n = 0, *array untouched.
 */
static int get_spec_list(tandem_ctx *ctx, const tandem_cfg *cfg, const char *opt,
                         size_t elem_size, const tandem_cfg_value **out, int *n, void **array)
{
    int count, rc = tandem_cfg_get_list(ctx, cfg, opt, out);

    *n = 0;
    if (rc == TANDEM_ERR_NOTFOUND) {
        *out = NULL;
        return 0;
    }
    if (rc)
        return rc;
    count = tandem_cfg_value_count(*out);
    if (count == 0)
        return 0;
    *array = calloc((size_t)count, elem_size);
    if (!*array)
        return tandem_error(ctx, TANDEM_ERR_NOMEM, "out of memory");
    *n = count;
    return 0;
}

static int convert_disks(tandem_ctx *ctx, const tandem_cfg *cfg, tandem_domain_config *d)
{
    const tandem_cfg_value *list;
    void *array = NULL;
    int n, rc = get_spec_list(ctx, cfg, "disk", sizeof(*d->disks), &list, &n, &array);

    if (rc || n == 0)
        return rc;
    d->disks = array;
    for (int i = 0; i < n; i++) {
        const char *spec;
        int line;
        tandem_device_disk_init(&d->disks[i]);
        d->num_disks = i + 1;
        if ((rc = list_string(ctx, cfg, "disk", list, i, &spec, &line)))
            return rc;
        rc = tandem_disk_parse(ctx, &d->disks[i], 1, &spec);
        if (rc) {
            tandem_error_prefix(ctx, "%s:%d: disk[%d]", tandem_cfg_source(cfg), line, i);
            return rc;
        }
        for (int j = 0; j < i; j++)
            if (d->disks[j].vdev && d->disks[i].vdev && !strcmp(d->disks[j].vdev, d->disks[i].vdev))
                return tandem_error(ctx, TANDEM_ERR_INVAL,
                                    "%s:%d: disk[%d]: vdev '%s' is already used by disk[%d]",
                                    tandem_cfg_source(cfg), line, i, d->disks[i].vdev, j);
    }
    return 0;
}

static int convert_nics(tandem_ctx *ctx, const tandem_cfg *cfg, tandem_domain_config *d)
{
    const tandem_cfg_value *list;
    void *array = NULL;
    int n, rc = get_spec_list(ctx, cfg, "vif", sizeof(*d->nics), &list, &n, &array);

    if (rc || n == 0)
        return rc;
    d->nics = array;
    for (int i = 0; i < n; i++) {
        const char *spec;
        int line;
        tandem_device_nic_init(&d->nics[i]);
        d->num_nics = i + 1;
        if ((rc = list_string(ctx, cfg, "vif", list, i, &spec, &line)))
            return rc;
        rc = tandem_nic_parse(ctx, &d->nics[i], spec);
        if (rc) {
            tandem_error_prefix(ctx, "%s:%d: vif[%d]", tandem_cfg_source(cfg), line, i);
            return rc;
        }
        if (d->nics[i].devid < 0)
            d->nics[i].devid = i; /* xl numbers vifs in order */
        for (int j = 0; j < i; j++)
            if (d->nics[j].devid == d->nics[i].devid)
                return tandem_error(ctx, TANDEM_ERR_INVAL,
                                    "%s:%d: vif[%d]: devid %d is already used by vif[%d]",
                                    tandem_cfg_source(cfg), line, i, d->nics[i].devid, j);
    }
    return 0;
}

static int convert_action(tandem_ctx *ctx, const tandem_cfg *cfg, const char *opt,
                          tandem_action_on_shutdown dflt, tandem_action_on_shutdown *out)
{
    const char *s;
    int rc = tandem_cfg_get_string(ctx, cfg, opt, &s);

    *out = dflt;
    if (rc == TANDEM_ERR_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (tandem_action_on_shutdown_from_string(s, out))
        return opt_fail(ctx, cfg, opt,
                        "unknown action '%s' (destroy, restart, rename-restart, preserve, "
                        "coredump-destroy, coredump-restart, soft-reset)",
                        s);
    return 0;
}

static int convert_remus(tandem_ctx *ctx, const tandem_cfg *cfg, tandem_domain_config *d)
{
    int rc = get_opt_string(ctx, cfg, "remus_backup", &d->remus_backup);

    if (rc || !d->remus_backup)
        return rc;
    if (!d->remus_backup[0] || strpbrk(d->remus_backup, " \t/"))
        return opt_fail(ctx, cfg, "remus_backup",
                        "'%s' is not a host name (the backup host, as for 'tandem remus')",
                        d->remus_backup);
    return 0;
}

int tandem_domain_config_from_cfg(tandem_ctx *ctx, const tandem_cfg *cfg, tandem_domain_config *out)
{
    const char *uuid;
    int rc;

    if ((rc = check_known(ctx, cfg)) || (rc = convert_guest_type(ctx, cfg)))
        return rc;

    rc = get_opt_string(ctx, cfg, "name", &out->c_info.name);
    if (rc)
        return rc;
    if (!out->c_info.name)
        return tandem_error(ctx, TANDEM_ERR_INVAL, "%s: name: option is mandatory",
                            tandem_cfg_source(cfg));
    if ((rc = tandem_domain_name_check(ctx, out->c_info.name)))
        return opt_error(ctx, cfg, "name", rc);

    rc = tandem_cfg_get_string(ctx, cfg, "uuid", &uuid);
    if (rc == 0) {
        if (tandem_uuid_from_string(uuid, &out->c_info.uuid))
            return opt_fail(ctx, cfg, "uuid",
                            "'%s' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", uuid);
    } else if (rc != TANDEM_ERR_NOTFOUND) {
        return rc;
    }

    if ((rc = convert_memory(ctx, cfg, &out->b_info)) ||
        (rc = convert_vcpus(ctx, cfg, &out->b_info)) ||
        (rc = convert_kernel(ctx, cfg, &out->b_info)) ||
        (rc = convert_cmdline(ctx, cfg, &out->b_info)) || (rc = convert_disks(ctx, cfg, out)) ||
        (rc = convert_nics(ctx, cfg, out)) ||
        (rc = convert_action(ctx, cfg, "on_poweroff", TANDEM_ACTION_ON_SHUTDOWN_DESTROY,
                             &out->on_poweroff)) ||
        (rc = convert_action(ctx, cfg, "on_reboot", TANDEM_ACTION_ON_SHUTDOWN_RESTART,
                             &out->on_reboot)) ||
        (rc = convert_action(ctx, cfg, "on_crash", TANDEM_ACTION_ON_SHUTDOWN_DESTROY,
                             &out->on_crash)) ||
        (rc = convert_remus(ctx, cfg, out)))
        return rc;
    return 0;
}

int tandem_domain_config_load(tandem_ctx *ctx, const char *path, int noverrides,
                              char *const *overrides, tandem_domain_config *out)
{
    tandem_cfg *cfg = NULL;
    int rc = tandem_cfg_parse_file(ctx, path, &cfg);

    if (rc)
        goto out;
    for (int i = 0; i < noverrides; i++)
        if ((rc = tandem_cfg_apply_override(ctx, cfg, overrides[i], i + 1)))
            goto out;
    rc = tandem_domain_config_from_cfg(ctx, cfg, out);
out:
    tandem_cfg_free(cfg);
    return rc;
}
