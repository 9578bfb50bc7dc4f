"""Writing apps and configuration to boards over USB serial, and reading back what they run."""
