#!/usr/bin/env bash
# Starts (up) and stops (down) the test servers the machine does not run by itself, on loopback only:
#   memcached            127.0.0.1:11311
#   etcd                 127.0.0.1:2479 (peer 2480)
#   Redis Cluster        127.0.0.1:7101-7103, 3 masters
#   dynalite (DynamoDB)  127.0.0.1:4567
# Redis (6379), PostgreSQL (5432) and MariaDB (3306) are already running on these machines.
# State (pids, data) lives in .services/ and is removed by `down`. Installs missing Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="$PWD/.services"

need() { # need <binary> <debian package>
  if ! command -v "$1" >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then echo "services: $1 is missing; install the Debian package $2" >&2; return 1; fi
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  fi
}

wait_port() { # wait_port <port> <name>
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "services: $2 did not start on 127.0.0.1:$1" >&2
  return 1
}

up() {
  down >/dev/null 2>&1 || true
  mkdir -p "$STATE"
  need memcached memcached
  need etcd etcd-server
  need redis-server redis-server
  need redis-cli redis-tools

  memcached -d -l 127.0.0.1 -p 11311 -U 0 -u root -m 64 -P "$STATE/memcached.pid"
  wait_port 11311 memcached

  mkdir -p "$STATE/etcd"
  ETCD_UNSUPPORTED_ARCH="$(uname -m | sed 's/x86_64//')" nohup etcd --name kvs-test --data-dir "$STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2479 --advertise-client-urls http://127.0.0.1:2479 \
    --listen-peer-urls http://127.0.0.1:2480 --initial-advertise-peer-urls http://127.0.0.1:2480 \
    --initial-cluster kvs-test=http://127.0.0.1:2480 >"$STATE/etcd.log" 2>&1 &
  echo $! >"$STATE/etcd.pid"
  wait_port 2479 etcd

  for port in 7101 7102 7103; do
    mkdir -p "$STATE/cluster-$port"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$STATE/cluster-$port/nodes.conf" \
      --dir "$STATE/cluster-$port" --save "" --appendonly no --daemonize yes --pidfile "$STATE/cluster-$port.pid" \
      --logfile "$STATE/cluster-$port/redis.log"
    wait_port "$port" "redis cluster node $port"
  done
  redis-cli --cluster create 127.0.0.1:7101 127.0.0.1:7102 127.0.0.1:7103 --cluster-replicas 0 --cluster-yes >"$STATE/cluster-create.log" 2>&1
  for _ in $(seq 1 100); do
    if redis-cli -p 7101 cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then break; fi
    sleep 0.1
  done

  nohup node node_modules/dynalite/cli.js --host 127.0.0.1 --port 4567 --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"$STATE/dynalite.log" 2>&1 &
  echo $! >"$STATE/dynalite.pid"
  wait_port 4567 dynalite
  echo "services: memcached :11311, etcd :2479, redis cluster :7101-7103, dynalite :4567 are up"
}

down() {
  [ -d "$STATE" ] || return 0
  for pidfile in "$STATE"/*.pid; do
    [ -e "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 0.3
  for pidfile in "$STATE"/*.pid; do
    [ -e "$pidfile" ] || continue
    kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$STATE"
  echo "services: stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
