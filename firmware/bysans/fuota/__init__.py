# FUOTA over LoRaWAN (docs/formats/fuota.md): the dispatcher is bysans.fuota.dispatch, the packages clock,
# multicast and frag. Kept empty: importing one package (frag, on a small heap) must not load the others.
