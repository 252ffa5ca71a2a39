#!/usr/bin/env bash
# rootfix's main job on a fresh Debian 12 machine, with the shipped playbooks.
# Today: build, validate the shipped playbooks and actions, and walk each playbook over its example
# evidence. (`rootfix serve` replaces the walk once the server exists.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/rootfix
$bin validate playbooks actions
for example in order-service-timeout:order-payment-upstream go-module-proxy:go-proxy-tls; do
  playbook=${example%%:*}
  evidence=${example##*:}
  echo
  $bin simulate --playbook "playbooks/$playbook.yaml" \
    --alert "tests/fixtures/alertmanager/$playbook.firing.json" \
    --evidence "tests/fixtures/simulate/$evidence.evidence.yaml"
done
