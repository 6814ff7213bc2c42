#!/usr/bin/env bash
# deploy/demo/seed.sh — seed the demo districts of the source article (烟台市牟平区 370612,
# 通化市二道江区 220503, 武汉市江汉区 420103) into a running stack, and write the hotline
# token the simulator uses. Idempotent: a second run changes nothing (the units import is
# keyed by the file's hash, docs/grid.md; deposits and fee payments by their receipts;
# budgets, credentials and fee bills are read first and only what is missing is done;
# withdrawals carry fixed Idempotency-Keys). Every step logs and continues on failure.
#
# Per compound: a trust account with two deposits; this year's open budget drafted by the
# property company and co-signed (联签联审) by committee, party branch and property company;
# one withdrawal against its 管理人员工资 line approved by both holders (so the budget's
# execution is not zero); this month's 物业费 bills for the households of its buildings, most
# of them paid (收缴率). Demo tokens and the holders' secrets are kept in DATA_DIR/demo/.
#
#   deploy/demo/seed.sh BIN_DIR DATA_DIR [GATEWAY_URL]
#
# Prints nothing on stdout except the final line "hotline_token=<token>" (empty when none).
set +e -uo pipefail # every step logs and goes on, whatever the caller's shell options

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
    log "$1 $2 -> $code $(head -c 160 "$DATA_DIR/demo/last.json" 2>/dev/null | iconv -c -f UTF-8 -t UTF-8 2>/dev/null)"
}

# ---- 6-8. budgets (docs/budgets.md), spending and fees (docs/funds.md) -------------------
LAST="$DATA_DIR/demo/last.json" # each district's job has its own
YEAR="$(TZ=Asia/Shanghai date +%Y)"     # the district's local calendar (DESIGN §3)
MONTH="$(TZ=Asia/Shanghai date +%Y-%m)" # this month's 物业费 period
MON="$(TZ=Asia/Shanghai date +%-m)"

call() { # token method path [json [idempotency-key]] -> logs; body in $LAST, status in $HTTP
    local args=()
    [[ -n "${4:-}" ]] && args+=(-H 'Content-Type: application/json' --data "$4")
    [[ -n "${5:-}" ]] && args+=(-H "Idempotency-Key: $5")
    HTTP="$(curl -sS -o "$LAST" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1" \
        "${args[@]}" "$URL$3" 2>&1)"
    log "$2 $3 -> $HTTP $(head -c 160 "$LAST" 2>/dev/null | iconv -c -f UTF-8 -t UTF-8 2>/dev/null)"
}
get() { # token path -> the body on stdout when 200, else nothing
    curl -fsS -H "Authorization: Bearer $1" "$URL$2" 2>/dev/null
}
token_of() { cat "$DATA_DIR/demo/$1-$2.token" 2>/dev/null; } # role district
secret_of() { # role district -> a holder's withdrawal secret (支取密码), made once
    local f="$DATA_DIR/demo/$1-$2.secret"
    [[ -s "$f" ]] || (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$f")
    cat "$f"
}

# 6. the open budget of this year (开放式预算): drafted by the property company, then signed
#    by each party that has not signed yet; an active budget is left alone (a draft on an
#    active budget would start an amendment).
seed_budget() { # compound district
    local c="$1" d="$2" state role
    state="$(get "$admin" "/api/v1/budgets/$c/$YEAR" | jq -r '.state // empty')"
    [[ "$state" == active ]] && return 0
    if [[ -z "$state" || "$state" == draft ]]; then
        call "$(token_of property "$d")" PUT "/api/v1/budgets/$c/$YEAR" "{\"expected_income\":3600000,\"lines\":[
{\"line\":\"1-01\",\"amount\":1440000,\"standard\":\"项目经理1名，持证上岗，工作日8:00-18:00驻场\"},
{\"line\":\"2-01\",\"amount\":240000,\"standard\":\"每台电梯每月维保2次，困人30分钟内到场救援\"},
{\"line\":\"4-01\",\"amount\":180000,\"standard\":\"楼道每日清扫1次、每周湿拖2次\"},
{\"line\":\"6-01\",\"amount\":120000,\"standard\":\"楼道、路灯及监控用电按表计量，每月公示\"}]}"
        [[ "$HTTP" == 200 ]] || return 0
        call "$(token_of property "$d")" POST "/api/v1/budgets/$c/$YEAR/submit" '{}'
        [[ "$HTTP" == 200 ]] || return 0
    fi
    local signed
    signed="$(get "$admin" "/api/v1/budgets/$c/$YEAR" | jq -r '.signed[]?')"
    for role in property party_branch committee; do
        grep -qx "$role" <<<"$signed" && continue
        call "$(token_of "$role" "$d")" POST "/api/v1/budgets/$c/$YEAR/sign" '{}'
    done
}

# 7. spending (以收定支): both holders set their secrets once, then one withdrawal of the
#    管理人员工资 paid so far (months 1..this month − 1 − n%3), requested by the property
#    company under a fixed Idempotency-Key and approved by each holder who has not yet.
seed_spending() { # compound district n name
    local c="$1" d="$2" n="$3" acct cred role months amount id state w approved paid_for
    state="$(get "$admin" "/api/v1/funds/$c/withdrawals?limit=1000" | jq -r "[.withdrawals[]? |
        select(.line == \"1-01\" and .year == $YEAR and .state == \"posted\")] | length")"
    [[ "${state:-0}" == 0 ]] || return 0 # spent already
    acct="$(get "$admin" "/api/v1/funds/$c")"
    [[ -n "$acct" ]] || return 0
    for cred in holder_a:committee holder_b:supervisor; do
        role="${cred#*:}" cred="${cred%:*}"
        if [[ "$(jq -r ".credentials[] | select(.credential==\"$cred\") | .set" <<<"$acct")" != true ]]; then
            call "$(token_of "$role" "$d")" PUT "/api/v1/funds/$c/credentials/$cred" \
                "{\"secret\":\"$(secret_of "$role" "$d")\"}"
        elif [[ ! -s "$DATA_DIR/demo/$role-$d.secret" ]]; then
            log "$c: $cred is set but $DATA_DIR/demo/$role-$d.secret is gone: no withdrawal"
            return 0
        fi
    done
    [[ "$(get "$admin" "/api/v1/budgets/$c/$YEAR" | jq -r '.state // empty')" == active ]] || {
        log "$c: the $YEAR budget is not active: no withdrawal"
        return 0
    }
    months=$((MON - 1 - n % 3))
    ((months >= 1)) || months=1
    amount=$((120000 * months))
    paid_for="${YEAR}年1-${months}月"
    ((months > 1)) || paid_for="${YEAR}年1月"
    call "$(token_of property "$d")" POST "/api/v1/funds/$c/withdrawals" "{\"amount\":$amount,\"payee\":\"${4}物业服务中心\",\"payee_kind\":\"organisation\",\"purpose\":\"管理人员工资（$paid_for）\",\"line\":\"1-01\",\"year\":$YEAR}" "demo-withdrawal-$c-$YEAR-1"
    id="$(jq -r '.id // empty' "$LAST" 2>/dev/null)"
    [[ -n "$id" ]] || return 0
    w="$(get "$admin" "/api/v1/funds/$c/withdrawals/$id")"
    state="$(jq -r '.state // empty' <<<"$w")"
    approved="$(jq -r '.approvals[]?.holder' <<<"$w")"
    for cred in holder_a:committee holder_b:supervisor; do
        role="${cred#*:}" cred="${cred%:*}"
        [[ "$state" == pending ]] || break
        grep -qx "$cred" <<<"$approved" && continue
        call "$(token_of "$role" "$d")" POST "/api/v1/funds/$c/withdrawals/$id/approve" \
            "{\"secret\":\"$(secret_of "$role" "$d")\"}" "demo-approve-$id-$cred"
        state="$(jq -r '.state // empty' "$LAST" 2>/dev/null)"
    done
}

# 8. this month's 物业费 (2.50 yuan per m² and month) for 6 households in each building of the
#    compound, and the payments of all but 1-5 of them (收缴率 58%-92%) under fixed receipts.
seed_fees() { # compound district n
    local c="$1" d="$2" n="$3" sum billed=0 paid=0 b room i households="" payers=() unpaid
    sum="$(get "$admin" "/api/v1/funds/$c/fees/$MONTH" |
        jq -r '"\(.households_billed // 0) \(.households_paid // 0)"' 2>/dev/null)"
    read -r billed paid <<<"${sum:-0 0}"
    i=0
    for b in ${buildings[$c]:-}; do
        for room in 1-101 1-102 1-201 1-202 2-101 2-102; do
            i=$((i + 1))
            local m2=$((75 + (i * 37 + n * 11) % 60))
            households+="${households:+,}{\"building\":\"$b\",\"room\":\"$room\",\"floor_area_centi_m2\":$((m2 * 100))}"
            payers+=("$b $room $((250 * m2))")
        done
    done
    ((i > 0)) || return 0
    unpaid=$((1 + n % 5))
    ((billed >= i && paid >= i - unpaid)) && return 0
    if ((billed < i)); then # all or nothing: a household billed already makes it a 409
        call "$(token_of property "$d")" POST "/api/v1/funds/$c/fees/$MONTH/bills" \
            "{\"rate_fen_per_m2\":250,\"households\":[$households]}"
    fi
    local k p
    for ((k = 0; k < i - unpaid; k++)); do
        read -r b room p <<<"${payers[$k]}"
        call "$(token_of property "$d")" POST "/api/v1/funds/$c/fees/$MONTH/payments" \
            "{\"building\":\"$b\",\"room\":\"$room\",\"amount\":$p,\"receipt\":\"DEMO-FEE-$MONTH-${b: -6}-$room\",\"payer\":\"${room}室业主\"}"
    done
}

declare -A buildings=()
seed_district() { # district: its compounds one after the other (its own $LAST)
    local d="$1" c name n=0
    LAST="$DATA_DIR/demo/last-$d.json"
    if ! { holder committee "$d" "业委会主任(演示) $d" && holder supervisor "$d" "小区监察人(演示) $d" &&
        holder property "$d" "物业公司(演示) $d" && holder party_branch "$d" "党支部书记(演示) $d"; } >/dev/null; then
        log "demo tokens for $d FAILED: its budgets, withdrawals and fee bills skipped"
        return 0
    fi
    while IFS=, read -r c name _; do
        [[ ${#c} -eq 15 ]] || continue
        n=$((n + 1)) # numbered across the file, so the three districts differ
        [[ "${c:0:6}" == "$d" ]] || continue
        seed_budget "$c" "$d"
        seed_spending "$c" "$d" "$n" "$name"
        seed_fees "$c" "$d" "$n"
    done <"$HERE/units.csv"
}
seed_compounds() { # the three districts side by side: group commit batches their writes
    local c d
    while IFS=, read -r c _; do
        [[ ${#c} -ne 18 ]] || buildings[${c:0:15}]+="$c "
    done <"$HERE/units.csv"
    for d in 370612 220503 420103; do
        seed_district "$d" &
    done
    wait
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

    if command -v jq >/dev/null 2>&1; then
        seed_compounds
    else
        log "no jq: budgets, withdrawals and fee bills skipped (apt-get install jq)"
    fi
else
    log "no seed admin token: trust accounts, people, police grids, budgets and fees skipped"
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
