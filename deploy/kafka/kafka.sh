#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft broker+controller) for ordertwin development.
#
#   kafka.sh fetch | up | down | status | reset | logs [-f] | topics ARGS... | tool CLASS ARGS...
#
# See deploy/kafka/README.md. Environment:
#   KAFKA_PORT (9092)  KAFKA_CONTROLLER_PORT (9093)  KAFKA_DATA_DIR (deploy/kafka/data)
#   KAFKA_HOME  KAFKA_HEAP_OPTS ("-Xmx1g -Xms256m")  KAFKA_OPTS  JAVA (java)
#   KAFKA_START_TIMEOUT (90)  KAFKA_STOP_TIMEOUT (30)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd -P)"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1g -Xms256m}"
KAFKA_OPTS="${KAFKA_OPTS:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
if [[ -z "${JAVA:-}" ]]; then
  if [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi
fi

# Relative KAFKA_DATA_DIR values are relative to the repository root (like the default).
DATA_DIR="${KAFKA_DATA_DIR:-deploy/kafka/data}"
[[ "$DATA_DIR" = /* ]] || DATA_DIR="$REPO_ROOT/$DATA_DIR"
DATA_DIR="${DATA_DIR%/}"

# Everything belonging to one broker instance lives under its data dir, so a second
# broker (other ports + other KAFKA_DATA_DIR) is fully independent.
CONF_DIR="$DATA_DIR/config"
LOG_DIR="$DATA_DIR/logs"
KAFKA_LOG_DIRS="$DATA_DIR/kafka-logs"        # Kafka's log.dirs (topic + KRaft metadata)
PROPS="$CONF_DIR/server.properties"
LOG4J_SERVER="$CONF_DIR/log4j2.properties"
LOG4J_TOOLS="$CONF_DIR/tools-log4j2.properties"
PID_FILE="$DATA_DIR/kafka.pid"
SERVER_LOG="$LOG_DIR/server.log"              # log4j2 output of the broker
STDOUT_LOG="$LOG_DIR/kafka.out"               # JVM stdout/stderr (crashes, early errors)
LOCK_FILE="$DATA_DIR/.lock"

LIB_DIR="$SCRIPT_DIR/lib"
POM="$SCRIPT_DIR/pom.xml"
STAMP="$SCRIPT_DIR/.lib.sha256"
FETCH_LOCK="$SCRIPT_DIR/.fetch.lock"

BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
NAME="kafka[$KAFKA_PORT]"
CP=""

say() { printf '%s: %s\n' "$NAME" "$*"; }
err() { printf '%s: error: %s\n' "$NAME" "$*" >&2; }
die() { err "$*"; exit 1; }

usage() {
  cat <<EOF
usage: $(basename "$0") <command>
  fetch            resolve the Kafka jars (KAFKA_HOME/libs or Maven -> deploy/kafka/lib)
  up               start the local broker (idempotent) and wait until it answers
  down             stop the broker (SIGTERM, SIGKILL after ${KAFKA_STOP_TIMEOUT}s)
  status           print running/stopped; exit 0 if running, 3 if not
  reset            down + delete the data dir ($DATA_DIR)
  logs [-f] [N]    show the last N (100) lines of the broker log; -f to follow
  topics ARGS...   kafka-topics against this broker (e.g. topics --list)
  tool CLASS ARGS  run a Kafka tool class with the broker classpath
EOF
}

# ---------------------------------------------------------------- helpers

validate_ports() {
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if ! [[ "$p" =~ ^[0-9]+$ ]] || (( p < 1 || p > 65535 )); then die "invalid port '$p'"; fi
  done
  [[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# lock FD FILE: exclusive lock on FILE via file descriptor FD (8 = fetch, 9 = instance).
# No-op where flock(1) is unavailable (e.g. macOS).
lock() {
  local fd="$1" file="$2"
  command -v flock >/dev/null 2>&1 || return 0
  eval "exec $fd>\"\$file\""
  if ! flock -n "$fd"; then
    say "waiting for another kafka.sh using $(basename "$file")..."
    flock -w 300 "$fd" || die "timed out waiting for lock $file"
  fi
}

port_open() {  # port_open PORT -> 0 if something accepts TCP connections on 127.0.0.1:PORT
  if command -v timeout >/dev/null 2>&1; then
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

port_owner() {  # best effort description of the listener on PORT
  command -v ss >/dev/null 2>&1 || return 0
  ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1, pid \2/p' | head -1
}

cmdline_of() {
  if [[ -r "/proc/$1/cmdline" ]]; then tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true
  else ps -p "$1" -o args= 2>/dev/null || true; fi
}

# Is PID alive and really our broker (guards against pid reuse)?
is_our_broker() {
  local pid="$1" cmd
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(cmdline_of "$pid")"
  [[ "$cmd" == *kafka.Kafka*"$PROPS"* ]]
}

# Echo the pid of our running broker, or return 1. Removes a stale pid file.
running_pid() {
  local pid=""
  if [[ -f "$PID_FILE" ]]; then
    pid="$(tr -dc '0-9' <"$PID_FILE" || true)"
    if is_our_broker "$pid"; then echo "$pid"; return 0; fi
    rm -f "$PID_FILE"
    say "removed stale pid file (pid ${pid:-?} is not running)" >&2
  fi
  # Pid file lost but the broker is alive? Look for a kafka.Kafka using our config (Linux).
  local d
  for d in /proc/[0-9]*; do
    [[ -r "$d/cmdline" ]] || continue
    pid="${d#/proc/}"
    if is_our_broker "$pid" 2>/dev/null; then
      mkdir -p "$DATA_DIR"; echo "$pid" >"$PID_FILE"
      say "re-adopted running broker pid $pid (pid file was missing)" >&2
      echo "$pid"; return 0
    fi
  done
  return 1
}

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (JAVA=$JAVA); install JDK 17+ or set JAVA/JAVA_HOME"
  local v major
  v="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -1)"
  major="${v%%.*}"; [[ "$major" == 1 ]] && major="$(cut -d. -f2 <<<"$v")"
  [[ "$major" =~ ^[0-9]+$ ]] || { err "could not parse java version ('$v'), continuing"; return 0; }
  (( major >= 17 )) || die "Kafka 4.x brokers need Java 17+, $JAVA is $v"
}

# ---------------------------------------------------------------- fetch

cmd_fetch() {
  if [[ -n "${KAFKA_HOME:-}" ]]; then
    if [[ -d "$KAFKA_HOME/libs" ]] && compgen -G "$KAFKA_HOME/libs/kafka_*.jar" >/dev/null; then
      CP="$KAFKA_HOME/libs/*"
      [[ "${1:-}" == quiet ]] || say "using jars from KAFKA_HOME=$KAFKA_HOME/libs"
      return 0
    fi
    err "KAFKA_HOME=$KAFKA_HOME has no libs/kafka_*.jar; falling back to Maven"
  fi
  [[ -f "$POM" ]] || die "missing $POM"
  lock 8 "$FETCH_LOCK"
  local want have=""
  want="$(sha256_of "$POM")"
  [[ -f "$STAMP" ]] && have="$(cat "$STAMP")"
  if [[ "$want" != "$have" ]] || ! compgen -G "$LIB_DIR/kafka_*.jar" >/dev/null; then
    command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven or point KAFKA_HOME at an unpacked Kafka distribution"
    say "resolving Kafka jars with Maven into ${LIB_DIR#"$REPO_ROOT"/} ..."
    rm -rf "$LIB_DIR" "$STAMP"   # start clean so jars dropped from the pom do not linger
    # (sed strips the stray ANSI reset codes Maven 3.8's jansi prints even in batch mode)
    if ! (cd "$SCRIPT_DIR" && mvn -q -B dependency:copy-dependencies 2>&1 | sed $'s/\x1b\\[[0-9;]*m//g'); then
      die "mvn dependency:copy-dependencies failed (see output above)"
    fi
    compgen -G "$LIB_DIR/kafka_*.jar" >/dev/null || die "mvn succeeded but $LIB_DIR has no kafka_*.jar"
    echo "$want" >"$STAMP"
    say "fetched $(find "$LIB_DIR" -name '*.jar' | wc -l | tr -d ' ') jars"
  elif [[ "${1:-}" != quiet ]]; then
    say "jars up to date in ${LIB_DIR#"$REPO_ROOT"/} (pom unchanged)"
  fi
  exec 8>&-
  CP="$LIB_DIR/*"
}

# ---------------------------------------------------------------- config

write_tools_log4j() {
  mkdir -p "$CONF_DIR"
  cat >"$LOG4J_TOOLS" <<'EOF'
# Generated by deploy/kafka/kafka.sh -- log4j2 config for CLI tools (warnings to stderr).
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

write_config() {
  mkdir -p "$CONF_DIR" "$LOG_DIR" "$KAFKA_LOG_DIRS"
  cat >"$PROPS" <<EOF
# Generated by deploy/kafka/kafka.sh on every 'up' -- edit the script, not this file.
# Single-node KRaft (combined broker + controller), dynamic quorum (KIP-853).
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT

log.dirs=$KAFKA_LOG_DIRS
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Faust creates its internal changelog/repartition topics on the fly.
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0

num.network.threads=3
num.io.threads=8
log.retention.hours=168
EOF

  cat >"$LOG4J_SERVER" <<EOF
# Generated by deploy/kafka/kafka.sh -- broker log4j2 config (Kafka 4 uses log4j2).
status = warn
name = ordertwin-local-kafka
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $SERVER_LOG
appender.file.filePattern = $SERVER_LOG.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.requestchannel.name = kafka.network.RequestChannel\$
logger.requestchannel.level = WARN
EOF
  write_tools_log4j
}

run_tool() {  # run_tool CLASS ARGS... (classpath must be resolved)
  [[ -f "$LOG4J_TOOLS" ]] || write_tools_log4j
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$LOG4J_TOOLS" -cp "$CP" "$@"
}

format_storage() {
  if [[ -f "$KAFKA_LOG_DIRS/meta.properties" ]]; then return 0; fi
  local cluster_id
  cluster_id="$(run_tool kafka.tools.StorageTool random-uuid)" || die "could not generate a cluster id"
  say "formatting storage in $KAFKA_LOG_DIRS (cluster id $cluster_id)"
  # Kafka 4.x: a dynamic quorum (controller.quorum.bootstrap.servers) must be formatted with
  # --standalone (single controller); --cluster-id is still mandatory.
  if ! run_tool kafka.tools.StorageTool format --standalone --ignore-formatted \
        --cluster-id "$cluster_id" --config "$PROPS" >"$LOG_DIR/format.log" 2>&1; then
    cat "$LOG_DIR/format.log" >&2
    die "kafka-storage format failed"
  fi
}

# ---------------------------------------------------------------- up / down

show_log_tail() {
  local f
  for f in "$STDOUT_LOG" "$SERVER_LOG"; do
    if [[ -s "$f" ]]; then
      echo "----- last 40 lines of $f -----" >&2
      tail -n 40 "$f" >&2
    fi
  done
}

broker_answers() {
  local out
  if command -v timeout >/dev/null 2>&1; then
    out="$(timeout 20 "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$LOG4J_TOOLS" \
      -cp "$CP" org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$BOOTSTRAP" 2>/dev/null)" || return 1
  else
    out="$(run_tool org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$BOOTSTRAP" 2>/dev/null)" || return 1
  fi
  [[ "$out" == *"ApiVersions"* || "$out" == *"Produce("* ]]
}

cmd_up() {
  validate_ports
  mkdir -p "$DATA_DIR"
  lock 9 "$LOCK_FILE"
  local pid
  if pid="$(running_pid)"; then
    cmd_fetch quiet
    if port_open "$KAFKA_PORT" && broker_answers; then
      say "already running (pid $pid), bootstrap $BOOTSTRAP"
      return 0
    fi
    say "already running (pid $pid) but not answering yet, waiting..."
    wait_ready "$pid" "$SECONDS"
    return 0
  fi
  check_java
  cmd_fetch quiet

  local p owner
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$p"; then
      owner="$(port_owner "$p")"
      die "port $p is already in use by another process${owner:+ ($owner)}, not by this broker (data dir $DATA_DIR). Stop it or pick other ports via KAFKA_PORT/KAFKA_CONTROLLER_PORT (and a separate KAFKA_DATA_DIR)."
    fi
  done

  write_config
  format_storage

  say "starting broker (PLAINTEXT $BOOTSTRAP, controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, data $DATA_DIR)"
  local start=$SECONDS launcher=()
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  {
    echo "===== $(date '+%F %T') starting kafka.Kafka ====="
  } >>"$STDOUT_LOG"
  # Own session (setsid) so the broker survives the calling shell; the inner bash writes its
  # own pid and then execs java, so the pid file holds exactly the JVM's pid.
  # shellcheck disable=SC2086,SC2016
  # fds 8/9 (our locks) are closed so the long-running JVM does not hold them.
  (cd "$DATA_DIR" && exec 8>&- 9>&- && exec nohup ${launcher[@]+"${launcher[@]}"} bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
      "$JAVA" $KAFKA_HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$LOG4J_SERVER" -Dkafka.logs.dir="$LOG_DIR" $KAFKA_OPTS \
      -cp "$CP" kafka.Kafka "$PROPS" >>"$STDOUT_LOG" 2>&1 </dev/null) &
  for _ in $(seq 1 50); do [[ -s "$PID_FILE" ]] && break; sleep 0.1; done
  pid="$(tr -dc '0-9' <"$PID_FILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] || { show_log_tail; die "broker process did not start"; }
  wait_ready "$pid" "$start"
}

# wait_ready PID START_SECONDS: poll the port, then a real API call (ApiVersions).
wait_ready() {
  local pid="$1" start="$2"
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT)) port_up=0
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      show_log_tail
      die "broker exited during startup (logs: $LOG_DIR)"
    fi
    if (( port_up == 0 )) && port_open "$KAFKA_PORT"; then port_up=1; fi
    if (( port_up == 1 )) && broker_answers; then break; fi
    if (( SECONDS >= deadline )); then
      show_log_tail
      err "broker (pid $pid) did not answer on $BOOTSTRAP within ${KAFKA_START_TIMEOUT}s (KAFKA_START_TIMEOUT)."
      err "it was left running; see '$0 logs' or stop it with '$0 down'"
      exit 1
    fi
    sleep 1
  done
  say "up in $((SECONDS - start))s (pid $pid), bootstrap $BOOTSTRAP; log $SERVER_LOG"
}

cmd_down() {
  validate_ports
  [[ -d "$DATA_DIR" ]] || { say "not running"; return 0; }
  lock 9 "$LOCK_FILE"
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  say "stopping broker (pid $pid)..."
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT)) start=$SECONDS
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    err "broker did not exit within ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  fi
  rm -f "$PID_FILE"
  say "stopped ($((SECONDS - start))s)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    if port_open "$KAFKA_PORT"; then
      say "running (pid $pid), bootstrap $BOOTSTRAP, data $DATA_DIR"
    else
      say "running (pid $pid) but $BOOTSTRAP is not accepting connections yet, data $DATA_DIR"
    fi
    return 0
  fi
  say "stopped (data $DATA_DIR)"
  return 3
}

cmd_reset() {
  cmd_down
  [[ -e "$DATA_DIR" ]] || { say "nothing to reset"; return 0; }
  # Refuse to wipe a directory that holds things this script did not create.
  local entry base unknown=()
  shopt -s nullglob dotglob
  for entry in "$DATA_DIR"/*; do
    base="${entry##*/}"
    case "$base" in
      config|logs|kafka-logs|kafka.pid|.lock) ;;
      *) unknown+=("$base") ;;
    esac
  done
  shopt -u nullglob dotglob
  if (( ${#unknown[@]} )); then
    die "refusing to delete $DATA_DIR: it contains entries not created by kafka.sh: ${unknown[*]}"
  fi
  rm -rf "$DATA_DIR"
  say "deleted $DATA_DIR"
}

cmd_logs() {
  local follow=0 n=100 a
  for a in "$@"; do
    case "$a" in
      -f|--follow) follow=1 ;;
      *[!0-9]*|'') die "usage: logs [-f] [LINES]" ;;
      *) n="$a" ;;
    esac
  done
  [[ -f "$SERVER_LOG" ]] || die "no broker log yet ($SERVER_LOG)"
  if (( follow )); then exec tail -n "$n" -F "$SERVER_LOG"; fi
  tail -n "$n" "$SERVER_LOG"
}

# ---------------------------------------------------------------- main

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    fetch)  cmd_fetch ;;
    up|start) cmd_up ;;
    down|stop) cmd_down ;;
    status) cmd_status ;;
    reset)  cmd_reset ;;
    logs)   cmd_logs "$@" ;;
    topics) cmd_fetch quiet; run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" "$@" ;;
    tool)   [[ $# -ge 1 ]] || die "usage: tool CLASS [ARGS...]"; cmd_fetch quiet; run_tool "$@" ;;
    -h|--help|help) usage ;;
    '') usage >&2; exit 2 ;;
    *) err "unknown command '$cmd'"; usage >&2; exit 2 ;;
  esac
}

main "$@"
