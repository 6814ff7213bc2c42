/* store: the funds service's LMDB tables and their keys (docs/funds.md,
 * "Storage"). Keys are big-endian composites, so byte order is sort order:
 * an account's journal is one contiguous range appended at its end, which
 * keeps a group commit's writes on few pages, and the `due` table is ordered
 * by time, so the tick reads only what is due.
 *
 *   accounts     account(15)                         -> AccountRecord (protobuf)
 *   creds        account(15) cred(1)                  -> CredentialRecord (protobuf)
 *   ledger       account(15)                         -> zfunds_ledger_t (funds.h, binary)
 *   journal      account(15) seq(8)                  -> entry record (funds.h, binary)
 *   receipts     account(15) receipt                 -> seq(8)
 *   months       account(15) month(4)                -> zfstore_month_t (binary)
 *   msums        account(15) month(4) kind(1) name   -> amount(8): 'r' category(1), 'w' line
 *   withdrawals  account(15) number(8)               -> Withdrawal (protobuf)
 *   wreqs        request_id                          -> withdrawal number(8) + account(15)
 *   due          ms(8) kind(1) payload               -> "" (the tick's agenda)
 *   budget_ops   withdrawal id                       -> op(1) attempts(4) account(15)
 *   tickets      BLAKE2b(ticket)(32)                 -> TicketRecord (protobuf)
 *   fee_bills    account(15) period(4) building(18) room -> FeeBillView (protobuf)
 *   fee_periods  account(15) period(4)               -> FeePeriodRecord (protobuf)
 *   assets       account(15) id(8)                   -> Asset (protobuf)
 *
 * Every function works inside the caller's transaction; storage errors are
 * sticky in it (common/store.h). */
#ifndef ZHILI_FUNDS_STORE_H
#define ZHILI_FUNDS_STORE_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/store.h"
#include "services/funds/funds.h"

/* NULL-terminated table names, for zsvc_spec_t.tables. */
extern const char *const zfstore_table_names[];

typedef struct {
    int accounts, creds, ledger, journal, receipts, months, msums, withdrawals, wreqs, due,
        budget_ops, tickets, fee_bills, fee_periods, assets;
} zfstore_t;

/* Look up every table's index in an open store. 0, or ZE_INTERNAL when one
 * is missing (the store was opened without zfstore_table_names). */
int zfstore_resolve(zfstore_t *t, const zstore_t *store);

/* Kinds of `due` rows. */
enum {
    ZFDUE_EXPIRE = 'E',  /* a pending withdrawal expires: payload account + number */
    ZFDUE_RESERVE = 'R', /* a line check that never came back: account + number */
    ZFDUE_BUDGET = 'B',  /* a budgets consume/release to (re)send: withdrawal id */
    ZFDUE_TICKET = 'T',  /* a query ticket to forget: its hash */
    ZFDUE_LOCK = 'L',    /* see whether a credential locked: account + cred */
};

/* Ops in budget_ops. */
enum { ZFOP_CONSUME = 'C', ZFOP_RELEASE = 'R' };

#define ZFKEY_BYTES_MAX ZSTORE_KEY_BYTES_MAX

/* ---- keys (each returns its length) -------------------------------------- */
size_t zfkey_account(uint8_t *out, const char *account);
size_t zfkey_account_u64(uint8_t *out, const char *account, uint64_t n);
size_t zfkey_account_str(uint8_t *out, const char *account, const char *s);
size_t zfkey_cred(uint8_t *out, const char *account, int cred);
size_t zfkey_month(uint8_t *out, const char *account, int month);
size_t zfkey_msum(uint8_t *out, const char *account, int month, char kind, const void *name,
                  size_t name_len);
size_t zfkey_period(uint8_t *out, const char *account, int period);
size_t zfkey_fee_bill(uint8_t *out, const char *account, int period, const char *building,
                      const char *room);
size_t zfkey_due(uint8_t *out, int64_t due_ms, char kind, const void *payload, size_t len);

/* ---- the ledger row ------------------------------------------------------ */

/* 0, ZE_NOT_FOUND, ZE_INTERNAL when the row is damaged, or the sticky error. */
int zfstore_ledger_get(ztxn_t *txn, const zfstore_t *t, const char *account, zfunds_ledger_t *l);
void zfstore_ledger_put(ztxn_t *txn, const zfstore_t *t, const char *account,
                        const zfunds_ledger_t *l);

/* ---- the journal --------------------------------------------------------- */

/* Append an encoded entry (already chained by zfunds_ledger_append), index its
 * receipt (when it has one), and add it to its month's statement rows: the
 * revenue of its category, or the spending of its budget line (e->line). */
void zfstore_journal_append(ztxn_t *txn, const zfstore_t *t, const char *account,
                            const zfunds_entry_t *e, const uint8_t *rec, size_t len);

/* 0 and the record, ZE_NOT_FOUND, or the sticky error. */
int zfstore_journal_get(ztxn_t *txn, const zfstore_t *t, const char *account, uint64_t seq,
                        zval_t *rec);

/* on_row(ctx, seq, record) for every entry from seq `from` on; stops when it
 * returns non-zero (and returns that). */
typedef int (*zfstore_entry_fn)(void *ctx, uint64_t seq, const uint8_t *rec, size_t len);
int zfstore_journal_scan(ztxn_t *txn, const zfstore_t *t, const char *account, uint64_t from,
                         void *ctx, zfstore_entry_fn on_row);

/* The seq filed under a receipt number, or 0. */
uint64_t zfstore_receipt_seq(ztxn_t *txn, const zfstore_t *t, const char *account,
                             const char *receipt);

/* ---- months (statements) ---------------------------------------------------- */

typedef struct {
    uint64_t first_seq, last_seq;
    int64_t opening, closing;
} zfstore_month_t;

/* 0, ZE_NOT_FOUND or the sticky error. */
int zfstore_month_get(ztxn_t *txn, const zfstore_t *t, const char *account, int month,
                      zfstore_month_t *m);

/* The latest month before `month` that has entries: 0 with *found_month,
 * ZE_NOT_FOUND when none. */
int zfstore_month_before(ztxn_t *txn, const zfstore_t *t, const char *account, int month,
                         int *found_month, zfstore_month_t *m);

/* The first month at or after `month` with entries: 0, ZE_NOT_FOUND. */
int zfstore_month_from(ztxn_t *txn, const zfstore_t *t, const char *account, int month,
                       zfstore_month_t *m);

/* on_sum(ctx, kind, name, name_len, amount) for each statement row of a month. */
typedef int (*zfstore_sum_fn)(void *ctx, char kind, const uint8_t *name, size_t name_len,
                              int64_t amount);
int zfstore_msums_scan(ztxn_t *txn, const zfstore_t *t, const char *account, int month, void *ctx,
                       zfstore_sum_fn on_sum);

/* ---- protobuf rows ----------------------------------------------------------- */

/* Unpack bytes into a message whose memory is the arena's (freed with the
 * batch, never by the caller). 0 or ZE_INTERNAL when they do not parse. */
int zfstore_unpack(zarena_t *arena, const ProtobufCMessageDescriptor *desc, const void *data,
                   size_t len, ProtobufCMessage **out);

/* Unpack the row under key into *out (arena memory, as zfstore_unpack).
 * 0, ZE_NOT_FOUND, ZE_INTERNAL when the row does not parse, or the sticky
 * error. */
int zfstore_msg_get(ztxn_t *txn, int table, const uint8_t *key, size_t key_len,
                    const ProtobufCMessageDescriptor *desc, zarena_t *arena,
                    ProtobufCMessage **out);

/* Pack msg into the row (ZE_INTERNAL is made sticky when it cannot be packed). */
void zfstore_msg_put(ztxn_t *txn, int table, const uint8_t *key, size_t key_len,
                     const ProtobufCMessage *msg);

/* ---- the tick's agenda ------------------------------------------------------ */

void zfstore_due_put(ztxn_t *txn, const zfstore_t *t, int64_t due_ms, char kind,
                     const void *payload, size_t len);
void zfstore_due_del(ztxn_t *txn, const zfstore_t *t, int64_t due_ms, char kind,
                     const void *payload, size_t len);

typedef struct {
    int64_t due_ms;
    char kind;
    uint8_t payload[ZFKEY_BYTES_MAX];
    size_t len;
} zfstore_due_t;

/* Copy up to max rows due at or before now into out (arena memory) and
 * delete them; returns how many (or a negative sticky error). */
int zfstore_due_take(ztxn_t *txn, const zfstore_t *t, int64_t now_ms, zarena_t *arena,
                     zfstore_due_t **out, int max);

#endif
