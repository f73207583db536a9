#!/usr/bin/env bash
# Installs the peer libraries of bench/compare.sh (issue 15) into this directory only:
# Python packages into bench/peers/.venv, Node packages into bench/peers/node_modules, the
# Rust peers built by their own cargo project (bench/peers/rust, its own workspace and
# target dir; never part of callguard's build). Idempotent: what is there is kept.
#
#   bash bench/peers/install.sh
set -euo pipefail
cd "$(dirname "$0")"
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
# panoramisk: FastAGI (asyncio); greenswitch: outbound ESL (gevent).
.venv/bin/python -c 'import panoramisk, greenswitch' 2>/dev/null ||
    .venv/bin/pip install --quiet 'panoramisk==1.4' 'greenswitch==0.0.19'
# ding-dong: FastAGI; modesl: outbound ESL (versions pinned in package.json / package-lock.json).
if [[ ! -d node_modules/ding-dong || ! -d node_modules/modesl ]]; then
    npm install --no-audit --no-fund --silent
fi
# asterisk-rs-agi and freeswitch-esl-tokio: one release binary per peer.
nice -n 10 cargo build --release --quiet --manifest-path rust/Cargo.toml
