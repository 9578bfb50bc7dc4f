// vfs.rom_ioctl for the virtual board: the ROMFS segment is a read-only mmap of the board's flash file at its
// `romfs` partition's range, outside the GC heap, as an ESP32 memory-maps the partition
// (esp_partition_mmap in MicroPython 1.28's ports/esp32/esp32_partition.c). BYSANS_ROMFS="PATH:OFFSET:SIZE"
// (decimal) names it; without it there is no romfs partition: rom_ioctl(1) is 0 and rom_ioctl(2, 0) -EINVAL,
// as on an ESP32 whose table has none.
//
// _vrom.standins() maps BYSANS_VROM (a ROMFS image file): the virtual board's own stand-ins for the chip's
// C modules (fleet/sim/rom), run in place so that they take from the heap about what C modules would.
// It is not a segment of rom_ioctl: the firmware and mpremote never see it.
//
// BYSANS_QSTRS names a file of names (NUL-terminated, sorted by bytes) that the chip's firmware holds as static
// qstrs: the stand-ins' (on an ESP32 those modules are C, their names in flash) and, on a board whose
// MicroPython is Bysans's own build, the names module it freezes (boards/micropython/, fleet/firmware_names.py).
// They become one more read-only qstr pool outside the GC heap, as a frozen module's qstrs are a pool in
// an ESP32's flash; mp_init() asks rom_ioctl first, before any name is interned. _vrom.names() counts them.

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "py/qstr.h"
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

extern const qstr_pool_t mp_qstr_const_pool;  // py/qstr.c: the firmware's own names (no frozen modules here)
static size_t names_count;
static bool names_tried;

static void names_fail(const char *path, const char *why) {
    fprintf(stderr, "vrom: the names file %s %s: make it again (fleet/sim/vrom.py)\n", path, why);
    exit(1);
}

// The names of BYSANS_QSTRS as a qstr pool after the firmware's, in memory outside the GC heap. Only before
// any name is interned: a pool added later would renumber the interned ones.
static void names_load(void) {
    if (names_tried) {
        return;
    }
    names_tried = true;
    const char *path = getenv("BYSANS_QSTRS");
    if (path == NULL || *path == '\0') {
        return;
    }
    if (MP_STATE_VM(last_pool) != &mp_qstr_const_pool) {
        names_fail(path, "came after names were interned");
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        names_fail(path, "cannot be read");
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc(size > 0 ? size : 1);
    if (data == NULL || size <= 0 || fread(data, 1, size, f) != (size_t)size || data[size - 1] != '\0') {
        names_fail(path, "is empty or not NUL-terminated");
    }
    fclose(f);
    size_t n = 0;
    for (long i = 0; i < size; ++i) {
        n += data[i] == '\0';
    }
    qstr_pool_t *pool = malloc(sizeof(qstr_pool_t) + n * sizeof(const char *));
    #if MICROPY_QSTR_BYTES_IN_HASH
    qstr_hash_t *hashes = malloc(n * sizeof(qstr_hash_t));
    #endif
    qstr_len_t *lengths = malloc(n * sizeof(qstr_len_t));
    if (pool == NULL || lengths == NULL) {
        names_fail(path, "does not fit in memory");
    }
    // A name the interpreter has already stays its own (a qstr is one number: `gc` must stay MP_QSTR_gc), as
    // tools/mpy-tool.py leaves out of a frozen pool the names the firmware has.
    const char *s = data, *last = NULL;
    size_t at = 0;
    for (size_t i = 0; i < n; ++i) {
        size_t len = strlen(s);
        if (len == 0 || len >= ((size_t)1 << (8 * MICROPY_QSTR_BYTES_IN_LEN)) || (last && strcmp(last, s) >= 0)) {
            names_fail(path, "has an empty, too long, repeated or unsorted name");
        }
        if (qstr_find_strn(s, len) == MP_QSTRnull) {
            pool->qstrs[at] = s;
            lengths[at] = len;
            #if MICROPY_QSTR_BYTES_IN_HASH
            hashes[at] = qstr_compute_hash((const byte *)s, len);
            #endif
            ++at;
        }
        last = s;
        s += len + 1;
    }
    n = at;
    pool->prev = &mp_qstr_const_pool;
    pool->total_prev_len = mp_qstr_const_pool.total_prev_len + mp_qstr_const_pool.len;
    pool->is_sorted = true;
    pool->alloc = 10;  // as tools/mpy-tool.py sets a frozen pool's: the first pool interned after it has 20
    pool->len = n;
    #if MICROPY_QSTR_BYTES_IN_HASH
    pool->hashes = hashes;
    #endif
    pool->lengths = lengths;
    MP_STATE_VM(last_pool) = pool;
    names_count = n;
}

mp_obj_t __wrap_mp_vfs_rom_ioctl(size_t n_args, const mp_obj_t *args) {
    names_load();  // mp_init() calls this before anything is interned
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

static mp_obj_t vrom_names(void) {
    return MP_OBJ_NEW_SMALL_INT(names_count);
}
static MP_DEFINE_CONST_FUN_OBJ_0(vrom_names_obj, vrom_names);

static const mp_rom_map_elem_t vrom_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__vrom) },
    { MP_ROM_QSTR(MP_QSTR_standins), MP_ROM_PTR(&vrom_standins_obj) },
    { MP_ROM_QSTR(MP_QSTR_names), MP_ROM_PTR(&vrom_names_obj) },
};
static MP_DEFINE_CONST_DICT(vrom_module_globals, vrom_module_globals_table);

const mp_obj_module_t mp_module_vrom = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&vrom_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__vrom, mp_module_vrom);
