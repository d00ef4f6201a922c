#!/usr/bin/env bash
# One-shot topic creation for FinSentinel (compose service `kafka-init`).
#
# Creates the five topics named in stream/topics.py (TopicNames defaults) with
# their partitions and retention; existing topics are left as they are, so the job
# is safe to re-run. Retention, per the data-retention policy:
#   raw 7 d, scored 30 d, alerts 90 d, dead letters 30 d.
# Partitions bound the parallelism: at most one scorer per raw-topic partition
# does work, so 12 partitions allow scaling to 12 scorer replicas.
#
# Environment: BOOTSTRAP (default kafka:9092), REPLICATION_FACTOR (default 1; use 3
# with min.insync.replicas=2 on a real cluster), MIN_INSYNC_REPLICAS (default 1).
set -euo pipefail

BOOTSTRAP="${BOOTSTRAP:-kafka:9092}"
RF="${REPLICATION_FACTOR:-1}"
MIN_ISR="${MIN_INSYNC_REPLICAS:-1}"
KAFKA_TOPICS="${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}"

DAY_MS=86400000

# name partitions retention_days
TOPICS=(
  "finsentinel.raw.news 12 7"
  "finsentinel.raw.comments 12 7"
  "finsentinel.scored 12 30"
  "finsentinel.alerts 3 90"
  "finsentinel.deadletter 3 30"
)

for spec in "${TOPICS[@]}"; do
  read -r name partitions days <<<"${spec}"
  "${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP}" --create --if-not-exists \
    --topic "${name}" --partitions "${partitions}" --replication-factor "${RF}" \
    --config "retention.ms=$((days * DAY_MS))" \
    --config "min.insync.replicas=${MIN_ISR}" \
    --config cleanup.policy=delete \
    --config compression.type=producer
  echo "topic ${name}: ${partitions} partitions, retention ${days} d"
done

"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP}" --describe --topics-with-overrides
