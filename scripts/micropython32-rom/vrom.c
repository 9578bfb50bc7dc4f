// vfs.rom_ioctl for the virtual board: the ROMFS segment is a read-only mmap of the board's flash file at its
// `romfs` partition's range, outside the GC heap, as an ESP32 memory-maps the partition
// (esp_partition_mmap in MicroPython 1.28's ports/esp32/esp32_partition.c). BYSANS_ROMFS="PATH:OFFSET:SIZE"
// (decimal) names it; without it there is no romfs partition: rom_ioctl(1) is 0 and rom_ioctl(2, 0) -EINVAL,
// as on an ESP32 whose table has none.
//
// _vrom.standins() maps BYSANS_VROM (a ROMFS image file): the virtual board's own stand-ins for the chip's
// C modules (fleet/sim/rom), run in place so that they take from the heap about what C modules would.
// It is not a segment of rom_ioctl: the firmware and mpremote never see it.

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "py/runtime.h"
#include "py/mperrno.h"
#include "extmod/vfs.h"

typedef struct {
    const void *ptr;
    size_t len;
    bool tried;
} vrom_map_t;

static vrom_map_t romfs_map, standins_map;

static void vrom_map(vrom_map_t *m, const char *spec, bool whole_file) {
    if (m->tried) {
        return;
    }
    m->tried = true;
    if (spec == NULL || *spec == '\0') {
        return;
    }
    char path[512];
    unsigned long offset = 0, size = 0;
    const char *colon = whole_file ? NULL : strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n >= sizeof(path)) {
        return;
    }
    memcpy(path, spec, n);
    path[n] = '\0';
    if (colon != NULL && sscanf(colon + 1, "%lu:%lu", &offset, &size) != 2) {
        return;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return;
    }
    if (colon == NULL) {
        struct stat st;
        if (fstat(fd, &st) != 0) {
            close(fd);
            return;
        }
        size = st.st_size;
    }
    void *p = size ? mmap(NULL, size, PROT_READ, MAP_SHARED, fd, offset) : MAP_FAILED;
    close(fd);
    if (p != MAP_FAILED) {
        m->ptr = p;
        m->len = size;
    }
}

mp_obj_t __wrap_mp_vfs_rom_ioctl(size_t n_args, const mp_obj_t *args) {
    vrom_map(&romfs_map, getenv("BYSANS_ROMFS"), false);
    switch (mp_obj_get_int(args[0])) {
        case MP_VFS_ROM_IOCTL_GET_NUMBER_OF_SEGMENTS:
            return MP_OBJ_NEW_SMALL_INT(romfs_map.ptr != NULL);
        case MP_VFS_ROM_IOCTL_GET_SEGMENT:
            if (romfs_map.ptr == NULL || (n_args > 1 && mp_obj_get_int(args[1]) != 0)) {
                return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
            }
            return mp_obj_new_memoryview('B', romfs_map.len, (void *)romfs_map.ptr);
        default:
            // Writes go through esp32.Partition (the romfs partition's blocks), as mpremote's romfs deploy
            // does on an ESP32, whose segment is a Partition object.
            return MP_OBJ_NEW_SMALL_INT(-MP_EINVAL);
    }
}

static mp_obj_t vrom_standins(void) {
    vrom_map(&standins_map, getenv("BYSANS_VROM"), true);
    if (standins_map.ptr == NULL) {
        return mp_const_none;
    }
    return mp_obj_new_memoryview('B', standins_map.len, (void *)standins_map.ptr);
}
static MP_DEFINE_CONST_FUN_OBJ_0(vrom_standins_obj, vrom_standins);

static const mp_rom_map_elem_t vrom_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__vrom) },
    { MP_ROM_QSTR(MP_QSTR_standins), MP_ROM_PTR(&vrom_standins_obj) },
};
static MP_DEFINE_CONST_DICT(vrom_module_globals, vrom_module_globals_table);

const mp_obj_module_t mp_module_vrom = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&vrom_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__vrom, mp_module_vrom);
