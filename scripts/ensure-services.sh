#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, user postgres without password over TCP) and
# RabbitMQ (127.0.0.1:5672, guest/guest) are up. Starts the local ones when they are stopped.
# With --install it also installs them from Debian's packages when missing and allows
# password-less TCP logins on loopback (what CI on a fresh machine needs).
set -euo pipefail

install=false
[ "${1:-}" = "--install" ] && install=true

say() { printf 'ensure-services: %s\n' "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=false
apt_install() {
    if ! $apt_updated; then as_root apt-get update -qq; apt_updated=true; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # name, seconds, command...
    local name=$1 seconds=$2; shift 2
    for _ in $(seq "$seconds"); do "$@" && return 0; sleep 1; done
    say "$name did not come up within ${seconds}s"; return 1
}

postgres_login() { psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; }

ensure_postgres() {
    if port_open 5432 && postgres_login; then return 0; fi
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        if $install; then say "installing PostgreSQL"; apt_install postgresql postgresql-client
        else say "PostgreSQL is not installed: run 'sudo apt-get install postgresql' (or scripts/ensure-services.sh --install)"; return 1; fi
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    if ! port_open 5432; then
        say "starting PostgreSQL $version"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        wait_for PostgreSQL 60 port_open 5432
    fi
    if ! postgres_login; then
        if $install; then
            local hba="/etc/postgresql/$version/main/pg_hba.conf"
            say "allowing password-less TCP logins on loopback in $hba"
            as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
            as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
            wait_for "PostgreSQL login" 30 postgres_login
        else
            say "PostgreSQL runs but refuses 'psql -h 127.0.0.1 -U postgres': allow trust for 127.0.0.1 in pg_hba.conf, or set DATABASE_URL with a password"
            return 1
        fi
    fi
}

rabbit_ready() { port_open 5672 && rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1; }

ensure_rabbitmq() {
    if port_open 5672; then return 0; fi
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        if $install; then say "installing RabbitMQ"; apt_install rabbitmq-server
        else say "RabbitMQ is not installed: run 'sudo apt-get install rabbitmq-server' (or scripts/ensure-services.sh --install)"; return 1; fi
    fi
    if ! rabbitmqctl -q status >/dev/null 2>&1; then
        say "starting RabbitMQ"
        as_root rabbitmq-server -detached || true
    else
        as_root rabbitmqctl start_app >/dev/null 2>&1 || true
    fi
    wait_for RabbitMQ 120 rabbit_ready
}

ensure_postgres
ensure_rabbitmq
say "PostgreSQL and RabbitMQ are ready"
