#!/usr/bin/env bash
# deploy/test-services.sh: makes sure every service `make test` needs runs on
# 127.0.0.1. A service already listening is reused; otherwise it is installed
# from Debian packages and started (as root), or its tests will skip locally.
# Under CI=true a service that cannot be brought up fails the run.
#
# Usage: deploy/test-services.sh up
#
# Adding a service: write ensure_<name> (install if missing, start, wait until
# ready; return non-zero with a message on failure) and add <name> to
# SERVICES. Helpers below do the common parts.
set -euo pipefail

# Services the test suites need, in start order. Each has an ensure_<name>.
SERVICES=(rabbitmq clickhouse tools browser)

log() { echo "test-services: $*" >&2; }

# port_open HOST PORT: true if something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_port HOST PORT SECONDS: poll until the port accepts connections.
wait_port() {
	local deadline=$((SECONDS + $3))
	until port_open "$1" "$2"; do
		if ((SECONDS >= deadline)); then
			log "$1:$2 not accepting connections after $3 s"
			return 1
		fi
		sleep 0.2
	done
}

# apt_install PKG...: install Debian packages not yet installed.
apt_updated=""
apt_install() {
	local missing=()
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	if [[ $(id -u) -ne 0 ]]; then
		log "need root to install ${missing[*]}"
		return 1
	fi
	if [[ -z $apt_updated ]]; then
		apt-get update -qq && apt_updated=1
	fi
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_rabbitmq: RabbitMQ on 127.0.0.1:5672 (guest/guest) for bus/amqp, and
# the amqp-tools (amqp-publish, ...) its interop test drives. A running broker
# is reused; otherwise Debian's rabbitmq-server is installed and started.
ensure_rabbitmq() {
	apt_install amqp-tools || return 1
	if port_open 127.0.0.1 5672; then
		return 0
	fi
	apt_install rabbitmq-server || return 1
	# The node name, and so its pid file, may be set in rabbitmq-env.conf
	# (Debian's says rabbit@localhost); the broker's default is the short
	# host name.
	local node
	node=$(
		NODENAME=""
		# shellcheck disable=SC1091
		[[ -r /etc/rabbitmq/rabbitmq-env.conf ]] && . /etc/rabbitmq/rabbitmq-env.conf
		echo "${NODENAME:-rabbit@$(hostname -s)}"
	)
	log "starting rabbitmq-server (node $node)"
	RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached || return 1
	if ! rabbitmqctl wait "/var/lib/rabbitmq/mnesia/$node.pid" --timeout 60 >/dev/null; then
		log "rabbitmq-server did not become ready within 60 s (see /var/log/rabbitmq/)"
		return 1
	fi
	wait_port 127.0.0.1 5672 30
}

# http_ok URL: true if an HTTP GET of URL answers 2xx within 2 s.
http_ok() { curl -fsS --max-time 2 "$1" >/dev/null 2>&1; }

# ensure_clickhouse: ClickHouse on 127.0.0.1 (native 9000, HTTP 8123, user
# default, no password) for sinks/clickhouse. A server answering /ping is
# reused; otherwise Debian's clickhouse-server (18.16, the only one these
# machines can install) is installed and started as the clickhouse user,
# listening on loopback only; the package does not start it itself.
ensure_clickhouse() {
	local ping=http://127.0.0.1:8123/ping
	apt_install curl || return 1
	if http_ok "$ping"; then
		return 0
	fi
	apt_install clickhouse-server clickhouse-client || return 1
	log "starting clickhouse-server"
	# Startup prints harmless "Include not found" lines.
	runuser -u clickhouse -- /usr/sbin/clickhouse-server --daemon \
		--config-file=/etc/clickhouse-server/config.xml --pid-file=/tmp/clickhouse-server.pid \
		-- --listen_host=127.0.0.1 >/dev/null 2>&1 || {
		log "clickhouse-server did not start (see /var/log/clickhouse-server/)"
		return 1
	}
	local deadline=$((SECONDS + 60))
	until http_ok "$ping"; do
		if ((SECONDS >= deadline)); then
			log "clickhouse-server did not answer $ping within 60 s (see /var/log/clickhouse-server/)"
			return 1
		fi
		sleep 0.2
	done
	wait_port 127.0.0.1 9000 30
}

# ensure_tools: command-line peers the interop tests drive: kcat for
# bus/kafka's (pkg/e2e/kafka; its broker, kfake, runs inside the tests),
# curl for pkg/cehttp;
# and promtool (Debian's prometheus package) for deploy/check's rule tests.
ensure_tools() {
	apt_install kcat curl prometheus
}

# ensure_browser: Debian's Chromium (headless) and ChromeDriver for the
# explorer's browser tests in pkg/e2e, which drive /usr/bin/chromium.
ensure_browser() {
	apt_install chromium chromium-driver || return 1
	chromium --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1 || {
		log "chromium is installed but does not start: chromium --headless --version failed"
		return 1
	}
}

up() {
	if ((${#SERVICES[@]} == 0)); then
		log "no services needed"
		return 0
	fi
	local failed=()
	for s in "${SERVICES[@]}"; do
		if "ensure_$s"; then
			log "$s ready"
		else
			failed+=("$s")
		fi
	done
	((${#failed[@]})) || return 0
	if [[ ${CI:-} == true ]]; then
		log "FAILED to start: ${failed[*]} (CI=true: tests needing them would fail)"
		return 1
	fi
	log "could not start: ${failed[*]}; tests needing them will skip (run as root, or start them yourself)"
}

case "${1:-}" in
up) up ;;
*)
	echo "usage: $0 up" >&2
	exit 2
	;;
esac
