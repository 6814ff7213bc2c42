/* limits: every bound of the funds service, in one place (STYLE "Limits").
 * docs/funds.md lists them for users. */
#ifndef ZHILI_FUNDS_LIMITS_H
#define ZHILI_FUNDS_LIMITS_H

#include <stdint.h>

#include "common/area.h"
#include "common/store.h"

/* Money, in fen (分). One deposit or withdrawal is at most 一百万元; a balance
 * stays far from int64 overflow (ten thousand times the largest movement
 * times a billion entries would still fit, but we stop long before). */
#define ZFUNDS_AMOUNT_MAX 100000000LL         /* 1 000 000.00 元 */
#define ZFUNDS_BALANCE_MAX 1000000000000000LL /* 10 000 000 000 000.00 元 */
#define ZFUNDS_RENT_MAX ZFUNDS_AMOUNT_MAX
#define ZFUNDS_FEE_RATE_MAX 100000LL /* 1000 元 per m² and period */
#define ZFUNDS_AREA_CENTI_M2_MAX 1000000000LL /* 10 000 000 m², in 0.01 m² */

/* Text fields, bytes of UTF-8 without control characters. */
#define ZFUNDS_NAME_BYTES_MAX 120
#define ZFUNDS_HOLDER_ID_BYTES_MAX 64
#define ZFUNDS_PARTY_BYTES_MAX 120 /* payer, payee, operator */
#define ZFUNDS_RECEIPT_BYTES_MAX 64
#define ZFUNDS_PURPOSE_BYTES_MAX 300
#define ZFUNDS_MEMO_BYTES_MAX 300
#define ZFUNDS_LINE_BYTES_MAX 64
#define ZFUNDS_LOCATION_BYTES_MAX 200
#define ZFUNDS_ROOM_BYTES_MAX 32
#define ZFUNDS_ACTOR_BYTES_MAX 64

/* Secrets: a 6-digit PIN at the least (what 双密码 usually are), 128 bytes at
 * the most. Only Argon2id strings are ever stored. */
#define ZFUNDS_SECRET_BYTES_MIN 6
#define ZFUNDS_SECRET_BYTES_MAX 128
#define ZFUNDS_HASH_BYTES_MAX 128                 /* crypto_pwhash_STRBYTES */
#define ZFUNDS_FAILURES_MAX 5                     /* wrong secrets before a credential locks */
#define ZFUNDS_RESET_HALF_MS (24LL * 3600 * 1000) /* a reset half waits this long */
#define ZFUNDS_LOCK_SETTLE_MS 30000               /* a lock is announced when checks settled */
#define ZFUNDS_TICKET_BYTES 32                    /* random bytes of a query ticket */
#define ZFUNDS_TICKET_TEXT_BYTES 43               /* base64url without padding */

/* Account codes are compounds: exactly 15 digits. */
#define ZFUNDS_ACCOUNT_BYTES 15
#define ZFUNDS_WITHDRAWAL_ID_BYTES_MAX 40 /* "<account>-w<n>" */
#define ZFUNDS_HASH_BYTES 32              /* BLAKE2b-256 of the journal chain */

/* Lists and scans. */
#define ZFUNDS_PAGE_DEFAULT 100
#define ZFUNDS_PAGE_MAX 1000
#define ZFUNDS_SCAN_ROWS_MAX 200000     /* rows one query looks at before it pages */
#define ZFUNDS_BILL_HOUSEHOLDS_MAX 1000 /* households in one fee_bill */
#define ZFUNDS_STATEMENT_LINES_MAX 1000 /* budget lines in one month's statement */
#define ZFUNDS_CATEGORIES 7             /* Category enum values, 0 unused */

/* Time-driven work, per tick. */
#define ZFUNDS_DUE_PER_TICK 256
#define ZFUNDS_BUDGET_OPS_PER_TICK 64
#define ZFUNDS_RENT_MONTHS_PER_TICK 24 /* catch-up months per lease and tick */
#define ZFUNDS_HINTS_MAX 1024          /* refused line checks waiting for the tick */
#define ZFUNDS_BUDGET_RETRY_MS_MIN 2000
#define ZFUNDS_BUDGET_RETRY_MS_MAX (10LL * 60 * 1000)

/* Defaults of the settings (docs/funds.md, "Settings"). */
#define ZFUNDS_BUDGET_TIMEOUT_MS_DEFAULT 2000
#define ZFUNDS_BUDGET_TIMEOUT_MS_MAX 30000
#define ZFUNDS_RESERVE_GRACE_MS 5000   /* after the call's timeout, the tick cleans up */
#define ZFUNDS_BUDGETS_BREAKER_MS 5000 /* after budgets did not answer, refuse at once */
#define ZFUNDS_WITHDRAWAL_TTL_MS_DEFAULT (7LL * 24 * 3600 * 1000)
#define ZFUNDS_WITHDRAWAL_TTL_MS_MIN 1000
#define ZFUNDS_WITHDRAWAL_TTL_MS_MAX (90LL * 24 * 3600 * 1000)
#define ZFUNDS_TICKET_MS_DEFAULT (5LL * 60 * 1000)
#define ZFUNDS_TICKET_MS_MIN 1000
#define ZFUNDS_TICKET_MS_MAX (3600LL * 1000)
#define ZFUNDS_BUDGET_TIMEOUT_MS_MIN 100

/* Fee periods are months (202611) or years (2026). */
#define ZFUNDS_YEAR_MIN 2000
#define ZFUNDS_YEAR_MAX 2999

_Static_assert(ZFUNDS_ACCOUNT_BYTES <= ZAREA_BYTES_MAX, "an account is an area code");
_Static_assert(ZFUNDS_BALANCE_MAX / ZFUNDS_AMOUNT_MAX >= 1000000, "room for a million movements");
_Static_assert(ZFUNDS_ACCOUNT_BYTES + 8 + ZFUNDS_RECEIPT_BYTES_MAX < ZSTORE_KEY_BYTES_MAX,
               "receipt keys fit LMDB's key limit");
_Static_assert(ZFUNDS_ACCOUNT_BYTES + 4 + 1 + ZFUNDS_LINE_BYTES_MAX < ZSTORE_KEY_BYTES_MAX,
               "statement keys fit LMDB's key limit");
_Static_assert(ZFUNDS_ACCOUNT_BYTES + 4 + ZAREA_BYTES_MAX + ZFUNDS_ROOM_BYTES_MAX + 1 <
                   ZSTORE_KEY_BYTES_MAX,
               "fee bill keys fit LMDB's key limit");
_Static_assert(ZFUNDS_PAGE_MAX <= ZFUNDS_SCAN_ROWS_MAX, "a page is within one scan");
_Static_assert(ZFUNDS_SECRET_BYTES_MIN < ZFUNDS_SECRET_BYTES_MAX, "secret bounds");
_Static_assert(ZFUNDS_BUDGET_TIMEOUT_MS_DEFAULT <= ZFUNDS_BUDGET_TIMEOUT_MS_MAX, "timeout bounds");

#endif
