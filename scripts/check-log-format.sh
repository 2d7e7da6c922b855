#!/usr/bin/env bash
# Log and error messages are lowercase with no trailing period (STYLE.md D6).
set -euo pipefail
cd "$(dirname "$0")/.."
pattern_upper='(tracing::)?(trace|debug|info|warn|error)!\([^;]*"[A-Z][a-z]'
pattern_period='(tracing::)?(trace|debug|info|warn|error)!\([^;]*[a-z]\."\)'
pattern_error='#\[error\("[A-Z][a-z]'
bad=$(grep -rnE --include='*.rs' "$pattern_upper|$pattern_period|$pattern_error" shared services load-tests tests || true)
if [ -n "$bad" ]; then
    echo "log/error messages must be lowercase without a trailing period:" >&2
    echo "$bad" >&2
    exit 1
fi
