#!/usr/bin/env bash
# Runs every test of rootfix on a fresh Debian 12 machine: installs what the tests need, starts the
# real components on 127.0.0.1, builds the action images, runs the whole suite with cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

install_packages
install_demo_packages
install_schemathesis
start_redis
build_action_images
cargo nextest run --workspace --no-fail-fast
