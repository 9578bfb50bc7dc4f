"""A FUOTA deployment through the simulated air, end to end (docs/formats/fuota.md, "Deployment"): ten virtual
boards provisioned with a signed release, behind simulated gateways (packet forwarder v2) of the lab network
server, take the next release as a signed delta payload over class C multicast. Each board's clock is synced
(TS003); the group is set up with McKey encrypted under that board's own McKEKey and the fragmentation
session set up (both from fleet.fuota.deploy's plan); the class C session is announced; the plan's
DataFragments go out at the plan's spacing with 20 % of them not sent to each board (different ones per
board) — the air itself loses none of the rest (the radio stays in RX for the whole session, as a class C
chip does); the boards' own decoders rebuild the payload, their status answers move the rollout's devices
(fleet.fuota.rollout) to `rebuilt`; each board installs the block through the OTA verifier, resets into the
new slot and confirms it in its first boot: the rollout ends with every device `confirmed`, none bricked.
lab/fuota_air.py drives it (scripts/benches/fuota.py runs the same at full size: fuota.air_boards_installed).

The boards' simulated clocks are not one clock (each starts when its board does), so each fragment is handed
to each board's gateway for that board's own time (the same group, keys and payload)."""

import os

from lab.fuota_air import deployment

BOARDS = int(os.environ.get("BYSANS_FUOTA_AIR_BOARDS", "10"))


def test_ten_boards_rebuild_and_install_a_signed_delta_release_through_the_air(make_board, tmp_path):
    out = deployment(make_board, tmp_path, boards=BOARDS, loss=0.20)
    plan = out["plan"]
    assert plan["dr"] == 5 and plan["nb_frag"] >= 2 and out["payload_bytes"] < 5 * 1024
    assert out["tx_errors"] == []  # every frame went on air
    for i, b in enumerate(out["boards"]):
        assert plan["nb_frag"] <= b["received"] == b["sent"] < plan["fragments"], (i, b)  # 20 % not sent; none lost
        assert b["block"] == out["payload_bytes"], (i, b)
        assert (b["state"], b["missing"], b["version"], b["last"], b["files_ok"]) == \
            ("confirmed", 0, "2.0.0", "confirmed", True), (i, b)
    assert out["progress"]["confirmed"] == BOARDS
