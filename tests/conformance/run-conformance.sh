#!/bin/sh
# Runs the public TUF conformance suite (theupdateframework/tuf-conformance, 113 tests)
# against otter-tuf. The suite is not a Debian package, so it is not part of `make test`;
# this script uses the workplace harness in ../shared/tools/tuf-conformance/:
#
#   ../shared/tools/tuf-conformance/setup.sh TUF_CONFORMANCE.git PYTHON_TUF.git SSLIB.git
#   tests/conformance/run-conformance.sh build/otter-tuf [pytest args]
#
# No .xfails file is used: every test is expected to pass.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
client=${1:-$here/../../build/otter-tuf}
[ $# -gt 0 ] && shift
harness=${TUFCONF_HARNESS:-$here/../../../shared/tools/tuf-conformance}
if [ ! -x "$harness/run.sh" ]; then
	echo "run-conformance: harness not found at $harness (set TUFCONF_HARNESS)" >&2
	exit 2
fi
TUFCONF_XFAILS=/dev/null exec "$harness/run.sh" "$client" "$@"
