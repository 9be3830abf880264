#!/bin/sh
# Runs every artifact of one bundle through its daemon's own parser: the
# host agent's `check`, with stand-ins for what only the host has
# (secrets, certificates, ExecStart binaries). Prints "validated <file>
# <tool>" for each. Needs root (network and mount namespaces). Exits non-zero
# on the first file a validator rejects, or when a validator is missing.
set -eu
exec sh "$(dirname -- "$0")/../compiler/host/activate" check --stand-ins "$1"
