# Over-the-air updates: Ed25519 verification (ed25519), release metadata checks (verify).
