"""The `liaowang` command line (CONTRACT §5)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import structlog

from foundation.config import Config, ConfigError, default_config_dir, hash_token, load_config
from foundation.database import target_name
from liaowang.broker import is_loopback
from liaowang.cli_api import add_api_parser
from liaowang.cli_cluster import add_cluster_parsers
from liaowang.cli_users import add_users_parser
from foundation.logs import configure_logging

log = structlog.get_logger("cli")


def _load(folder: str | None) -> Config:
    return load_config(Path(folder) if folder else default_config_dir())


def _broker_address(args: argparse.Namespace, config: Config):
    """The MQTT settings of a tool: --broker HOST:PORT, and the embedded broker's own credentials
    from the data directory unless the configuration names a user."""
    from liaowang.broker import stored_credentials, with_credentials

    mqtt = config.settings.mqtt
    text = args.broker
    if text:
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit():
            raise SystemExit(f"--broker must be HOST:PORT, got {text!r}")
        mqtt = mqtt.model_copy(update={"host": host, "port": int(port)})
    data_dir = Path(args.data_dir or config.settings.storage.data_dir)
    return with_credentials(mqtt, stored_credentials(data_dir))


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    fleet = config.fleet
    print(f"{config.folder}: ok — {len(fleet.sites)} sites, {len(fleet.sensors)} sensors, "
          f"{len(fleet.profiles)} setpoint profiles, {len(config.settings.auth.tokens)} tokens")
    if (url := config.settings.storage.database_url) is not None:
        print(f"alarms, warnings and people in PostgreSQL: {target_name(url.get_secret_value())}")
    return 0


def cmd_hash_token(args: argparse.Namespace) -> int:
    print(hash_token(args.token))
    return 0


class _Shutdown(Exception):
    """SIGTERM arrived: stop like Ctrl-C."""


def _raise_shutdown(signum: int, frame: object) -> None:
    raise _Shutdown()


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from liaowang.api import create_app
    from liaowang.broker import BrokerRefused, exposure_problem, port_free, start_broker
    from liaowang.broker_auth import own_credentials
    from liaowang.httpserver import GRACEFUL_SHUTDOWN_S, HttpServer
    from liaowang.pipeline import Pipeline
    from simulators import run_simulator

    config = _load(args.config)
    settings = config.settings
    mqtt = settings.mqtt.model_copy(update={"port": args.mqtt_port or settings.mqtt.port})
    http_port = args.http_port or settings.http.port
    if settings.auth.holds_demo_tokens() and not is_loopback(settings.http.host):
        log.error("demo_tokens_off_loopback", host=settings.http.host,
                  hint="remove the demo tokens from liaowang.yaml before listening on another address")
        return 2
    if not is_loopback(settings.http.host) and settings.auth.holds_demo_users():
        log.error("demo_passwords_off_loopback", host=settings.http.host,
                  hint="remove the demo users from liaowang.yaml auth.users (or give them new password hashes)")
        return 2
    exposed = exposure_problem(mqtt)
    if exposed is not None:
        log.error(exposed[0], host=mqtt.host, embedded_broker=mqtt.embedded_broker, hint=exposed[1])
        return 2
    unknown_sites = sorted({s for g in mqtt.gateways for s in g.sites} - set(config.fleet.sites))
    if unknown_sites:
        log.warning("gateway_sites_unknown", sites=unknown_sites, hint="a gateway may publish only for these; check sites.yaml")
    data_dir = Path(args.data_dir or settings.storage.data_dir)

    if not port_free(settings.http.host, http_port):
        log.error("http_port_in_use", host=settings.http.host, port=http_port, hint="choose another with --http-port")
        return 1
    try:
        broker = start_broker(mqtt.embedded_broker, mqtt.host, mqtt.port, data_dir, gateways=mqtt.gateways,
                              credentials=own_credentials(data_dir, mqtt), connect_timeout_s=mqtt.connect_timeout_s)
    except BrokerRefused as err:
        log.error("broker_refused", error=str(err))
        return 2
    except RuntimeError as err:
        log.error("broker_start_failed", error=str(err))
        return 1
    if broker is not None:  # every own client (ingest, alerts, simulators) connects as Liaowang's own user
        mqtt = mqtt.model_copy(update={"username": broker.credentials.username, "password": broker.credentials.password})
    settings = settings.model_copy(update={"mqtt": mqtt})
    config = config.model_copy(update={"settings": settings})
    pipeline = Pipeline(config, data_dir)
    if broker is not None:  # say what a crash would lose, at start-up and in /healthz (docs/broker.md)
        store = data_dir / "mosquitto" if broker.kind == "mosquitto" else None
        pipeline.watch_broker_store(store, broker.kind, broker.guarantee)
        if broker.kind == "amqtt":
            log.warning("delivery_guarantee_limited", broker="amqtt", guarantee=broker.guarantee,
                        hint="install mosquitto (apt-get install mosquitto) for a broker that persists its queue")
        else:
            log.info("delivery_guarantee", broker=broker.kind, guarantee=broker.guarantee)
    stop_sim = threading.Event()
    sim_thread = None
    try:
        pipeline.start()
        if not pipeline.ingest.wait_connected(15):
            log.error("broker_unreachable", host=mqtt.host, port=mqtt.port)
            return 1
        if not args.no_simulators:
            sim_thread = threading.Thread(target=run_simulator, args=(config.fleet, mqtt),
                                          kwargs={"stop": stop_sim}, name="simulators", daemon=True)
            sim_thread.start()
        server = HttpServer(uvicorn.Config(create_app(pipeline), host=settings.http.host, port=http_port,
                                           log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S), pipeline.hub)
        log.info("liaowang_ready", map=f"http://{settings.http.host}:{http_port}/", mqtt=f"{mqtt.host}:{mqtt.port}",
                 broker=broker.kind if broker else "external", data_dir=str(data_dir))
        # uvicorn handles SIGINT/SIGTERM itself, then re-raises the signal after it stops:
        # turn both into an exception so the cleanup below always runs.
        signal.signal(signal.SIGTERM, _raise_shutdown)
        try:
            server.run()
        except (KeyboardInterrupt, _Shutdown):
            pass
    finally:
        stop_sim.set()
        if sim_thread is not None:
            sim_thread.join(timeout=10)
        pipeline.stop()
        if broker is not None:
            broker.stop()
        log.info("liaowang_stopped")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators import run_simulator

    config = _load(args.config)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.load:
        from simulators.load import run_load

        result = run_load(_broker_address(args, config), sensors=args.load, rate_hz=args.rate_hz,
                          batch=args.batch, duration_s=args.duration or 10.0, stop=stop, seed=args.seed)
        print(f"published {result.readings:,} readings in {result.messages:,} messages over {result.seconds:.1f} s: "
              f"{result.readings_per_s:,.0f} readings/s achieved (asked {args.load * args.rate_hz:,.0f}/s)")
        return 0
    count = run_simulator(config.fleet, _broker_address(args, config), speed=args.speed, seed=args.seed,
                          duration_s=args.duration, stop=stop)
    print(f"published {count} readings")
    return 0


def cmd_scenario_test(args: argparse.Namespace) -> int:
    from liaowang.scenario import scenario_test

    config = _load(args.config)
    paths = [Path(p) for p in args.files]
    status, lines = scenario_test(paths, config)
    print("\n".join(lines))
    return status


def cmd_scenario_tune(args: argparse.Namespace) -> int:
    from liaowang.scenario import tuning_report

    config = _load(args.config)
    variants: dict[str, list[str]] = {}
    for text in args.variant:
        name, _, assignments = text.partition(":")
        if not assignments:
            raise SystemExit(f"--variant must be NAME:TARGET=VALUE[,TARGET=VALUE], got {text!r}")
        variants[name] = assignments.split(",")
    print("\n".join(tuning_report([Path(p) for p in args.files], config, variants)))
    return 0


def cmd_scenario_record(args: argparse.Namespace) -> int:
    from liaowang.recording import write_scenario_recording
    from liaowang.scenario import load_scenario

    config = _load(args.config)
    count = write_scenario_recording(load_scenario(Path(args.scenario)), config.fleet, Path(args.file))
    print(f"wrote {count} messages to {args.file}")
    return 0


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def cmd_record(args: argparse.Namespace) -> int:
    from liaowang.recording import record

    config = _load(args.config)
    count = record(Path(args.file), _broker_address(args, config), args.topic, args.duration, _stop_on_signals())
    print(f"recorded {count} messages to {args.file}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from liaowang.recording import replay

    config = _load(args.config)
    try:
        count = replay(Path(args.file), _broker_address(args, config), args.speed, args.shift_to_now,
                       _stop_on_signals())
    except (OSError, ValueError) as err:
        print(f"replay failed: {err}", file=sys.stderr)
        return 1
    print(f"replayed {count} messages from {args.file}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liaowang", description="Liaowang 瞭望: real-time monitoring and early warning")
    parser.add_argument("--log-level", default="info")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="everything on the embedded default (broker, storage, simulators, rules, API, map)")
    run.add_argument("--config")
    run.add_argument("--data-dir")
    run.add_argument("--http-port", type=int)
    run.add_argument("--mqtt-port", type=int)
    run.add_argument("--no-simulators", action="store_true")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate configuration; exit 1 naming file, key and reason")
    check.add_argument("--config")
    check.set_defaults(func=cmd_check_config)

    sim = sub.add_parser("simulate", help="publish simulated readings for the configured fleet")
    sim.add_argument("--config")
    sim.add_argument("--scenario", help="(reserved) scenario file; the built-in demo incidents run without it")
    sim.add_argument("--speed", type=float, default=1.0, help="event time per wall time; 0 = as fast as possible")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--duration", type=float, help="seconds of event time, then stop")
    sim.add_argument("--broker", help="HOST:PORT (default: from configuration)")
    sim.add_argument("--data-dir", help="the data directory of the `liaowang run` whose broker this is (its credentials)")
    sim.add_argument("--load", type=int, metavar="SENSORS", help="load generation: a synthetic fleet of this many sensors")
    sim.add_argument("--rate-hz", type=float, default=1.0, help="with --load: readings per sensor per second")
    sim.add_argument("--batch", type=int, default=100, help="with --load: readings per message")
    sim.set_defaults(func=cmd_simulate)

    scenario = sub.add_parser("scenario", help="scenario files (docs/scenarios.md)")
    scenario_sub = scenario.add_subparsers(dest="scenario_command", required=True)
    scenario_run = scenario_sub.add_parser("test", help="run scenarios in process on a fake clock; exit 1 if any fails")
    scenario_run.add_argument("files", nargs="+")
    scenario_run.add_argument("--config")
    scenario_run.set_defaults(func=cmd_scenario_test)
    scenario_tune = scenario_sub.add_parser("tune", help="compare setpoint or rule-parameter variants over scenarios")
    scenario_tune.add_argument("files", nargs="+")
    scenario_tune.add_argument("--variant", action="append", default=[],
                               help="NAME:PROFILE.LEVEL.set=V or NAME:RULE_ID.FIELD=V (comma-separated, repeatable)")
    scenario_tune.add_argument("--config")
    scenario_tune.set_defaults(func=cmd_scenario_tune)
    scenario_rec = scenario_sub.add_parser("record", help="write a scenario's feed as a recording (same seed, same bytes)")
    scenario_rec.add_argument("scenario")
    scenario_rec.add_argument("file")
    scenario_rec.add_argument("--config")
    scenario_rec.set_defaults(func=cmd_scenario_record)

    rec = sub.add_parser("record", help="capture an MQTT feed to compressed JSON Lines (Ctrl-C stops)")
    rec.add_argument("file")
    rec.add_argument("--topic", default="liaowang/v1/#")
    rec.add_argument("--duration", type=float, help="seconds, then stop")
    rec.add_argument("--broker", help="HOST:PORT (default: from configuration)")
    rec.add_argument("--data-dir", help="the data directory of the `liaowang run` whose broker this is (its credentials)")
    rec.add_argument("--config")
    rec.set_defaults(func=cmd_record)

    rep = sub.add_parser("replay", help="republish a recording at real speed, X times faster, or as fast as possible")
    rep.add_argument("file")
    rep.add_argument("--speed", type=float, default=1.0, help="1 = real time, 100 = 100x faster, 0 = as fast as possible")
    rep.add_argument("--shift-to-now", action="store_true", help="move event times so the first reading is now")
    rep.add_argument("--broker", help="HOST:PORT (default: from configuration)")
    rep.add_argument("--data-dir", help="the data directory of the `liaowang run` whose broker this is (its credentials)")
    rep.add_argument("--config")
    rep.set_defaults(func=cmd_replay)

    token = sub.add_parser("hash-token", help="print the SHA-256 under which a bearer token is configured")
    token.add_argument("token")
    token.set_defaults(func=cmd_hash_token)
    add_users_parser(sub)
    add_cluster_parsers(sub)
    add_api_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `liaowang` console script."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
