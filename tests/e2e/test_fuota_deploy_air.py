"""A FUOTA deployment through the simulated air, end to end (docs/formats/fuota.md, "Deployment"): ten virtual
boards provisioned with a signed release and enrolled in the lab's registry, behind simulated gateways (packet
forwarder v2) of the lab network server, take the next release as a signed delta payload over class C
multicast, as `fleet rollout start --via lorawan --kommune 751 --board virtual ... -o DIR` plans it. Each
board's clock is synced (TS003) to the network's GPS time (the network server maps each gateway's clock
onto it), so the folder's GPS times mean the same on every board: the command is given the session's slot
with --session-at; the network server sends each board its requests from unicast.txt (class A, one per
uplink's RX1: McGroupSetupReq with McKey under that board's own McKEKey, FragSessionSetupReq,
McClassCSessionReq), then frames.txt's frames, bytes as written, at their GPS times, with 20 % of them not
sent to each board (different ones per board); the boards' own decoders rebuild the payload. Their FUOTA
answers (FPorts 200-202) and then their update reports (FPort 222) reach the rollout the command stored
through TelemetryStore.ingest as ChirpStack events, stamped with the network's time; `fleet rollout status
--via lorawan --json` reads it. Each board whose status answer made it `rebuilt` runs its node app
(bysans.app), nothing typed at its REPL: the wake that finds the rebuilt block installs it in a boot of its
own through the OTA verifier, resets into the new slot, confirms it in its first boot, and the next wakes send
the update report over the air: the rollout ends with every such device `confirmed`, none bricked.
Three boards' air is harder, in the same session: one misses 70 % of its fragments (its status answer after
the class C window still misses some: the rollout fails it, it installs nothing and runs 1.0.0); one is sent a
forged stream (one byte of the payload's object flipped, the payload's CRC-32 made right: the network server,
which holds the board's keys, frames the tampered fragments with the group's McKey on the folder's counters
and times), rebuilds it, and its installer refuses it: it runs 1.0.0 and its refused update report fails it
in the stored rollout; two get noise among their fragments (out of order, duplicates, a fragment of another
session index, fragments of the wrong size, framed likewise) and rebuild all the same.
lab/fuota_air.py and lab/fuota_folder.py drive it (scripts/benches/fuota.py runs the same at full size:
fuota.air_boards_installed)."""

import os

from lab.fuota_air import deployment

BOARDS = int(os.environ.get("BYSANS_FUOTA_AIR_BOARDS", "10"))
SPEED = 20  # the simulated clock's speed-up: the class C session (~2 simulated minutes) takes ~8 s


LOSSY, FORGED, NOISY = 7, 8, (2, 3)  # the boards given a harder time (lab.fuota_air.deployment)


def test_ten_boards_rebuild_and_install_a_signed_delta_release_through_the_air(make_board, tmp_path):
    out = deployment(make_board, tmp_path, boards=BOARDS, loss=0.20, speed=SPEED, lossy=LOSSY, lossy_loss=0.70,
                     forged=FORGED, noisy=NOISY)
    plan = out["plan"]
    assert plan["dr"] == 5 and plan["nb_frag"] >= 2 and out["payload_bytes"] < 5 * 1024
    # every frame went on air, but for one the gateway got too late (a host stalled past its send time; a
    # gateway drops it, as a real one does): that is loss like any other, within what the plan covers
    assert set(out["tx_errors"]) <= {"TOO_LATE"} and out["tx_late"] <= 0.03 * out["tx_frames"], out["tx_errors"]
    healthy = [i for i in range(BOARDS) if i not in (LOSSY, FORGED)]
    for i in healthy:
        b = out["boards"][i]
        # 20 % not sent to each board; the air loses none of the rest (the radio stays in RX, as in the
        # one-board class C test) unless the host stalls a board longer than a fragment interval: the chip
        # then keeps only the last frame, as a real one does. The noisy boards' frames include the noise
        # (duplicates, another session's fragment, wrong sizes, out of order): they rebuild all the same.
        assert plan["nb_frag"] <= b["received"] <= b["sent"], (i, b)
        assert b["block"] == out["payload_bytes"], (i, b)
        assert (b["before_reports"], b["state"], b["missing"], b["version"], b["app"], b["last"], b["files_ok"]) == \
            ("rebuilt", "confirmed", 0, "2.0.0", "2.0.0", "confirmed", True), (i, b)
        # by itself: its app's install boot said so, and its update reports said confirmed
        assert any("fuota install: installed" in ln for ln in b["log"]), (i, b["log"])
        assert b["reports"] and set(b["reports"]) <= {"installed", "confirmed"} and "confirmed" in b["reports"], (i, b)
    # 70 % of its fragments lost: its status answer after the session still misses some; the rollout fails
    # it, nothing is installed, it runs the release it had
    b = out["boards"][LOSSY]
    assert b["received"] < plan["nb_frag"] and b["missing"] > 0, b
    assert (b["before_reports"], b["state"], b["version"], b["last"], b["files_ok"]) == \
        ("failed", "failed", "1.0.0", None, True), b
    assert "fragments missing" in b["reason"] and "reports" not in b, b
    # a forged stream (one object byte flipped, the CRC-32 made right): the decoder rebuilds a block of the
    # right size, the installer refuses it, the board keeps its release and its refusal reaches the rollout
    b = out["boards"][FORGED]
    assert (b["before_reports"], b["missing"], b["block"]) == ("rebuilt", 0, out["payload_bytes"]), b
    assert (b["state"], b["version"], b["last"], b["files_ok"]) == ("failed", "1.0.0", None, True), b
    assert b["reports"] == ["refused"] * len(b["reports"]) and b["reports"], b
    # (the flipped byte is in the object's zlib stream: it inflates short of the manifest's length, or to
    # other bytes than its SHA-256)
    why = b["reason"].split()[1]
    assert why in ("BAD_HASH", "TOO_SHORT") and b["reason"] == f"refused: {why} (update report)", b
    assert any(f"fuota install: failed {why}" in ln for ln in b["log"]), b["log"]
    assert not any("fuota install: installed" in ln for ln in b["log"]), b["log"]
    # the command's rollout and folder: the session in the slot it was given, its frames from that time, and
    # one McClassCSessionReq for every board (the same GPS time for all: their clocks agree)
    assert out["session_gps"] == out["session_at"] and out["first_frame_gps"] >= out["session_at"], out
    assert len(out["class_c_reqs"]) == 1 and out["rollout"]["id"] == out["rollout_id"], out
    # the FUOTA answers moved the stored rollout through ingest (clock synced, set up, fragments, rebuilt)
    assert out["ingest_answers"]["moved"] >= BOARDS and not out["ingest_answers"].get("not_in_rollout"), out
    assert out["progress"]["confirmed"] == len(healthy) and out["progress"]["failed"] == 2, out["progress"]
    # 2 of 10 failed, over its 10 % threshold: the rollout halted by itself (the reports still move its devices)
    assert (out["rollout"]["state"], out["rollout"]["failed_in_open_waves"]) == ("halted", 2), out["rollout"]
    # a report moves its device once (the repeats are heard): 8 confirmed, 1 refused
    assert out["ingest"]["moved"] == len(healthy) + 1 and not out["ingest"].get("not_in_rollout"), out["ingest"]
