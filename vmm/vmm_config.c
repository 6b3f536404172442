/* Domain parameters: from DIR/config.json (tandem_domain_config) and checks against ABI and host. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tandem.h"
#include "vmm.h"

static char *read_text(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap + 65536);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory", path);
                free(buf);
                buf = NULL;
                goto out;
            }
            buf = nb;
            cap += 65536;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[len] = '\0';
out:
    fclose(f);
    return buf;
}

/* Map xl's on_* actions onto what this VMM can do; *note says what was approximated. */
static enum vmm_action map_action(tandem_action_on_shutdown a, enum vmm_action def,
                                  const char *what)
{
    switch (a) {
    case TANDEM_ACTION_ON_SHUTDOWN_DESTROY:
        return VMM_ACTION_DESTROY;
    case TANDEM_ACTION_ON_SHUTDOWN_RESTART:
        return VMM_ACTION_RESTART;
    case TANDEM_ACTION_ON_SHUTDOWN_PRESERVE:
        return VMM_ACTION_PRESERVE;
    case TANDEM_ACTION_ON_SHUTDOWN_RESTART_RENAME:
    case TANDEM_ACTION_ON_SHUTDOWN_COREDUMP_RESTART:
    case TANDEM_ACTION_ON_SHUTDOWN_SOFT_RESET:
        vmm_log("%s=%s: no core dumps or renames here; the domain restarts", what,
                tandem_action_on_shutdown_to_string(a));
        return VMM_ACTION_RESTART;
    case TANDEM_ACTION_ON_SHUTDOWN_COREDUMP_DESTROY:
        vmm_log("%s=%s: no core dumps here; the domain is destroyed", what,
                tandem_action_on_shutdown_to_string(a));
        return VMM_ACTION_DESTROY;
    }
    return def;
}

int vmm_config_load(struct vmm_params *p, const char *path, char *err, size_t errlen)
{
    tandem_domain_config cfg;
    tandem_ctx *ctx = NULL;
    char *text = NULL, uuid[TANDEM_UUID_STRLEN];
    uint64_t memkb;
    int rc = -1;

    tandem_domain_config_init(&cfg);
    text = read_text(path, err, errlen);
    if (!text)
        goto out;
    if (tandem_ctx_alloc(&ctx) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (tandem_domain_config_from_json(ctx, &cfg, text) != 0) {
        snprintf(err, errlen, "%s: %s", path, tandem_ctx_error(ctx));
        goto out;
    }
    if (!cfg.b_info.kernel || !cfg.b_info.kernel[0]) {
        snprintf(err, errlen, "%s: b_info.kernel: no kernel given", path);
        goto out;
    }
    if (cfg.b_info.max_vcpus < 0) {
        snprintf(err, errlen, "%s: b_info.max_vcpus: %d is negative", path, cfg.b_info.max_vcpus);
        goto out;
    }
    memkb = cfg.b_info.max_memkb ? cfg.b_info.max_memkb : cfg.b_info.target_memkb;
    if (memkb == 0) {
        snprintf(err, errlen, "%s: b_info.max_memkb: no memory size given", path);
        goto out;
    }
    if (memkb > (UINT64_MAX >> 10)) {
        snprintf(err, errlen, "%s: b_info.max_memkb: %llu KiB is too large", path,
                 (unsigned long long)memkb);
        goto out;
    }
    p->mem_bytes = memkb << 10;
    p->vcpus = cfg.b_info.max_vcpus ? (unsigned)cfg.b_info.max_vcpus : 1;
    p->name = strdup(cfg.c_info.name ? cfg.c_info.name : "");
    p->kernel = strdup(cfg.b_info.kernel);
    p->cmdline = strdup(cfg.b_info.cmdline ? cfg.b_info.cmdline : "");
    memcpy(p->uuid, cfg.c_info.uuid, 16);
    tandem_uuid_format(cfg.c_info.uuid, uuid);
    p->uuid_str = strdup(uuid);
    if (!p->name || !p->kernel || !p->cmdline || !p->uuid_str) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* Device specs: vmm_dev.c builds the devices from these copies. */
    if (cfg.num_disks > 0) {
        p->disks = calloc((size_t)cfg.num_disks, sizeof(*p->disks));
        if (!p->disks) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        for (int i = 0; i < cfg.num_disks; i++) {
            tandem_device_disk_init(&p->disks[i]);
            p->num_disks = i + 1;
            if (tandem_device_disk_copy(&p->disks[i], &cfg.disks[i]) != 0) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        }
    }
    if (cfg.num_nics > 0) {
        p->nics = calloc((size_t)cfg.num_nics, sizeof(*p->nics));
        if (!p->nics) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        for (int i = 0; i < cfg.num_nics; i++) {
            tandem_device_nic_init(&p->nics[i]);
            p->num_nics = i + 1;
            if (tandem_device_nic_copy(&p->nics[i], &cfg.nics[i]) != 0) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        }
    }
    /* xl's defaults when the config says nothing */
    p->on_poweroff = map_action(cfg.on_poweroff, VMM_ACTION_DESTROY, "on_poweroff");
    p->on_reboot = map_action(cfg.on_reboot, VMM_ACTION_RESTART, "on_reboot");
    p->on_crash = map_action(cfg.on_crash, VMM_ACTION_DESTROY, "on_crash");
    rc = 0;
out:
    tandem_domain_config_dispose(&cfg);
    tandem_ctx_free(ctx);
    free(text);
    return rc;
}

int vmm_params_add_device(struct vmm_params *p, bool nic, const char *spec, char *err,
                          size_t errlen)
{
    tandem_ctx *ctx = NULL;
    int rc = -1;

    if (tandem_ctx_alloc(&ctx) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (nic) {
        tandem_device_nic *n = realloc(p->nics, (size_t)(p->num_nics + 1) * sizeof(*n));
        if (!n) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        p->nics = n;
        tandem_device_nic_init(&n[p->num_nics]);
        p->num_nics++;
        if (tandem_nic_parse(ctx, &n[p->num_nics - 1], spec) != 0) {
            snprintf(err, errlen, "--vif %s: %s", spec, tandem_ctx_error(ctx));
            goto out;
        }
    } else {
        tandem_device_disk *d = realloc(p->disks, (size_t)(p->num_disks + 1) * sizeof(*d));
        if (!d) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        p->disks = d;
        tandem_device_disk_init(&d[p->num_disks]);
        p->num_disks++;
        if (tandem_disk_parse(ctx, &d[p->num_disks - 1], 1, &spec) != 0) {
            snprintf(err, errlen, "--disk %s: %s", spec, tandem_ctx_error(ctx));
            goto out;
        }
    }
    rc = 0;
out:
    tandem_ctx_free(ctx);
    return rc;
}

void vmm_params_free(struct vmm_params *p)
{
    free(p->name);
    free(p->uuid_str);
    free(p->kernel);
    free(p->cmdline);
    for (int i = 0; i < p->num_disks; i++)
        tandem_device_disk_dispose(&p->disks[i]);
    free(p->disks);
    for (int i = 0; i < p->num_nics; i++)
        tandem_device_nic_dispose(&p->nics[i]);
    free(p->nics);
    memset(p, 0, sizeof(*p));
}

/* MemAvailable from /proc/meminfo in bytes, or 0 when unknown. */
static uint64_t host_mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    char line[256];
    unsigned long long kb = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb << 10;
}

int vmm_params_check(struct vmm_params *p, char *err, size_t errlen)
{
    uint64_t avail;
    unsigned long long mib = (unsigned long long)(p->mem_bytes >> 20);

    if (p->vcpus != 1) {
        snprintf(err, errlen, "vcpus=%u: tandem-vmm runs exactly one vCPU per domain", p->vcpus);
        return -1;
    }
    if (p->mem_bytes % TANDEM_ABI_MEM_ALIGN != 0) {
        snprintf(err, errlen, "memory=%llu KiB: must be a multiple of 2 MiB",
                 (unsigned long long)(p->mem_bytes >> 10));
        return -1;
    }
    if (p->mem_bytes < TANDEM_ABI_MEM_MIN || p->mem_bytes > TANDEM_ABI_MEM_MAX) {
        snprintf(err, errlen, "memory=%llu MiB: must be between %llu MiB and %llu MiB", mib,
                 TANDEM_ABI_MEM_MIN >> 20, TANDEM_ABI_MEM_MAX >> 20);
        return -1;
    }
    avail = host_mem_available();
    if (avail && p->mem_bytes > avail) {
        snprintf(err, errlen, "memory=%llu MiB: more than this host can give (%llu MiB available)",
                 mib, (unsigned long long)(avail >> 20));
        return -1;
    }
    if (p->cmdline && strlen(p->cmdline) >= TANDEM_ABI_CMDLINE_MAX) {
        snprintf(err, errlen, "cmdline: %zu bytes, at most %u allowed", strlen(p->cmdline),
                 TANDEM_ABI_CMDLINE_MAX - 1);
        return -1;
    }
    return 0;
}
