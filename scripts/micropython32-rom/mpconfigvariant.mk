# The virtual board's variant of the unix port (scripts/build-micropython32-rom).
# main.c keeps the unix port's own mp_vfs_rom_ioctl (an empty ROMFS); every call goes to vrom.c's instead.
LDFLAGS_EXTRA += -Wl,--wrap=mp_vfs_rom_ioctl
