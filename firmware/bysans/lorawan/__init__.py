# LoRaWAN 1.0.4 class A for EU868: crypto (AES-CMAC over cryptolib), frames, the channel plan with
# integer time on air and duty-cycle accounting, MAC commands, and the MAC itself (mac.ClassA).
# Import the submodule you need; this package imports nothing so a small board pays only for what it uses.
