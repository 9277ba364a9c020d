#!/usr/bin/env bash
# topics.sh creates paygate's topics (DESIGN.md §3) and their dead-letter
# twins on a production Kafka cluster, and (re)applies their settings.
# Safe to run again: existing topics are kept and only their settings are
# updated; the partition count of an existing topic is never changed here
# (see README.md: changing it moves keys to other partitions).
#
# Run it before the first `paygate migrate`: migrate creates missing topics
# too, with PAYGATE_REPLICATION_FACTOR replicas (k8s: 3), but sets neither
# min.insync.replicas nor unclean leader election nor the DLQs' retention.
#
#   BOOTSTRAP=kafka-0.kafka:9092 ./topics.sh
#   DRY_RUN=1 ./topics.sh                      # print the commands only
#
# Settings (environment, default):
#   BOOTSTRAP            localhost:9092
#   KAFKA_BIN            /opt/kafka/bin (where kafka-topics.sh lives)
#   COMMAND_CONFIG       (none) a client properties file, for TLS/SASL
#   PARTITIONS           8   same as PAYGATE_PARTITIONS; the most members a
#                            consumer group can keep busy
#   REPLICATION_FACTOR   3
#   MIN_INSYNC_REPLICAS  2   with acks=all: a write survives one broker loss
#   RETENTION_MS         604800000  (7 days) for the topics
#   DLQ_RETENTION_MS     2592000000 (30 days) for the .dlq topics: time
#                                   for an operator to replay them
#   DRY_RUN              (empty) set to print instead of run
set -euo pipefail

BOOTSTRAP=${BOOTSTRAP:-localhost:9092}
KAFKA_BIN=${KAFKA_BIN:-/opt/kafka/bin}
COMMAND_CONFIG=${COMMAND_CONFIG:-}
PARTITIONS=${PARTITIONS:-8}
REPLICATION_FACTOR=${REPLICATION_FACTOR:-3}
MIN_INSYNC_REPLICAS=${MIN_INSYNC_REPLICAS:-2}
RETENTION_MS=${RETENTION_MS:-604800000}
DLQ_RETENTION_MS=${DLQ_RETENTION_MS:-2592000000}
DRY_RUN=${DRY_RUN:-}

# Every topic (schemas.Topics()): keyed by order id; psp-callbacks by
# <channel>/<transaction code>, the reconciliation topics by <channel>/<day>.
TOPICS=(
  paygate.pay-requests.v1
  paygate.pay-sessions.v1
  paygate.psp-callbacks.v1
  paygate.payments.v1
  paygate.refund-requests.v1
  paygate.refund-results.v1
  paygate.reconciliation.v1
  paygate.recon-mismatches.v1
)

# The record batch limit of every topic, as `paygate migrate` sets it
# (broker.MaxMessageBytes, 8 MiB). paygate's writers send batches of up to
# 4 MiB to any topic (producers/writer.go BatchBytes), and a raw callback
# carries the PSP's body (up to 1 MiB at the ingress) base64-encoded plus
# its headers: the broker's default 1 MB would refuse either.
MAX_MESSAGE_BYTES=8388608

conn=(--bootstrap-server "$BOOTSTRAP")
if [[ -n $COMMAND_CONFIG ]]; then
  conn+=(--command-config "$COMMAND_CONFIG")
fi

run() {
  if [[ -n $DRY_RUN ]]; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# configs_for TOPIC RETENTION prints the topic's settings, one key=value a line.
configs_for() {
  local retention=$2
  echo "cleanup.policy=delete"
  echo "retention.ms=$retention"
  echo "min.insync.replicas=$MIN_INSYNC_REPLICAS"
  # A replica that missed acknowledged writes must never become leader:
  # that would lose paid events.
  echo "unclean.leader.election.enable=false"
  echo "max.message.bytes=$MAX_MESSAGE_BYTES"
}

ensure() {
  local topic=$1 retention=$2 kv
  local create=("$KAFKA_BIN/kafka-topics.sh" "${conn[@]}" --create --if-not-exists
    --topic "$topic" --partitions "$PARTITIONS" --replication-factor "$REPLICATION_FACTOR")
  local alter=()
  while IFS= read -r kv; do
    create+=(--config "$kv")
    alter+=("$kv")
  done < <(configs_for "$topic" "$retention")
  run "${create[@]}"
  # --if-not-exists leaves an existing topic's settings alone: apply them.
  local joined
  joined=$(IFS=,; echo "${alter[*]}")
  run "$KAFKA_BIN/kafka-configs.sh" "${conn[@]}" --alter --entity-type topics \
    --entity-name "$topic" --add-config "$joined"
}

for t in "${TOPICS[@]}"; do
  ensure "$t" "$RETENTION_MS"
  ensure "$t.dlq" "$DLQ_RETENTION_MS"
done

if [[ -z $DRY_RUN ]]; then
  "$KAFKA_BIN/kafka-topics.sh" "${conn[@]}" --describe --topics-with-overrides |
    grep '^Topic: paygate\.' || true
fi
