#!/usr/bin/env bash
# The loopback HA rig (issue 15, part 4): one etcd and three Patroni nodes (PostgreSQL 15) on
# 127.0.0.1, synchronous_mode_strict, run as the postgres user when called as root. It is the
# deployment of deploy/ha/README.md on one machine, for tests and for trying failover by hand.
#
#   deploy/ha/cluster.sh start DIR        start (create on first use); prints DATABASE_URL
#   deploy/ha/cluster.sh stop DIR         stop everything
#   deploy/ha/cluster.sh list DIR         patronictl list (who is primary, who is sync standby)
#   deploy/ha/cluster.sh primary DIR      the primary's node name (n1, n2, n3), once there is one
#   deploy/ha/cluster.sh kill-node DIR N  kill -9 node N's Patroni and PostgreSQL (a dead machine)
#   deploy/ha/cluster.sh kill-postgres DIR N   kill -9 node N's postmaster (Patroni survives)
#   deploy/ha/cluster.sh start-node DIR N start node N again (it rejoins as a standby, pg_rewind if need be)
#
# Ports: HA_PORT_BASE (default 24300) + 1..3 for PostgreSQL, + 101..103 for Patroni's REST API,
# + 200/201 for etcd: below Linux's ephemeral range, which outgoing connections draw from.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?usage: cluster.sh start|stop|list|primary|kill-node|kill-postgres|start-node DIR [N]}
dir=${2:?DIR}; mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
base=${HA_PORT_BASE:-24300}
etcd_client="127.0.0.1:$((base + 200))"; etcd_peer="127.0.0.1:$((base + 201))"
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_port() { echo $((base + ${1#n})); }
rest_port() { echo $((base + 100 + ${1#n})); }
url() { echo "postgresql://postgres@127.0.0.1:$(pg_port n1),127.0.0.1:$(pg_port n2),127.0.0.1:$(pg_port n3)/stockpile?target_session_attrs=read-write&connect_timeout=2"; }

start_etcd() {
    pgrep -f "etcd --name stockpile-ha --data-dir $dir/etcd" >/dev/null && return 0
    as_pg nohup etcd --name stockpile-ha --data-dir "$dir/etcd" \
        --listen-client-urls "http://$etcd_client" --advertise-client-urls "http://$etcd_client" \
        --listen-peer-urls "http://$etcd_peer" --initial-advertise-peer-urls "http://$etcd_peer" \
        --initial-cluster "stockpile-ha=http://$etcd_peer" >>"$dir/etcd.log" 2>&1 &
    for _ in $(seq 1 50); do curl -fs "http://$etcd_client/health" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "etcd did not start: $(tail -5 "$dir/etcd.log")" >&2; exit 1
}

start_node() {
    local n=$1
    pgrep -f "patroni $dir/$n.yml" >/dev/null && return 0
    mkdir -p "$dir/$n"
    sed -e "s|@NAME@|$n|g" -e "s|@DIR@|$dir|g" -e "s|@PGPORT@|$(pg_port "$n")|g" -e "s|@RESTPORT@|$(rest_port "$n")|g" \
        -e "s|@ETCD@|$etcd_client|g" -e "s|@BINDIR@|$bindir|g" "$here/patroni.yml.in" >"$dir/$n.yml"
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$dir"
    chmod 700 "$dir/$n"
    as_pg nohup patroni "$dir/$n.yml" >>"$dir/$n.log" 2>&1 &
}

primary() {
    for n in n1 n2 n3; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(rest_port "$n")/primary" 2>/dev/null)" = 200 ] && { echo "$n"; return 0; }
    done
    return 1
}

wait_primary() {
    for _ in $(seq 1 ${1:-300}); do primary >/dev/null && return 0; sleep 0.2; done
    echo "no primary: $(tail -5 "$dir/n1.log")" >&2; exit 1
}

postmaster_pid() { head -1 "$dir/$1/data/postmaster.pid" 2>/dev/null || true; }

case "$cmd" in
start)
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$dir"
    start_etcd
    # The first node bootstraps alone; the others then clone it (as Patroni's own tests do).
    start_node n1
    wait_primary 600
    start_node n2; start_node n3
    p=$(primary)
    as_pg psql -h 127.0.0.1 -p "$(pg_port "$p")" -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'stockpile'" | grep -q 1 ||
        as_pg psql -h 127.0.0.1 -p "$(pg_port "$p")" -U postgres -d postgres -qc "CREATE DATABASE stockpile ENCODING 'UTF8' TEMPLATE template0"
    # Writes block in strict mode until a synchronous standby is streaming: wait for one (a node, not
    # pg_basebackup's own WAL stream, which strict mode's interim '*' also counts as synchronous).
    for _ in $(seq 1 600); do
        as_pg psql -h 127.0.0.1 -p "$(pg_port "$p")" -U postgres -d postgres -Atqc \
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming' AND application_name IN ('n1', 'n2', 'n3')" 2>/dev/null | grep -q '^1$' && break
        sleep 0.2
    done
    echo "DATABASE_URL='$(url)'"
    ;;
stop)
    for n in n1 n2 n3; do pkill -f "patroni $dir/$n.yml" 2>/dev/null || true; done
    for _ in $(seq 1 100); do pgrep -f "patroni $dir/n[123].yml" >/dev/null || break; sleep 0.2; done
    for n in n1 n2 n3; do pid=$(postmaster_pid "$n"); [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done
    pkill -f "etcd --name stockpile-ha --data-dir $dir/etcd" 2>/dev/null || true
    ;;
list) as_pg patronictl -c "$dir/n1.yml" list ;;
primary) primary ;;
url) url ;;
kill-node)
    n=${3:?N}; pid=$(postmaster_pid "$n")
    pkill -9 -f "patroni $dir/$n.yml" || true
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    ;;
kill-postgres) n=${3:?N}; pid=$(postmaster_pid "$n"); [ -n "$pid" ] && kill -9 "$pid" ;;
start-node) start_node "${3:?N}" ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
