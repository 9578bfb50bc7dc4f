"""`fleet ingest`: uplinks from network servers into the registry (readings, health, alerts)."""

import logging
import signal
import threading
import time

import click

from ..registry import Registry
from ..telemetry.alerts import AlertRules, MqttNotifier, WebhookNotifier
from .common import echo_json


def rules_options(f):
    """--full-pct, --battery-v, --silent-intervals: the alert thresholds (shared by ingest and alerts)."""
    f = click.option("--silent-intervals", type=click.IntRange(1, 1000), default=AlertRules.silent_intervals,
                     show_default=True, help="A node is silent after this many expected uplink intervals.")(f)
    f = click.option("--battery-v", type=float, default=AlertRules.battery_mv / 1000, show_default=True,
                     help="Low-battery alert below this voltage.")(f)
    f = click.option("--full-pct", type=click.FloatRange(1, 100), default=AlertRules.full_bp / 100,
                     show_default=True, help="A bin is full at this fill level (%).")(f)
    return f


def make_rules(full_pct, battery_v, silent_intervals) -> AlertRules:
    return AlertRules(full_bp=int(round(full_pct * 100)), battery_mv=int(round(battery_v * 1000)),
                      silent_intervals=silent_intervals)


def make_notifier(webhook, alert_topic, broker):
    if webhook:
        return WebhookNotifier(webhook)
    if alert_topic:
        return MqttNotifier(broker, alert_topic)
    return None


@click.group("ingest")
def command():
    """Take uplinks from ChirpStack v4 or The Things Stack v3 (MQTT) into the registry.

    OS2iot data targets push to 'fleet serve' instead (POST /api/ingest/os2iot, docs/ingest.md).

    \b
    Example:
      fleet ingest mqtt --broker mqtt://127.0.0.1:1883 --format chirpstack
    """


@command.command("mqtt")
@click.option("--broker", required=True, envvar="FLEET_MQTT_BROKER", metavar="URL",
              help="mqtt://[user:password@]HOST:PORT, mqtts:// for TLS [FLEET_MQTT_BROKER].")
@click.option("--format", "fmt", type=click.Choice(["chirpstack", "tts"]), required=True,
              help="Event shape: ChirpStack v4 (application/+/device/+/event/up) or The Things Stack v3 "
                   "(v3/+/devices/+/up).")
@click.option("--topic", "topics", multiple=True, metavar="TOPIC",
              help="Subscribe to this topic instead of the format's default (repeatable).")
@click.option("--client-id", default="bysans-fleet-ingest", show_default=True,
              help="Fixed MQTT client id: the broker keeps this session's messages while ingest is down.")
@click.option("--share", metavar="GROUP",
              help="Join the MQTT 5 shared subscription $share/GROUP/TOPIC with other workers (each with its own "
                   "--client-id): the broker hands each message to one of them.")
@click.option("--session-expiry", type=click.IntRange(60, 2**32 - 1), default=7 * 86400, show_default=True,
              metavar="SECONDS", help="How long the broker keeps this session (and queues its messages) while "
                                      "ingest is away.")
@click.option("--lag-alert", type=click.FloatRange(1), default=60.0, show_default=True, metavar="SECONDS",
              help="Behind when a received message waits longer than this to be stored.")
@click.option("--backlog-alert", type=click.IntRange(1), default=50_000, show_default=True, metavar="N",
              help="Behind when the broker says it holds more than N messages ($SYS/broker/store/messages/count).")
@click.option("--db", metavar="URL", envvar="FLEET_DB", help="Registry database URL or SQLite path [FLEET_DB].")
@click.option("--webhook", metavar="URL", envvar="FLEET_ALERT_WEBHOOK",
              help="POST each new alert as JSON to this URL [FLEET_ALERT_WEBHOOK].")
@click.option("--alert-topic", metavar="TOPIC", envvar="FLEET_ALERT_TOPIC",
              help="Publish each new alert on this topic of the broker; {kommune} and {kind} are filled in "
                   "[FLEET_ALERT_TOPIC].")
@rules_options
@click.option("--duration", type=float, metavar="SECONDS",
              help="Stop after this long (default: until Ctrl-C or SIGTERM, which stop at once too).")
@click.option("--json", "as_json", is_flag=True, help="Print the counters as JSON when stopping.")
@click.option("-v", "--verbose", is_flag=True, help="Log every batch.")
def mqtt_cmd(broker, fmt, topics, client_id, share, session_expiry, lag_alert, backlog_alert, db, webhook, alert_topic, full_pct, battery_v, silent_intervals,
             duration, as_json, verbose):
    """Subscribe (QoS 1, persistent session) and store every uplink until Ctrl-C or SIGTERM.

    Malformed events (not JSON, bad base64, wrong FPort, unknown device) are counted and logged; ingest
    goes on. A message is acknowledged only after it is stored, so a restart of the broker or of this
    command loses nothing, and a redelivered message is stored once.

    Stopping prints the counters (--json: as JSON). Exit code 0 after SIGTERM or --duration, 130 after
    Ctrl-C (SIGINT).

    \b
    Example:
      fleet ingest mqtt --broker mqtt://127.0.0.1:1883 --format chirpstack
      fleet ingest mqtt --broker mqtt://127.0.0.1:1883 --format tts --webhook https://alerts.example/hook
      fleet ingest mqtt --broker mqtt://broker:1883 --format chirpstack --share ingest --client-id ingest-1

    Every 10 s it records whether it keeps up (messages waiting, the broker's backlog) for 'fleet status',
    and says so (log, --webhook/--alert-topic) when it falls behind (--lag-alert, --backlog-alert).
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("fleet.telemetry.mqtt").setLevel(logging.INFO)
    reg = Registry.open(db)
    notifier = make_notifier(webhook, alert_topic, broker)
    from ..telemetry.store import TelemetryStore  # not loaded by `fleet status`, which shares the options

    store = TelemetryStore(reg, rules=make_rules(full_pct, battery_v, silent_intervals), notifier=notifier)

    def on_batch(result, stats):
        if verbose:
            logging.getLogger("fleet.telemetry.mqtt").info(
                "stored %d (%d readings), %d duplicates, %d rejected, %d new alerts", result.stored,
                result.readings, result.duplicates, len(result.rejected), len(result.alerts))

    from ..telemetry.mqtt import MqttIngester  # the MQTT client, only for the command that needs it

    ing = MqttIngester(store, broker, fmt=fmt, topics=list(topics) or None, client_id=client_id, on_batch=on_batch,
                       share=share, session_expiry_s=session_expiry, lag_alert_s=lag_alert, backlog_alert=backlog_alert)
    stop = threading.Event()
    stopped_by = []

    def on_signal(signum, _frame):
        stopped_by.append(signum)
        stop.set()

    # both signals only set `stop`: the loop ends within a fraction of a second, after the batch in hand is
    # committed and acknowledged (or left unacknowledged for the broker to deliver again)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    timer = None
    if duration:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True  # never keeps the process alive after an earlier stop
        timer.start()
    click.echo(f"ingesting {fmt} uplinks from {ing.addr} ({', '.join(ing.topics)}); Ctrl-C stops", err=True)
    t0 = time.monotonic()
    try:
        ing.run(stop, connect_timeout=30)
    finally:
        if timer is not None:
            timer.cancel()
        if notifier is not None:
            notifier.close()
        reg.close()
    stats = ing.stats.to_dict()
    stats["seconds"] = round(time.monotonic() - t0, 1)
    if as_json:
        echo_json(stats)
    else:
        click.echo(f"stored {stats['stored']} uplinks ({stats['readings']} readings), {stats['duplicates']} "
                   f"duplicates, {stats['malformed_total']} malformed, {sum(stats['ignored'].values())} ignored "
                   f"(not readings: {_counts(stats['ignored'])}), {stats['alerts']} alerts", err=True)
    if signal.SIGINT in stopped_by:
        raise SystemExit(130)  # Ctrl-C: the shell's convention (128 + SIGINT), after the counters


def _counts(c: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"
