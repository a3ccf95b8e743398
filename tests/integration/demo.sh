#!/usr/bin/env bash
# The demo is the README's first command: it must keep passing.
set -euo pipefail
top=${MLS_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top"
"${MLS_BIN:-bin}/tests/demo"
