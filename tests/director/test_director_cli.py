# SPDX-License-Identifier: LGPL-2.1-or-later
"""The admin CLI's help and usage errors need neither the configuration nor the database:
`otter-director help CMD`, `CMD --help`, `CMD help` and a usage error are answered before
anything is opened (the database URL given here cannot be opened, the configuration file
does not exist)."""

import os

import pytest

from conftest import binary, run

COMMANDS = ["serve", "migrate", "root", "device", "token", "history", "assign", "rollout",
            "fleet"]


def cli(tmp_path, *args):
    # A database that cannot be opened and a configuration that does not exist: any
    # command that touched either would fail with their error, not print help.
    bad_db = "sqlite:" + str(tmp_path / "no-such-folder" / "director.db")
    return run([binary("otter-director"), "--database", bad_db, *args])


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_command_without_database(tmp_path, cmd):
    out, err, rc = cli(tmp_path, "help", cmd)
    assert rc == 0, err
    assert out.startswith(f"Usage: otter-director {cmd}"), out
    assert "sqlite" not in err and "director.db" not in err


@pytest.mark.parametrize("cmd", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_dash_help_without_database(tmp_path, cmd, flag):
    out, err, rc = cli(tmp_path, cmd, flag)
    assert rc == 0, err
    assert f"Usage: otter-director {cmd}" in out, out


@pytest.mark.parametrize("args", [["rollout", "help"], ["rollout", "create", "r1", "--help"],
                                  ["rollout", "status", "--help"], ["fleet", "--help"],
                                  ["assign", "--target", "x", "--help"]])
def test_help_after_arguments_without_database(tmp_path, args):
    out, err, rc = cli(tmp_path, *args)
    assert rc == 0, err
    assert f"Usage: otter-director {args[0]}" in out, out


@pytest.mark.parametrize("args,message", [
    (["rollout"], "Usage: otter-director rollout"),
    (["rollout", "bogus"], "unknown subcommand 'bogus'"),
    (["rollout", "status"], "needs exactly one rollout ID"),
    (["rollout", "list", "extra"], "takes no argument"),
    (["fleet", "--bogus"], "--bogus"),
    (["assign", "--target", "x", "stray"], "unexpected argument 'stray'"),
])
def test_usage_error_without_database(tmp_path, args, message):
    out, err, rc = cli(tmp_path, *args)
    assert rc == 2, (out, err)
    assert message in err, err
    assert "cannot open" not in err


def test_real_command_still_opens_database(tmp_path):
    """The other side: a command that has work to do does open the database, and says so
    when it cannot."""
    _, err, rc = cli(tmp_path, "rollout", "list")
    assert rc == 1
    assert "cannot open" in err and "director.db" in err


def test_missing_config_reported_only_when_needed(tmp_path):
    conf = str(tmp_path / "missing.conf")
    out, err, rc = run([binary("otter-director"), "--config", conf, "rollout", "--help"])
    assert rc == 0 and "Usage: otter-director rollout" in out
    _, err, rc = run([binary("otter-director"), "--config", conf, "fleet"])
    assert rc == 1 and "missing.conf" in err
    assert not os.path.exists(conf)
