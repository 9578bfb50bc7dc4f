"""Virtual boards: the MicroPython unix port behind a pseudo-terminal, with simulated hardware."""
