#!/bin/sh
# Entry point of the installer image: copy the release archive to the host
# and run `racker install` there, in the host's namespaces. Needs
# `docker run --privileged --pid host`: with the host's PID namespace,
# /proc/1/root is the host's root file system and nsenter can enter PID 1's
# mount, UTS, IPC, network and PID namespaces (so `systemctl` talks to the
# host's systemd). Extra arguments go to `racker install`
# (e.g. --prefix, --bin-dir, --systemd-dir).
set -eu

host=/proc/1/root
if [ ! -d "$host/etc" ] || [ "$(readlink /proc/1/exe 2>/dev/null || true)" = "" ]; then
    echo "racker installer: run with --privileged --pid host" >&2
    exit 1
fi

mkdir -p "$host/var/tmp"
work=$(mktemp -d "$host/var/tmp/racker-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp /racker/racker.tar.gz /racker/racker.tar.gz.sha256 "$work/"
# The racker binary inside the archive performs the install on the host; it
# verifies the archive against racker.tar.gz.sha256 before touching anything.
tar -xzf /racker/racker.tar.gz -C "$work" bin/racker

on_host=${work#"$host"}
nsenter --target 1 --mount --uts --ipc --net --pid -- \
    "$on_host/bin/racker" install "$on_host/racker.tar.gz" "$@"
