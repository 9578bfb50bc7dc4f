"""Bysans fleet: the host-side library and `fleet` command for ESP32/LoRaWAN sensor nodes."""

__version__ = "0.1.0"
