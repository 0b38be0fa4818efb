"""`liaowang users add|passwd|disable|enable|list|hash-password`: the bureau's admin manages people on the data dir.

Works on ``alerts.db`` in the data dir, also while `liaowang run` serves it (SQLite WAL); a change
applies to the running server at the next request (sessions resolve their user every time).
Passwords are read without echo from the terminal, or one line from stdin with ``--password-stdin``
(scripts); never from the command line, where ``ps`` and the shell history would keep them. Every
change is audited under ``cli:<login name>``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path

from foundation.config import ROLES, Config, default_config_dir, load_config

__all__ = ["add_users_parser"]


def _people(args: argparse.Namespace):
    from alerting.audit import AuditLog
    from alerting.db import AlertDB
    from liaowang.users import People

    config: Config = load_config(Path(args.config) if args.config else default_config_dir())
    data_dir = Path(args.data_dir or config.settings.storage.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    db = AlertDB(config.settings.storage.alerts_target(data_dir))  # PostgreSQL when storage.database_url
    people = People(db, AuditLog(db), config.settings.auth, time.time)
    people.seed(config.settings.auth.users)  # as `liaowang run` would: the demo users exist before the first run
    return people, config


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except OSError:  # no login name (a container without one): still say it came from the command line
        return "cli"


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("the two passwords differ")
    return first


def _sites(text: str | None, config: Config) -> tuple[str, ...]:
    sites = tuple(s.strip() for s in (text or "").split(",") if s.strip())
    unknown = sorted(set(sites) - set(config.fleet.sites))
    if unknown:
        raise SystemExit(f"unknown site {unknown[0]} (sites.yaml)")
    return sites


def _run(step) -> int:
    from liaowang.users import UserError

    try:
        message = step()
    except UserError as err:
        print(f"refused: {err}", file=sys.stderr)
        return 1
    print(message)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    people, _ = _people(args)
    for user in people.users():
        print(f"{user.name}\t{user.display_name}\t{user.role}\t{','.join(user.sites) or '(all sites)'}\t"
              f"{'disabled' if user.disabled else 'enabled'}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    people, config = _people(args)
    sites = _sites(args.sites, config)
    password = _password(args)
    return _run(lambda: f"added {people.add(args.name, args.display_name or args.name, args.role, sites, password, _actor()).name}")


def cmd_passwd(args: argparse.Namespace) -> int:
    people, _ = _people(args)
    password = _password(args)
    return _run(lambda: (people.set_password(args.name, password, _actor()), f"password of {args.name} set; "
                         "their sessions ended")[1])


def cmd_disable(args: argparse.Namespace) -> int:
    people, _ = _people(args)
    disabled = args.users_command == "disable"
    return _run(lambda: f"{people.change(args.name, _actor(), disabled=disabled).name} "
                        f"{'disabled; their sessions ended' if disabled else 'enabled'}")


def cmd_hash_password(args: argparse.Namespace) -> int:
    from foundation.passwords import Passwords

    print(Passwords().hash(_password(args)))
    return 0


def add_users_parser(sub) -> None:
    """Add ``users`` and its subcommands to the `liaowang` argument parser."""
    users = sub.add_parser("users", help="people who sign in: add, passwd, disable, enable, list (docs/people.md)")
    users_sub = users.add_subparsers(dest="users_command", required=True)

    def command(name: str, func, help_text: str, *, named: bool = True, password: bool = False):
        parser = users_sub.add_parser(name, help=help_text)
        if named:
            parser.add_argument("name")
        if password:
            parser.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
        parser.add_argument("--config")
        parser.add_argument("--data-dir")
        parser.set_defaults(func=func)
        return parser

    add = command("add", cmd_add, "create a user (asks the password)", password=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--display-name", help="shown on every page and in the records (default: the name)")
    add.add_argument("--sites", help="comma-separated site ids the user sees and acts on (default: every site)")
    command("passwd", cmd_passwd, "set a user's password (ends their sessions)", password=True)
    command("disable", cmd_disable, "refuse a user's sign-in and end their sessions")
    command("enable", cmd_disable, "allow a disabled user to sign in again")
    command("list", cmd_list, "every user with role, sites and whether enabled", named=False)
    hashing = command("hash-password", cmd_hash_password, "print the argon2 hash of a password, for liaowang.yaml "
                      "auth.users", named=False, password=True)
    hashing.set_defaults(func=cmd_hash_password)
