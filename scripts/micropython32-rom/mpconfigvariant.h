// The virtual board's MicroPython: the unix port's "standard" variant (same options as
// ../shared/tools/build-micropython32), plus vfs.rom_ioctl as an ESP32 with a `romfs` partition has it.
// Built by scripts/build-micropython32-rom; see vrom.c and docs/virtual-board.md ("ROMFS").

#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

#include "variants/mpconfigvariant_common.h"

// The standard variant has VfsRom but no rom_ioctl (a ROMFS image could only live in a bytes object on the
// GC heap). Here rom_ioctl answers as MicroPython 1.28's ESP32 port does (ports/esp32/esp32_partition.c),
// and mp_init() mounts segment 0 at /rom (extmod/vfs.c mp_vfs_mount_romfs_protected).
#undef MICROPY_VFS_ROM_IOCTL
#define MICROPY_VFS_ROM_IOCTL (1)
