#!/usr/bin/env bash
# deploy/demo/seed.sh — seed the demo districts of the source article (烟台市牟平区 370612,
# 通化市二道江区 220503, 武汉市江汉区 420103) into a running stack, and write the hotline
# token the simulator uses. Idempotent: a second run changes nothing (the units import is
# keyed by the file's hash, docs/grid.md). Every step logs and continues on failure.
#
#   deploy/demo/seed.sh BIN_DIR DATA_DIR [GATEWAY_URL]
#
# Prints nothing on stdout except the final line "hotline_token=<token>" (empty when none).
set -uo pipefail

BIN_DIR="${1:?usage: seed.sh BIN_DIR DATA_DIR [URL]}"
DATA_DIR="${2:?usage: seed.sh BIN_DIR DATA_DIR [URL]}"
URL="${3:-http://127.0.0.1:8080}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CTL="$BIN_DIR/zhilictl"

log() { echo "seed: $(date -u +%H:%M:%S) $*" >&2; }

# 1. wait for the gateway (the services retry their broker connection themselves)
for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && break
    sleep 0.1
done

# 2. the organisation chain: districts, streets, communities, grids, buildings
ok=0
for ((i = 0; i < 10; i++)); do
    if "$CTL" import units "$HERE/units.csv" >&2; then
        ok=1
        break
    fi
    log "units import failed (attempt $((i + 1))), retrying"
    sleep 1
done
if ((ok)); then
    log "units imported (deploy/demo/units.csv; a repeated import prints the first run's summary)"
else
    log "units import FAILED"
fi

# 3. a hotline token (role hotline), kept in DATA_DIR/hotline.token and remade when dead
token_for() { # file role area name
    local file="$1" token=""
    if [[ -s "$file" ]]; then
        token="$(cat "$file")"
        curl -fsS -o /dev/null -H "Authorization: Bearer $token" "$URL/api/v1/whoami" 2>/dev/null ||
            token=""
    fi
    if [[ -z "$token" ]]; then
        local area=()
        [[ -n "$3" ]] && area=(--area "$3")
        token="$("$CTL" token create --role "$2" "${area[@]}" --name "$4" 2>/dev/null |
            sed -n 's/^token=//p')"
        [[ -n "$token" ]] && (umask 077 && printf '%s\n' "$token" >"$file")
    fi
    printf '%s' "$token"
}
# 4. trust accounts (共有资金, docs/funds.md): one per compound, its two withdrawal holders
#    (业委会, 小区监察人) as demo tokens of the district kept in DATA_DIR/demo/, and two
#    deposits with fixed receipts (a repeated receipt is a 409: nothing changes twice).
admin="$(token_for "$DATA_DIR/seed-admin.token" admin "" "demo seed")"
holder() { # role district name -> prints the id (token and id kept in DATA_DIR/demo/)
    local f="$DATA_DIR/demo/$1-$2"
    if [[ ! -s "$f.id" ]]; then
        local out
        out="$("$CTL" token create --role "$1" --area "$2" --name "$3" 2>/dev/null)" || return 1
        (umask 077 && sed -n 's/^token=//p' <<<"$out" >"$f.token" && sed -n 's/^id=//p' <<<"$out" >"$f.id")
    fi
    cat "$f.id"
}
api() { # method path json -> logs the status
    local code
    code="$(curl -sS -o "$DATA_DIR/demo/last.json" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
        --data "$3" "$URL$2" 2>&1)"
    log "$1 $2 -> $code $(head -c 160 "$DATA_DIR/demo/last.json" 2>/dev/null)"
}
if [[ -n "$admin" ]]; then
    mkdir -p "$DATA_DIR/demo" && chmod 700 "$DATA_DIR/demo"
    n=0
    while IFS=, read -r code name _; do
        [[ ${#code} -eq 15 ]] || continue
        d="${code:0:6}"
        a="$(holder committee "$d" "业委会主任(演示) $d")" || continue
        b="$(holder supervisor "$d" "小区监察人(演示) $d")" || continue
        api POST "/api/v1/funds/$code" "{\"name\":\"${name}共有资金账户\",\"holder_a\":{\"id\":\"$a\",\"name\":\"业委会主任\"},\"holder_b\":{\"id\":\"$b\",\"name\":\"小区监察人\"}}"
        n=$((n + 1))
        api POST "/api/v1/funds/$code/deposits" "{\"category\":\"property_fee\",\"amount\":$((1200000 + n * 35000)),\"payer\":\"全体业主\",\"payer_kind\":\"organisation\",\"receipt\":\"DEMO-$code-1\",\"memo\":\"演示数据：物业费\"}"
        api POST "/api/v1/funds/$code/deposits" "{\"category\":\"parking_fee\",\"amount\":$((300000 + n * 12000)),\"payer\":\"停车场管理处\",\"payer_kind\":\"organisation\",\"receipt\":\"DEMO-$code-2\",\"memo\":\"演示数据：停车费\"}"
    done <"$HERE/units.csv"

    # 5. people and police grids (警格, docs/grid.md §2–3): per community a 社区民警 and a
    #    police grid over its two grids; per grid a 网格员. PUT: a repeat changes nothing.
    declare -A street_name=()
    surnames=(王 李 张 刘 陈 杨 赵 黄 周 吴 徐 孙)
    i=0
    while IFS=, read -r code name _; do
        i=$((i + 1))
        s="${surnames[$((i % ${#surnames[@]}))]}"
        case ${#code} in
        9) street_name[$code]="$name" ;;
        12)
            station="${street_name[${code:0:9}]:-}派出所"
            api PUT "/api/v1/grid/people/cp$code" "{\"name\":\"${s}警官\",\"kind\":\"community_police\",\"area\":\"$code\",\"phone\":\"0535-66${code: -4}\",\"station\":\"$station\"}"
            api PUT "/api/v1/grid/police-grids/jg$code" "{\"name\":\"${name}警格\",\"area\":\"$code\",\"station\":\"$station\",\"officer\":\"cp$code\",\"grids\":[\"${code}001\",\"${code}002\"]}"
            ;;
        15)
            api PUT "/api/v1/grid/people/gm$code" "{\"name\":\"${s}网格员\",\"kind\":\"grid_member\",\"area\":\"$code\",\"phone\":\"138${code: -8}\"}"
            ;;
        esac
    done <"$HERE/units.csv"
else
    log "no seed admin token: trust accounts, people and police grids skipped"
fi

for d in 370612 220503 420103; do
    t="$(token_for "$DATA_DIR/hotline-$d.token" hotline "$d" "12345 热线模拟 $d")"
    if [[ -n "$t" ]]; then
        log "hotline token for $d ready ($DATA_DIR/hotline-$d.token)"
    else
        log "hotline token for $d FAILED"
    fi
done
log "done"
