#!/bin/sh
# BROWSER hook: `BROWSER=/path/to/tests/idp/browser.sh` (the webbrowser crate appends the URL).
# Runs the headless-chromium driver next to this script; see README.md.
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd) || exit 2
exec node "$here/browser.mjs" "$@"
