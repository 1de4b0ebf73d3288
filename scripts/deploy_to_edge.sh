#!/usr/bin/env bash
# shellcheck disable=SC2029 # remote commands are quoted here (printf %q) on purpose
# Deploy the broker and gateway images that the tests ran to an edge box over ssh:
# save them here, load them there, and run them with a gateway configuration.
#
#   scripts/deploy_to_edge.sh [options] USER@HOST
#
# Options:
#   --scenario FILE       take the gateway configuration from this scenario (validated and
#                         simulated in the tests) ...
#   --gateway NAME        ... for this gateway (default: the scenario's first gateway);
#                         its simulated processing_delay is dropped (the box has its own)
#   --keep-processing-delay  keep the scenario's simulated processing delay on the box
#   --gateway-config FILE or give the gateway's JSON configuration directly
#   --broker-image REF    default: edgesim/mqtt-broker:latest
#   --gateway-image REF   default: edgesim/gateway:latest
#   --broker-config FILE  a production mosquitto.conf to mount (default: the image's test
#                         one), with a volume NAME-mosquitto-data at /mosquitto/data
#   --no-broker           do not run a broker on the box; use --broker-host/--broker-port
#   --broker-host HOST    where the gateway finds the broker (default: the box's own broker)
#   --broker-port PORT    default: 1883
#   --mqtt-port PORT      host port the box's broker listens on (default: 1883)
#   --remote-dir DIR      where the configuration goes on the box (default: edgesim)
#   --name-prefix NAME    names the containers NAME-broker, NAME-gateway, the network
#                         NAME-edge and the volume (default: edgesim)
#   --label KEY=VALUE     put this label on the containers and the network (repeatable)
#   --no-copy             the images are on the box already (pulled from a registry)
#   --ssh-option OPT      passed to ssh and scp as -o OPT (repeatable)
#   --force-arch          deploy even if the images' architecture differs from the box's
#   --dry-run             check the configuration and the images here, then print every
#                         command instead of running it
#
# See docs/deployability.md for building arm64 images and for production settings.
set -euo pipefail

BROKER_IMAGE="edgesim/mqtt-broker:latest"
GATEWAY_IMAGE="edgesim/gateway:latest"
NAME_PREFIX="edgesim"
LABELS=()
COPY_IMAGES=1
BROKER_HOST=""
BROKER_PORT="1883"
MQTT_PORT="1883"
REMOTE_DIR="edgesim"
SCENARIO=""
GATEWAY=""
GATEWAY_CONFIG=""
BROKER_CONFIG=""
RUN_BROKER=1
FORCE_ARCH=0
KEEP_DELAY=0
DRY_RUN=0
SSH_OPTIONS=()
TARGET=""

usage() {
    sed -n "3,/^set -euo/p" "$0" | sed -e "/^set -euo/d" -e "s/^# \{0,1\}//"
}

die() {
    printf 'deploy_to_edge: %s\n' "$*" >&2
    exit 2
}

need_value() {
    [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --scenario) need_value "$@"; SCENARIO=$2; shift 2 ;;
        --gateway) need_value "$@"; GATEWAY=$2; shift 2 ;;
        --gateway-config) need_value "$@"; GATEWAY_CONFIG=$2; shift 2 ;;
        --broker-image) need_value "$@"; BROKER_IMAGE=$2; shift 2 ;;
        --gateway-image) need_value "$@"; GATEWAY_IMAGE=$2; shift 2 ;;
        --broker-config) need_value "$@"; BROKER_CONFIG=$2; shift 2 ;;
        --no-broker) RUN_BROKER=0; shift ;;
        --broker-host) need_value "$@"; BROKER_HOST=$2; shift 2 ;;
        --broker-port) need_value "$@"; BROKER_PORT=$2; shift 2 ;;
        --mqtt-port) need_value "$@"; MQTT_PORT=$2; shift 2 ;;
        --remote-dir) need_value "$@"; REMOTE_DIR=$2; shift 2 ;;
        --name-prefix) need_value "$@"; NAME_PREFIX=$2; shift 2 ;;
        --label) need_value "$@"; LABELS+=(--label "$2"); shift 2 ;;
        --no-copy) COPY_IMAGES=0; shift ;;
        --ssh-option) need_value "$@"; SSH_OPTIONS+=(-o "$2"); shift 2 ;;
        --force-arch) FORCE_ARCH=1; shift ;;
        --keep-processing-delay) KEEP_DELAY=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *)
            [[ -z $TARGET ]] || die "one target only: got $TARGET and $1"
            TARGET=$1
            shift
            ;;
    esac
done

[[ -n $TARGET ]] || die "which box? give USER@HOST (see --help)"
NETWORK="$NAME_PREFIX-edge"
BROKER_NAME="$NAME_PREFIX-broker"
GATEWAY_NAME="$NAME_PREFIX-gateway"
DATA_VOLUME="$NAME_PREFIX-mosquitto-data"
[[ -z $SCENARIO || -z $GATEWAY_CONFIG ]] || die "give --scenario or --gateway-config, not both"
[[ -n $SCENARIO || -n $GATEWAY_CONFIG ]] || die "the gateway needs a configuration: --scenario FILE or --gateway-config FILE"
[[ -z $SCENARIO || -f $SCENARIO ]] || die "--scenario $SCENARIO: no such file"
[[ -z $GATEWAY_CONFIG || -f $GATEWAY_CONFIG ]] || die "--gateway-config $GATEWAY_CONFIG: no such file"
[[ -z $BROKER_CONFIG || -f $BROKER_CONFIG ]] || die "--broker-config $BROKER_CONFIG: no such file"
if [[ $RUN_BROKER -eq 0 && -z $BROKER_HOST ]]; then
    die "--no-broker needs --broker-host (the broker the gateway should use)"
fi
[[ -n $BROKER_HOST ]] || BROKER_HOST=$BROKER_NAME

# Print a command as it would be typed, then run it unless this is a dry run.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [[ $DRY_RUN -eq 0 ]]; then
        "$@"
    fi
}

# Run a command on the box. The words are quoted here, once, so that the remote shell
# sees exactly these words; the printed line is what the remote shell receives.
remote() {
    local quoted
    quoted=$(printf ' %q' "$@")
    printf '+ ssh %s%s\n' "$TARGET" "$quoted"
    if [[ $DRY_RUN -eq 0 ]]; then
        ssh "${SSH_OPTIONS[@]}" "$TARGET" "${quoted# }"
    fi
}

# The same, for a check whose failure is an answer: in a dry run it answers "no".
remote_check() {
    local quoted
    quoted=$(printf ' %q' "$@")
    printf '+ ssh %s%s\n' "$TARGET" "$quoted"
    [[ $DRY_RUN -eq 0 ]] && ssh "${SSH_OPTIONS[@]}" "$TARGET" "${quoted# }" >/dev/null 2>&1
}

images=("$GATEWAY_IMAGE")
[[ $RUN_BROKER -eq 0 ]] || images=("$BROKER_IMAGE" "${images[@]}")

# 1. The images must exist here and match the box's architecture (an amd64 image does not
#    run on a Raspberry Pi: build arm64 ones first, see docs/deployability.md).
if [[ $COPY_IMAGES -eq 1 ]]; then
    if [[ $DRY_RUN -eq 0 ]]; then
        remote_arch=$(ssh "${SSH_OPTIONS[@]}" "$TARGET" docker info --format '{{.Architecture}}')
        case $remote_arch in
            x86_64) remote_arch=amd64 ;;
            aarch64) remote_arch=arm64 ;;
        esac
        for image in "${images[@]}"; do
            image_arch=$(docker image inspect --format '{{.Architecture}}' "$image") \
                || die "image $image is not here: build it with 'edgesim images build'"
            if [[ $image_arch != "$remote_arch" && $FORCE_ARCH -eq 0 ]]; then
                die "image $image is $image_arch but $TARGET runs $remote_arch (build for linux/$remote_arch, or --force-arch)"
            fi
        done
    else
        echo "+ ssh $TARGET docker info --format '{{.Architecture}}'  # must match each image's architecture"
        for image in "${images[@]}"; do
            docker image inspect "$image" >/dev/null 2>&1 \
                || printf 'deploy_to_edge: warning: image %s is not here: build it with %s\n' \
                    "$image" "'edgesim images build'" >&2
        done
    fi

    # 2. Copy the images: docker save | gzip | ssh docker load (no registry needed).
    echo "+ docker save ${images[*]} | gzip | ssh $TARGET 'gunzip | docker load'"
    if [[ $DRY_RUN -eq 0 ]]; then
        docker save "${images[@]}" | gzip | ssh "${SSH_OPTIONS[@]}" "$TARGET" 'gunzip | docker load'
    fi
fi

# 3. The gateway's configuration, as the env file it reads (EDGESIM_GATEWAY_CONFIG is JSON
#    on one line), copied to the box.
env_file=$(mktemp "${TMPDIR:-/tmp}/edgesim-gateway.XXXXXX")
trap 'rm -f "$env_file"' EXIT
if [[ -n $SCENARIO ]]; then
    echo "+ python3: EDGESIM_GATEWAY_CONFIG from $SCENARIO${GATEWAY:+, gateway $GATEWAY} > $env_file"
else
    echo "+ python3: EDGESIM_GATEWAY_CONFIG from $GATEWAY_CONFIG > $env_file"
fi
# (made in a dry run too: it is local, and it checks the scenario and the gateway's name)
python3 - "$SCENARIO" "$GATEWAY" "$GATEWAY_CONFIG" "$KEEP_DELAY" >"$env_file" <<'PYTHON' \
    || exit 2
import json
import sys

scenario, gateway, config_file, keep_delay = sys.argv[1:5]
if scenario:
    from pytest_edgesim import Scenario
    from pytest_edgesim.gateway.config import config_from_spec

    from pytest_edgesim.errors import ScenarioError

    try:
        gateways = Scenario.from_yaml(scenario).spec.gateways
    except ScenarioError as error:
        sys.exit(f"deploy_to_edge: {error}")
    chosen = [spec for spec in gateways if not gateway or spec.name == gateway]
    if not chosen:
        names = ", ".join(spec.name for spec in gateways) or "none"
        sys.exit(f"deploy_to_edge: {scenario} has no gateway {gateway!r} (it has: {names})")
    config = config_from_spec(chosen[0])
    if keep_delay != "1":  # the simulated delay stands for the box's own processing time
        config["processing_delay_us"] = {"distribution": "constant", "value": 0}
else:
    try:
        with open(config_file) as source:
            config = json.load(source)
    except ValueError as error:
        sys.exit(f"deploy_to_edge: --gateway-config {config_file}: not JSON ({error})")
    from pytest_edgesim.gateway.config import GatewayConfigError, validate_config

    try:  # what the gateway checks at start-up, checked here before anything is copied
        validate_config(config)
    except GatewayConfigError as error:
        sys.exit(f"deploy_to_edge: --gateway-config {config_file}: {error}")
print("EDGESIM_GATEWAY_CONFIG=" + json.dumps(config, separators=(",", ":")))
PYTHON
if [[ $DRY_RUN -eq 0 ]]; then
    remote_dir=$(ssh "${SSH_OPTIONS[@]}" "$TARGET" "mkdir -p $(printf %q "$REMOTE_DIR") && cd $(printf %q "$REMOTE_DIR") && pwd")
else
    echo "+ ssh $TARGET mkdir -p $REMOTE_DIR && cd $REMOTE_DIR && pwd  # the absolute path: REMOTE_HOME/$REMOTE_DIR below"
    remote_dir="REMOTE_HOME/$REMOTE_DIR"
fi
run scp "${SSH_OPTIONS[@]}" "$env_file" "$TARGET:$remote_dir/gateway.env"

# 4. Run them on the box: one bridge network, restarted with the box, replacing old ones.
if ! remote_check docker network inspect "$NETWORK"; then
    remote docker network create "${LABELS[@]}" "$NETWORK"
fi
remote docker rm -f "$GATEWAY_NAME" "$BROKER_NAME" 2>/dev/null || true  # none on a first deploy
if [[ $RUN_BROKER -eq 1 ]]; then
    broker_args=(docker run -d --name "$BROKER_NAME" "${LABELS[@]}" --restart unless-stopped
        --network "$NETWORK" -p "$MQTT_PORT:1883")
    if [[ -n $BROKER_CONFIG ]]; then
        run scp "${SSH_OPTIONS[@]}" "$BROKER_CONFIG" "$TARGET:$remote_dir/mosquitto.conf"
        # Mosquitto drops root for its own user, which must be able to write its database.
        remote docker volume create "${LABELS[@]}" "$DATA_VOLUME"
        remote docker run --rm -v "$DATA_VOLUME:/mosquitto/data" \
            --entrypoint chown "$BROKER_IMAGE" mosquitto: /mosquitto/data
        broker_args+=(-v "$remote_dir/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro"
            -v "$DATA_VOLUME:/mosquitto/data")
    fi
    remote "${broker_args[@]}" "$BROKER_IMAGE"
fi
remote docker run -d --name "$GATEWAY_NAME" "${LABELS[@]}" --restart unless-stopped \
    --network "$NETWORK" \
    --env-file "$remote_dir/gateway.env" \
    -e "EDGESIM_BROKER_HOST=$BROKER_HOST" -e "EDGESIM_BROKER_PORT=$BROKER_PORT" \
    "$GATEWAY_IMAGE"
remote docker ps --filter "name=$NAME_PREFIX-" --format '{{.Names}}\t{{.Status}}'
