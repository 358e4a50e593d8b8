#!/usr/bin/env bash
# A throwaway monitoring stack on 127.0.0.1 for the end-to-end alerting test: Pushgateway, Prometheus
# (scraping it every second, with the shipped rules evaluated every second), Alertmanager (routing
# everything at once to a local webhook receiver that records what it gets). Every process stops by
# itself after DRKIT_MONITORING_LIFETIME seconds (default 900) if `stop` is never called.
#
#   eval "$(scripts/monitoring-stack.sh start)"   exports DRKIT_MON_DIR, DRKIT_PUSHGATEWAY_URL,
#                                                  DRKIT_PROMETHEUS_URL, DRKIT_ALERTMANAGER_URL, DRKIT_WEBHOOK_LOG
#   scripts/monitoring-stack.sh stop DIR
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$(dirname "$0")/lib/services.sh"
lifetime=${DRKIT_MONITORING_LIFETIME:-900}

case "${1:-}" in
start)
    dir=$(mktemp -d /tmp/drkit-mon.XXXXXX)
    push=$(free_port); prom=$(free_port); am=$(free_port); hook=$(free_port); cluster=$(free_port)
    cp "$here/manifests/monitoring/drkit-alerts.yml" "$dir/"
    cat > "$dir/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [drkit-alerts.yml]
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs: [{targets: ["127.0.0.1:$push"]}]
alerting:
  alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$am"]}]}]
CONF
    cat > "$dir/alertmanager.yml" <<CONF
route:
  receiver: webhook
  group_by: [alertname, database]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs: [{url: "http://127.0.0.1:$hook/", send_resolved: true}]
CONF
    start() { setsid timeout "$lifetime" "$@" >>"$dir/stack.log" 2>&1 & echo $! >> "$dir/pids"; }
    start python3 "$here/scripts/webhook_receiver.py" --port "$hook" --out "$dir/webhook.jsonl" --lifetime "$lifetime"
    start prometheus-pushgateway --web.listen-address="127.0.0.1:$push" --persistence.file=""
    start prometheus-alertmanager --config.file="$dir/alertmanager.yml" --storage.path="$dir/am" \
        --web.listen-address="127.0.0.1:$am" --cluster.listen-address="127.0.0.1:$cluster" --cluster.advertise-address="127.0.0.1:$cluster"
    start prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prom" \
        --web.listen-address="127.0.0.1:$prom" --rules.alert.resend-delay=1s
    for url in "http://127.0.0.1:$push/-/ready" "http://127.0.0.1:$am/-/ready" "http://127.0.0.1:$prom/-/ready"; do
        for _ in $(seq 1 100); do curl -sf "$url" >/dev/null 2>&1 && break; sleep 0.2; done
        curl -sf "$url" >/dev/null || { cat "$dir/stack.log" >&2; echo "monitoring-stack: $url not ready" >&2; exit 1; }
    done
    echo "export DRKIT_MON_DIR='$dir'"
    echo "export DRKIT_PUSHGATEWAY_URL=http://127.0.0.1:$push"
    echo "export DRKIT_PROMETHEUS_URL=http://127.0.0.1:$prom"
    echo "export DRKIT_ALERTMANAGER_URL=http://127.0.0.1:$am"
    echo "export DRKIT_WEBHOOK_LOG='$dir/webhook.jsonl'"
    ;;
stop)
    dir=${2:?usage: monitoring-stack.sh stop DIR}
    if [ -f "$dir/pids" ]; then
        while read -r pid; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done < "$dir/pids"
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
