/* The device table: disks and vifs from the config, their ops, boot-info entries and JSON view. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

/* "xvda" → boot-info name; longer names are cut to fit (the spec's vdev stays intact in JSON). */
static void set_name(struct tandem_device *abi, const char *name)
{
    snprintf(abi->name, sizeof(abi->name), "%s", name);
}

static int add_dev(struct vmm *vm, const struct vmm_dev_ops *ops, char *err, size_t errlen)
{
    struct vmm_dev *d;

    if (vm->num_devs >= TANDEM_ABI_MAX_DEVICES) {
        snprintf(err, errlen, "too many devices: at most %u disks and vifs together",
                 TANDEM_ABI_MAX_DEVICES);
        return -1;
    }
    d = &vm->devs[vm->num_devs];
    memset(d, 0, sizeof(*d));
    d->ops = ops;
    d->abi.handle = vm->num_devs;
    d->blk.fd = -1;
    d->vif.tap_fd = -1;
    vm->num_devs++;
    return 0;
}

/*
 * Daemon mode: put generated MACs into DIR/config.json (written aside,
 * then renamed) before the library hears the domain is up. The config is
 * what `list -l` shows and what save, migration and Remus carry, so the
 * guest keeps its MAC wherever it resumes.
 */
static int write_back_macs(struct vmm *vm, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    json_error_t jerr;
    json_t *cfg = NULL, *nics;
    bool changed = false;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/config.json", vm->dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    nics = json_object_get(cfg, "nics");
    if (!cfg || !json_is_array(nics)) {
        snprintf(err, errlen, "%s: cannot record generated MACs: %s", path,
                 cfg ? "no nics array" : jerr.text);
        goto out;
    }
    for (unsigned k = 0; k < vm->num_devs; k++) {
        struct vmm_dev *d = &vm->devs[k];
        json_t *nic;

        if (!d->nic || !tandem_mac_is_zero(d->nic->mac))
            continue;
        nic = json_array_get(nics, (size_t)(d->nic - vm->p.nics));
        if (!json_is_object(nic) ||
            json_object_set_new(nic, "mac", json_string(d->vif.mac_str)) < 0) {
            snprintf(err, errlen, "%s: cannot record the MAC of vif %s", path, d->vif.ifname);
            goto out;
        }
        changed = true;
    }
    if (changed && (json_dump_file(cfg, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0)) {
        snprintf(err, errlen, "%s: cannot record generated MACs: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    json_decref(cfg);
    return rc;
}

int vmm_dev_setup_all(struct vmm *vm, char *err, size_t errlen)
{
    int i, next_devid = 0;

    vm->num_devs = 0;
    for (i = 0; i < vm->p.num_disks; i++) {
        if (add_dev(vm, &vmm_block_ops, err, errlen) < 0)
            goto fail;
        vm->devs[vm->num_devs - 1].disk = &vm->p.disks[i];
        vm->devs[vm->num_devs - 1].devid = i;
    }
    for (i = 0; i < vm->p.num_nics; i++) {
        const tandem_device_nic *nic = &vm->p.nics[i];
        struct vmm_dev *d;
        int j;

        if (add_dev(vm, &vmm_net_ops, err, errlen) < 0)
            goto fail;
        d = &vm->devs[vm->num_devs - 1];
        d->nic = nic;
        /* xl numbers vifs in order unless the spec gives devid; a given devid must be unique. */
        d->devid = nic->devid >= 0 ? nic->devid : next_devid;
        for (j = 0; j < i; j++)
            if (vm->devs[vm->p.num_disks + j].devid == d->devid) {
                snprintf(err, errlen, "vif %d: devid %d is used twice", i, d->devid);
                goto fail;
            }
        next_devid = d->devid + 1;
    }
    for (unsigned k = 0; k < vm->num_devs; k++) {
        struct vmm_dev *d = &vm->devs[k];

        if (d->ops->setup(vm, d, err, errlen) < 0)
            goto fail;
        d->is_setup = true;
        if (d->nic) {
            char name[24];
            snprintf(name, sizeof(name), "eth%d", d->devid);
            set_name(&d->abi, name);
        } else {
            set_name(&d->abi, d->disk->vdev ? d->disk->vdev : "disk");
        }
    }
    if (vm->dir && vm->p.num_nics > 0 && write_back_macs(vm, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    vmm_dev_teardown_all(vm);
    return -1;
}

void vmm_dev_teardown_all(struct vmm *vm)
{
    /* Reverse order: the last device set up goes first. */
    for (unsigned k = vm->num_devs; k-- > 0;) {
        struct vmm_dev *d = &vm->devs[k];

        if (d->ops && d->ops->teardown)
            d->ops->teardown(vm, d);
        d->is_setup = false;
    }
    vm->num_devs = 0;
}

unsigned vmm_dev_boot_info(struct vmm *vm, struct tandem_device *out, unsigned max)
{
    unsigned n = vm->num_devs < max ? vm->num_devs : max;

    for (unsigned k = 0; k < n; k++)
        out[k] = vm->devs[k].abi;
    return n;
}

struct vmm_dev *vmm_dev_get(struct vmm *vm, uint32_t handle, uint32_t type)
{
    if (handle >= vm->num_devs || vm->devs[handle].abi.type != type || !vm->devs[handle].is_setup)
        return NULL;
    return &vm->devs[handle];
}

uint64_t vmm_dev_ready_set(struct vmm *vm)
{
    uint64_t set = 0;

    for (unsigned k = 0; k < vm->num_devs; k++)
        if (vm->devs[k].abi.type == TANDEM_DEVICE_VIF && vm->devs[k].is_setup &&
            (vm->devs[k].ring ? vmm_io_ring_has_input(vm, &vm->devs[k])
                              : vmm_net_has_input(&vm->devs[k])))
            set |= 1ull << k;
    return set;
}

json_t *vmm_dev_json(struct vmm *vm)
{
    json_t *arr = json_array(), *o;

    if (!arr)
        return NULL;
    for (unsigned k = 0; k < vm->num_devs; k++) {
        struct vmm_dev *d = &vm->devs[k];

        if (d->disk) {
            o = json_pack("{s:s,s:i,s:i,s:s,s:s,s:s,s:b,s:I,s:i}", "type", "disk", "handle", (int)k,
                          "devid", d->devid, "vdev", d->disk->vdev ? d->disk->vdev : "",
                          "pdev_path", d->disk->pdev_path ? d->disk->pdev_path : "", "format",
                          "raw", "readonly", d->blk.readonly, "capacity",
                          (json_int_t)d->blk.capacity, "sector_size", (int)d->abi.sector_size);
        } else {
            o = json_pack("{s:s,s:i,s:i,s:s,s:s,s:s,s:i,s:s,s:s,s:I,s:I,s:I}", "type", "vif",
                          "handle", (int)k, "devid", d->devid, "mac", d->vif.mac_str, "ifname",
                          d->vif.ifname, "bridge", d->vif.bridge ? d->vif.bridge : "", "mtu",
                          (int)d->abi.mtu, "script", d->vif.script ? d->vif.script : "", "ip",
                          d->vif.ip ? d->vif.ip : "", "rx_frames", (json_int_t)d->vif.rx_frames,
                          "tx_frames", (json_int_t)d->vif.tx_frames, "rx_dropped",
                          (json_int_t)d->vif.rx_dropped);
            if (o) {
                /* Ring path: malformed frames dropped; stalls on a full output (none dropped). */
                uint64_t dropped = 0, stalls = 0;
                vmm_io_ring_counters(vm, d, &dropped, &stalls);
                json_object_set_new(o, "tx_dropped", json_integer((json_int_t)dropped));
                json_object_set_new(o, "tx_stalls", json_integer((json_int_t)stalls));
            }
        }
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}
