# Bysans node firmware (MicroPython). Hardware comes only from the board object: bysans.hal.board().
