#!/usr/bin/env bash
# One-shot topic creation for FinSentinel (compose service `kafka-init`).
#
# Creates the seven topics named in stream/contracts/topics.py (TopicNames.from_env) with
# their partitions and retention, and brings existing topics to the same policy,
# so the job is safe to re-run and to run after the services (Kubernetes gives no
# order). Retention: raw 7 d, scored 30 d, alerts 90 d, dead letters 30 d, story
# breadth updates 30 d, analyst corrections 365 d (the feedback store keeps them all),
# a candidate model's shadow output 7 d.
# Partitions bound the parallelism: at most one scorer per raw-topic partition
# does work, so 12 partitions allow scaling to 12 scorer replicas.
#
# Environment: BOOTSTRAP (default kafka:9092), REPLICATION_FACTOR (default 1; use 3
# with min.insync.replicas=2 on a real cluster), MIN_INSYNC_REPLICAS (default 1),
# FINSENTINEL_TOPIC_PREFIX (the same variable the services read).
set -euo pipefail

BOOTSTRAP="${BOOTSTRAP:-kafka:9092}"
RF="${REPLICATION_FACTOR:-1}"
MIN_ISR="${MIN_INSYNC_REPLICAS:-1}"
KAFKA_TOPICS="${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}"
KAFKA_CONFIGS="${KAFKA_CONFIGS:-/opt/kafka/bin/kafka-configs.sh}"

DAY_MS=86400000

# The services' prefix (stream/contracts/topics.py: FINSENTINEL_TOPIC_PREFIX, default "finsentinel").
PREFIX="${FINSENTINEL_TOPIC_PREFIX:-finsentinel}"

# topic (after the prefix) partitions retention_days
TOPICS=(
  "raw.news 12 7"
  "raw.comments 12 7"
  "scored 12 30"
  "alerts 3 90"
  "deadletter 3 30"
  "breadth 3 30"
  "feedback 3 365"
  "scored.shadow 12 7"
)

for spec in "${TOPICS[@]}"; do
  read -r suffix partitions days <<<"${spec}"
  name="${PREFIX}.${suffix}"
  "${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP}" --create --if-not-exists \
    --topic "${name}" --partitions "${partitions}" --replication-factor "${RF}" \
    --config "retention.ms=$((days * DAY_MS))" \
    --config "min.insync.replicas=${MIN_ISR}" \
    --config cleanup.policy=delete \
    --config compression.type=producer
  # A topic that already existed (e.g. created by a service that started first, with
  # the broker's defaults) converges to the policy: configs are set, partitions only
  # ever grow (Kafka cannot shrink them).
  "${KAFKA_CONFIGS}" --bootstrap-server "${BOOTSTRAP}" --alter --entity-type topics \
    --entity-name "${name}" \
    --add-config "retention.ms=$((days * DAY_MS)),min.insync.replicas=${MIN_ISR},cleanup.policy=delete"
  current="$("${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP}" --describe --topic "${name}" \
    | grep -o 'PartitionCount: *[0-9]*' | grep -o '[0-9]*$')"
  if [ "${current}" -lt "${partitions}" ]; then
    "${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP}" --alter --topic "${name}" \
      --partitions "${partitions}"
  fi
  echo "topic ${name}: ${partitions} partitions (had ${current}), retention ${days} d"
done

"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP}" --describe --topics-with-overrides
