/* Unit tests for common/store: the LMDB wrapper with a sticky-error transaction.
 * Each test runs on a fresh directory under /tmp, removed afterwards. Tests
 * that must observe a crash (assertions) or a process-wide limit
 * (RLIMIT_FSIZE) run their body in a forked child that opens its own store. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/store.h"

enum {
    MIB = 1 << 20,
    ROOT_BYTES_MAX = 64,     /* "/tmp/zhili-test-store-XXXXXX" */
    PATH_BYTES_MAX = 128,    /* the root plus a short suffix */
    TXN_BATCHES_MAX = 10000, /* bound on every write-until-it-fails loop */
};

static const char *const test_tables[] = {"items", "effects", NULL};

typedef struct {
    char root[ROOT_BYTES_MAX]; /* the mkdtemp directory */
    char dir[PATH_BYTES_MAX];  /* the store's directory, two levels below root */
    zstore_t *store;
    int items; /* table indexes */
    int effects;
} fixture_t;

/* ------------------------------------------------------------- helpers */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int store_open_sized(const char *dir, size_t initial, uint64_t max, zstore_t **out)
{
    zstore_options_t opts = {
        .dir = dir, .tables = test_tables, .map_bytes_initial = initial, .map_bytes_max = max};
    char errbuf[256];
    int rc = zstore_open(&opts, out, errbuf, sizeof errbuf);
    if (rc != 0) {
        fprintf(stderr, "zstore_open: %s\n", errbuf);
    }
    return rc;
}

static void fixture_reopen(fixture_t *f, size_t initial, uint64_t max)
{
    zstore_destroy(&f->store);
    assert_int_equal(store_open_sized(f->dir, initial, max, &f->store), 0);
    f->items = zstore_table(f->store, "items");
    f->effects = zstore_table(f->store, "effects");
}

/* Move the fixture's store to a fresh directory below root (a new environment). */
static void fixture_fresh(fixture_t *f, const char *name, size_t initial, uint64_t max)
{
    zstore_destroy(&f->store);
    snprintf(f->dir, sizeof f->dir, "%s/%s", f->root, name);
    fixture_reopen(f, initial, max);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->root, sizeof f->root, "/tmp/zhili-test-store-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->dir, sizeof f->dir, "%s/data/svc", f->root);
    fixture_reopen(f, 0, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    zstore_destroy(&f->store);
    rm_rf(f->root);
    free(f);
    return 0;
}

static void put_str(ztxn_t *txn, int table, const char *key, const char *val)
{
    ztxn_put(txn, table, key, strlen(key), val, strlen(val));
}

/* Assert that key holds val (or is missing when val is NULL). */
static void expect_str(ztxn_t *txn, int table, const char *key, const char *val)
{
    zval_t v = {0};
    int rc = ztxn_get(txn, table, key, strlen(key), &v);
    if (val == NULL) {
        assert_int_equal(rc, ZE_NOT_FOUND);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(v.len, strlen(val));
    assert_memory_equal(v.data, val, v.len);
}

static void outbox_put_str(ztxn_t *txn, uint64_t seq)
{
    char ev[32];
    int n = snprintf(ev, sizeof ev, "event-%llu", (unsigned long long)seq);
    ztxn_outbox_put(txn, seq, ev, (size_t)n);
}

/* Run body(dir) in a child and assert it died of SIGABRT (a ZASSERT). The
 * fixture's store is closed first: an LMDB environment must not cross fork. */
static void expect_abort(fixture_t *f, void (*body)(const char *dir), const char *dir)
{
    zstore_destroy(&f->store);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDERR_FILENO);
        }
        body(dir);
        _exit(0); /* reached only when no assertion fired */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* ----------------------------------------------------------- outbox */

static void test_outbox_gapless_across_reopen(void **state)
{
    /* Goal: outbox seqs written over several transactions stay gapless across
     * close and reopen, and the next seq continues from the last one. */
    fixture_t *f = *state;
    enum { BATCHES = 10, PER_BATCH = 10, N = BATCHES * PER_BATCH };
    for (int b = 0; b < BATCHES; b++) {
        ztxn_t *txn = ztxn_begin(f->store, true);
        for (int i = 0; i < PER_BATCH; i++) {
            uint64_t seq = ztxn_outbox_last(txn) + 1;
            assert_int_equal(seq, (uint64_t)(b * PER_BATCH + i + 1));
            outbox_put_str(txn, seq);
        }
        assert_int_equal(ztxn_commit(&txn), 0);
        assert_null(txn);
    }
    fixture_reopen(f, 0, 0);
    ztxn_t *txn = ztxn_begin(f->store, true);
    assert_int_equal(ztxn_outbox_last(txn), N);
    for (uint64_t seq = 1; seq <= N; seq++) {
        zval_t ev;
        char want[32];
        int n = snprintf(want, sizeof want, "event-%llu", (unsigned long long)seq);
        assert_int_equal(ztxn_outbox_get(txn, seq, &ev), 0);
        assert_int_equal(ev.len, (size_t)n);
        assert_memory_equal(ev.data, want, ev.len);
    }
    zval_t ev;
    assert_int_equal(ztxn_outbox_get(txn, N + 1, &ev), ZE_NOT_FOUND);
    outbox_put_str(txn, N + 1);
    assert_int_equal(ztxn_commit(&txn), 0);

    txn = ztxn_begin(f->store, false);
    assert_int_equal(ztxn_outbox_last(txn), N + 1);
    assert_int_equal(ztxn_outbox_get(txn, N + 1, &ev), 0);
    ztxn_abort(&txn);
    assert_null(txn);
}

static void test_outbox_last_in_child(void **state)
{
    /* Goal: ztxn_outbox_last sees a child's own puts, and an aborted child
     * leaves the parent's last seq where it was. */
    fixture_t *f = *state;
    ztxn_t *txn = ztxn_begin(f->store, true);
    assert_int_equal(ztxn_outbox_last(txn), 0);
    outbox_put_str(txn, 1);
    ztxn_t *child = ztxn_begin_child(txn);
    assert_int_equal(ztxn_outbox_last(child), 1);
    outbox_put_str(child, 2);
    outbox_put_str(child, 3);
    assert_int_equal(ztxn_outbox_last(child), 3);
    ztxn_abort(&child);
    assert_null(child);
    assert_int_equal(ztxn_outbox_last(txn), 1);
    child = ztxn_begin_child(txn);
    outbox_put_str(child, 2);
    assert_int_equal(ztxn_commit(&child), 0);
    assert_int_equal(ztxn_outbox_last(txn), 2);
    /* A write to the outbox other than a put is seen too (the last seq is
     * kept per transaction once read). */
    outbox_put_str(txn, 3);
    uint8_t key[8];
    zstore_be64_put(key, 3);
    ztxn_del(txn, ZSTORE_OUTBOX, key, sizeof key);
    assert_int_equal(ztxn_outbox_last(txn), 2);
    assert_int_equal(ztxn_commit(&txn), 0);
    /* Reads before and after another commit each see their own snapshot. */
    ztxn_t *read = ztxn_begin(f->store, false);
    assert_int_equal(ztxn_outbox_last(read), 2);
    ztxn_abort(&read);
    txn = ztxn_begin(f->store, true);
    outbox_put_str(txn, 3);
    assert_int_equal(ztxn_commit(&txn), 0);
    read = ztxn_begin(f->store, false);
    assert_int_equal(ztxn_outbox_last(read), 3);
    ztxn_abort(&read);
}

/* What an aborting child holds, kept reachable so leak checkers stay quiet. */
static zstore_t *doomed_store;
static ztxn_t *doomed_txn;
static ztxn_t *doomed_child;

static void wrong_seq_body(const char *dir)
{
    if (store_open_sized(dir, 0, 0, &doomed_store) != 0) {
        _exit(10);
    }
    ztxn_t *txn = doomed_txn = ztxn_begin(doomed_store, true);
    ztxn_outbox_put(txn, 1, "a", 1);
    ztxn_outbox_put(txn, 3, "c", 1); /* a gap: must assert */
}

static void repeat_seq_body(const char *dir)
{
    if (store_open_sized(dir, 0, 0, &doomed_store) != 0) {
        _exit(10);
    }
    ztxn_t *txn = doomed_txn = ztxn_begin(doomed_store, true);
    ztxn_outbox_put(txn, 1, "a", 1);
    ztxn_outbox_put(txn, 1, "a", 1); /* a repeat: must assert */
}

static void test_outbox_wrong_seq_asserts(void **state)
{
    /* Goal: putting a seq other than last+1 (a gap or a repeat) is a
     * programmer error that stops the process. */
    fixture_t *f = *state;
    char dir[PATH_BYTES_MAX];
    snprintf(dir, sizeof dir, "%s/gap", f->root);
    expect_abort(f, wrong_seq_body, dir);
    snprintf(dir, sizeof dir, "%s/repeat", f->root);
    expect_abort(f, repeat_seq_body, dir);
}

/* --------------------------------------------------------- requests */

static void test_request_round_trip(void **state)
{
    /* Goal: a stored request_id returns the first reply bytes and ts on every
     * later lookup; a request put in an aborted child leaves nothing. */
    fixture_t *f = *state;
    const char reply[] = {'o', 'k', 0, 1, 2};
    ztxn_t *txn = ztxn_begin(f->store, true);
    zval_t got;
    int64_t ts = 0;
    assert_int_equal(ztxn_request_get(txn, "req-1", &got, &ts), ZE_NOT_FOUND);
    assert_int_equal(ztxn_err(txn), 0);
    ztxn_request_put(txn, "req-1", reply, sizeof reply, 1764129600123);
    ztxn_request_put(txn, "req-empty", NULL, 0, -5);
    assert_int_equal(ztxn_commit(&txn), 0);

    for (int round = 0; round < 2; round++) {
        txn = ztxn_begin(f->store, round == 0);
        assert_int_equal(ztxn_request_get(txn, "req-1", &got, &ts), 0);
        assert_int_equal(ts, 1764129600123);
        assert_int_equal(got.len, sizeof reply);
        assert_memory_equal(got.data, reply, sizeof reply);
        assert_int_equal(ztxn_request_get(txn, "req-empty", &got, &ts), 0);
        assert_int_equal(ts, -5);
        assert_int_equal(got.len, 0);
        ztxn_abort(&txn);
    }

    txn = ztxn_begin(f->store, true);
    ztxn_t *child = ztxn_begin_child(txn);
    ztxn_request_put(child, "req-2", "x", 1, 7);
    assert_int_equal(ztxn_request_get(child, "req-2", &got, &ts), 0);
    ztxn_abort(&child);
    assert_int_equal(ztxn_request_get(txn, "req-2", &got, &ts), ZE_NOT_FOUND);
    assert_int_equal(ztxn_commit(&txn), 0);
    txn = ztxn_begin(f->store, false);
    assert_int_equal(ztxn_request_get(txn, "req-2", &got, &ts), ZE_NOT_FOUND);
    ztxn_abort(&txn);
}

/* ---------------------------------------------------------- cursors */

/* Apply "an event" from source: move its cursor and write its effect row. */
static void apply_event(fixture_t *f, ztxn_t *txn, uint64_t seq)
{
    ztxn_cursor_set(txn, "funds", seq);
    char val[32];
    snprintf(val, sizeof val, "effect-%llu", (unsigned long long)seq);
    put_str(txn, f->effects, "row", val);
}

static void expect_applied(fixture_t *f, ztxn_t *txn, uint64_t seq)
{
    assert_int_equal(ztxn_cursor_get(txn, "funds"), seq);
    if (seq == 0) {
        expect_str(txn, f->effects, "row", NULL);
        return;
    }
    char val[32];
    snprintf(val, sizeof val, "effect-%llu", (unsigned long long)seq);
    expect_str(txn, f->effects, "row", val);
}

static void test_cursor_moves_with_effect(void **state)
{
    /* Goal: a cursor and the effect of the event it points past move together:
     * an aborted child or top-level transaction changes neither, a commit
     * changes both. */
    fixture_t *f = *state;
    ztxn_t *txn = ztxn_begin(f->store, true);
    expect_applied(f, txn, 0);
    ztxn_t *child = ztxn_begin_child(txn);
    apply_event(f, child, 1);
    expect_applied(f, child, 1);
    ztxn_abort(&child);
    expect_applied(f, txn, 0);
    child = ztxn_begin_child(txn);
    apply_event(f, child, 1);
    assert_int_equal(ztxn_commit(&child), 0);
    expect_applied(f, txn, 1);
    assert_int_equal(ztxn_commit(&txn), 0);

    txn = ztxn_begin(f->store, true);
    apply_event(f, txn, 2);
    ztxn_abort(&txn);
    txn = ztxn_begin(f->store, false);
    expect_applied(f, txn, 1);
    ztxn_abort(&txn);

    fixture_reopen(f, 0, 0);
    txn = ztxn_begin(f->store, false);
    expect_applied(f, txn, 1);
    assert_int_equal(ztxn_cursor_get(txn, "unknown-source"), 0);
    assert_int_equal(ztxn_err(txn), 0);
    ztxn_abort(&txn);
}

/* -------------------------------------------------------- map growth */

enum { ROWS_PER_BATCH = 16, ROW_BYTES = 1000 };

/* One batch of rows; returns the commit result. */
static int write_batch(fixture_t *f, int batch)
{
    char val[ROW_BYTES];
    memset(val, 'a' + batch % 26, sizeof val);
    ztxn_t *txn = ztxn_begin(f->store, true);
    for (int i = 0; i < ROWS_PER_BATCH; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "row/%06d/%02d", batch, i);
        ztxn_put(txn, f->items, key, (size_t)n, val, sizeof val);
    }
    if (ztxn_err(txn) != 0) {
        int err = ztxn_err(txn);
        ztxn_abort(&txn);
        return err;
    }
    return ztxn_commit(&txn);
}

static int count_row(void *ctx, zval_t key, zval_t val)
{
    (void)key;
    int *count = ctx;
    assert_int_equal(val.len, ROW_BYTES);
    (*count)++;
    return 0;
}

static int count_rows(fixture_t *f)
{
    int count = 0;
    ztxn_t *txn = ztxn_begin(f->store, false);
    assert_int_equal(ztxn_scan(txn, f->items, "row/", 4, NULL, 0, &count, count_row), 0);
    ztxn_abort(&txn);
    return count;
}

/* ----------------------------------------------------- read snapshots */

static void *read_in_thread(void *arg)
{
    fixture_t *f = arg;
    ztxn_t *txn = ztxn_begin(f->store, false);
    expect_str(txn, f->items, "k", "v3");
    ztxn_abort(&txn);
    return NULL;
}

static void write_str(fixture_t *f, const char *key, const char *val)
{
    ztxn_t *txn = ztxn_begin(f->store, true);
    put_str(txn, f->items, key, val);
    assert_int_equal(ztxn_commit(&txn), 0);
}

static void test_read_handles_renewed(void **state)
{
    /* Goal: a finished read transaction is kept and renewed for the next read;
     * every renewed read sees the latest commit, keeps its snapshot while a
     * write commits, and a read on another thread gets a handle of its own. */
    fixture_t *f = *state;
    write_str(f, "k", "v1");
    ztxn_t *txn = ztxn_begin(f->store, false);
    expect_str(txn, f->items, "k", "v1");
    ztxn_abort(&txn);
    write_str(f, "k", "v2");
    txn = ztxn_begin(f->store, false);
    expect_str(txn, f->items, "k", "v2"); /* not the snapshot of the kept handle */
    write_str(f, "k", "v3");
    expect_str(txn, f->items, "k", "v2"); /* its own snapshot while it is open */
    assert_int_equal(ztxn_commit(&txn), 0); /* a read's commit also keeps it */
    txn = ztxn_begin(f->store, false);
    expect_str(txn, f->items, "k", "v3");
    ztxn_abort(&txn);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, read_in_thread, f), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    txn = ztxn_begin(f->store, false);
    expect_str(txn, f->items, "k", "v3");
    ztxn_abort(&txn);
    /* A remap drops the kept handle; reads after it work. */
    assert_int_equal(zstore_grow(f->store), 0);
    txn = ztxn_begin(f->store, false);
    expect_str(txn, f->items, "k", "v3");
    ztxn_abort(&txn);
}

static void test_map_full_grows_and_retries(void **state)
{
    /* Goal: a write that fills the map fails with ZE_MAP_FULL, succeeds after
     * zstore_grow, and the grown map and all rows survive a reopen. */
    fixture_t *f = *state;
    fixture_fresh(f, "small", MIB, 64ull * MIB);
    assert_int_equal(zstore_map_bytes(f->store), MIB);
    int batch = 0;
    int rc = 0;
    for (; batch < TXN_BATCHES_MAX; batch++) {
        rc = write_batch(f, batch);
        if (rc != 0) {
            break;
        }
    }
    assert_int_equal(rc, ZE_MAP_FULL);
    assert_true(batch > 0);
    assert_int_equal(count_rows(f), batch * ROWS_PER_BATCH);
    assert_int_equal(zstore_grow(f->store), 0);
    assert_int_equal(zstore_map_bytes(f->store), 2 * MIB);
    assert_int_equal(write_batch(f, batch), 0);
    int rows = (batch + 1) * ROWS_PER_BATCH;
    assert_int_equal(count_rows(f), rows);

    fixture_reopen(f, MIB, 64ull * MIB);
    assert_true(zstore_map_bytes(f->store) >= 2 * MIB);
    assert_int_equal(count_rows(f), rows);
    assert_int_equal(write_batch(f, batch + 1), 0); /* the reopened map has room */
    assert_int_equal(count_rows(f), rows + ROWS_PER_BATCH);
}

static void test_grow_stops_at_max(void **state)
{
    /* Goal: zstore_grow caps at map_bytes_max and then answers ZE_UNAVAILABLE. */
    fixture_t *f = *state;
    fixture_fresh(f, "small", MIB, 3 * MIB);
    assert_int_equal(zstore_map_bytes(f->store), MIB);
    assert_int_equal(zstore_grow(f->store), 0);
    assert_int_equal(zstore_map_bytes(f->store), 2 * MIB);
    assert_int_equal(zstore_grow(f->store), 0);
    assert_int_equal(zstore_map_bytes(f->store), 3 * MIB);
    assert_int_equal(zstore_grow(f->store), ZE_UNAVAILABLE);
    assert_int_equal(zstore_map_bytes(f->store), 3 * MIB);
}

static void test_file_runs_ahead_of_use(void **state)
{
    /* Goal: after every commit the data file holds written zeros past LMDB's
     * last page (half the smallest step, 128 KiB, before the commit, less what
     * the batch used), so commits
     * overwrite instead of lengthening the file; the file is extended in few
     * steps, never past the map; and the rows survive a reopen of the longer
     * file. Without store_prealloc the file ends at the last page. */
    fixture_t *f = *state;
    fixture_fresh(f, "ahead", 4 * MIB, 64ull * MIB);
    uint64_t last_size = zstore_file_bytes(f->store);
    int extensions = 0;
    int batches = 0;
    for (; zstore_used_bytes(f->store) < 2 * MIB && batches < TXN_BATCHES_MAX; batches++) {
        assert_int_equal(write_batch(f, batches), 0);
        uint64_t used = zstore_used_bytes(f->store), size = zstore_file_bytes(f->store);
        assert_true(used > 0);
        /* Half the smallest step ahead before the commit, less this batch. */
        assert_true(size >= used + 32 * 1024);
        assert_true(size <= zstore_map_bytes(f->store));
        if (size != last_size) {
            extensions++;
            last_size = size;
        }
    }
    assert_true(batches > 50);
    fprintf(stderr, "%d batches, %d extensions of the file\n", batches, extensions);
    assert_true(extensions >= 2 && extensions <= batches / 3);
    /* The zeros past the last page are zeros. */
    char path[2 * PATH_BYTES_MAX];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    static uint8_t tail[64 * 1024];
    uint64_t used = zstore_used_bytes(f->store);
    assert_int_equal(pread(fd, tail, sizeof tail, (off_t)used), (ssize_t)sizeof tail);
    close(fd);
    for (size_t i = 0; i < sizeof tail; i++) {
        assert_int_equal(tail[i], 0);
    }
    fixture_reopen(f, 4 * MIB, 64ull * MIB);
    assert_int_equal(count_rows(f), batches * ROWS_PER_BATCH);
    assert_int_equal(zstore_used_bytes(f->store), used);
    assert_int_equal(write_batch(f, batches), 0);
    assert_int_equal(count_rows(f), (batches + 1) * ROWS_PER_BATCH);
}

static void test_file_ahead_one_chunk_per_commit(void **state)
{
    /* Goal: when the file is far behind (here 8 MiB written in one
     * transaction, a step of 2 MiB) each commit extends it by at most 1 MiB,
     * so no batch waits for megabytes of zeros, until half a step is ahead
     * again. */
    fixture_t *f = *state;
    fixture_fresh(f, "chunks", 64 * MIB, 64ull * MIB);
    static char val[8192];
    memset(val, 'c', sizeof val);
    ztxn_t *txn = ztxn_begin(f->store, true);
    for (int i = 0; i < 1024; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "big/%04d", i);
        ztxn_put(txn, f->items, key, (size_t)n, val, sizeof val);
    }
    assert_int_equal(ztxn_commit(&txn), 0);
    uint64_t used = zstore_used_bytes(f->store);
    assert_true(used > 8 * MIB);
    assert_true(zstore_file_bytes(f->store) < used + MIB); /* LMDB wrote it; no zeros yet */
    uint64_t step = used / 4;
    for (int i = 0; i < 8; i++) {
        uint64_t before = zstore_file_bytes(f->store);
        txn = ztxn_begin(f->store, true);
        put_str(txn, f->items, "small", "v");
        assert_int_equal(ztxn_commit(&txn), 0);
        assert_true(zstore_file_bytes(f->store) <= before + MIB);
    }
    assert_true(zstore_file_bytes(f->store) >= zstore_used_bytes(f->store) + step / 2);
}

static void test_file_ahead_stops_at_map(void **state)
{
    /* Goal: the zeros never run past the map: a 1 MiB map's file stays at or
     * under 1 MiB while the map fills, and the full map still says MAP_FULL. */
    fixture_t *f = *state;
    fixture_fresh(f, "ahead-small", MIB, 64ull * MIB);
    int rc = 0;
    for (int batch = 0; batch < TXN_BATCHES_MAX && rc == 0; batch++) {
        rc = write_batch(f, batch);
        assert_true(zstore_file_bytes(f->store) <= MIB);
    }
    assert_int_equal(rc, ZE_MAP_FULL);
    assert_int_equal(zstore_file_bytes(f->store), MIB);
}

/* -------------------------------------------------------- full disk */

static int keep_rows_intact(zstore_t *store, int items)
{
    ztxn_t *txn = ztxn_begin(store, false);
    for (int i = 0; i < 10; i++) {
        char key[32];
        char want[32];
        snprintf(key, sizeof key, "keep/%d", i);
        int n = snprintf(want, sizeof want, "value-%d", i);
        zval_t v = {0};
        if (ztxn_get(txn, items, key, strlen(key), &v) != 0 || v.len != (size_t)n ||
            memcmp(v.data, want, v.len) != 0) {
            ztxn_abort(&txn);
            return -1;
        }
    }
    ztxn_abort(&txn);
    return 0;
}

/* Write until a commit fails under a small file-size limit; return the code. */
static int fill_until_failure(zstore_t *store, int items, char *msg, size_t msg_len)
{
    static char val[4000];
    memset(val, 'z', sizeof val);
    for (int batch = 0; batch < TXN_BATCHES_MAX; batch++) {
        ztxn_t *txn = ztxn_begin(store, true);
        for (int i = 0; i < 8; i++) {
            char key[32];
            int n = snprintf(key, sizeof key, "fill/%06d/%d", batch, i);
            ztxn_put(txn, items, key, (size_t)n, val, sizeof val);
        }
        snprintf(msg, msg_len, "%s", ztxn_errmsg(txn));
        int rc = ztxn_commit(&txn);
        if (rc == ZE_MAP_FULL) {
            rc = zstore_grow(store);
            snprintf(msg, msg_len, "disk full: grow stopped at the maximum");
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Child body: exit code 0 when a full disk gave ZE_UNAVAILABLE and the rows
 * committed before it are still readable, before and after a reopen. */
static int disk_full_child(const char *dir)
{
    signal(SIGXFSZ, SIG_IGN);
    zstore_t *store = NULL;
    if (store_open_sized(dir, MIB, 256ull * MIB, &store) != 0) {
        return 10;
    }
    int items = zstore_table(store, "items");
    ztxn_t *txn = ztxn_begin(store, true);
    for (int i = 0; i < 10; i++) {
        char key[32];
        char val[32];
        snprintf(key, sizeof key, "keep/%d", i);
        snprintf(val, sizeof val, "value-%d", i);
        put_str(txn, items, key, val);
    }
    if (ztxn_commit(&txn) != 0) {
        return 11;
    }
    char path[2 * PATH_BYTES_MAX];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    struct rlimit fsize;
    if (stat(path, &st) != 0) {
        return 12;
    }
    fsize.rlim_cur = fsize.rlim_max = (rlim_t)st.st_size + 256 * 1024;
    if (setrlimit(RLIMIT_FSIZE, &fsize) != 0) {
        return 12;
    }
    char msg[512] = "";
    int rc = fill_until_failure(store, items, msg, sizeof msg);
    if (rc != ZE_UNAVAILABLE) {
        fprintf(stderr, "disk full gave %d: %s\n", rc, msg);
        return 13;
    }
    if (keep_rows_intact(store, items) != 0) {
        return 14;
    }
    zstore_destroy(&store);
    if (store_open_sized(dir, MIB, 256ull * MIB, &store) != 0) {
        return 15;
    }
    rc = keep_rows_intact(store, zstore_table(store, "items"));
    zstore_destroy(&store);
    return rc == 0 ? 0 : 16;
}

static void test_disk_full_is_unavailable(void **state)
{
    /* Goal: a full disk (a small RLIMIT_FSIZE) makes the commit fail with
     * ZE_UNAVAILABLE instead of crashing, and earlier data stays readable. */
    fixture_t *f = *state;
    char dir[PATH_BYTES_MAX];
    snprintf(dir, sizeof dir, "%s/full", f->root);
    zstore_destroy(&f->store); /* an LMDB environment must not cross fork */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(disk_full_child(dir));
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ----------------------------------------------------- sticky errors */

static void test_sticky_error(void **state)
{
    /* Goal: after the first error every operation is a no-op, commit returns
     * that first error, and nothing of the transaction is written. */
    fixture_t *f = *state;
    char big[ZSTORE_KEY_BYTES_MAX + 1];
    memset(big, 'k', sizeof big);
    ztxn_t *txn = ztxn_begin(f->store, true);
    put_str(txn, f->items, "before", "1");
    ztxn_put(txn, f->items, big, sizeof big, "v", 1);
    assert_int_equal(ztxn_err(txn), ZE_INVALID);
    assert_non_null(strstr(ztxn_errmsg(txn), "\"items\""));
    put_str(txn, f->items, "after", "2");
    ztxn_fail(txn, ZE_INTERNAL, "a second error");
    assert_int_equal(ztxn_err(txn), ZE_INVALID);
    zval_t v = {0};
    assert_int_equal(ztxn_get(txn, f->items, "before", 6, &v), ZE_INVALID);
    assert_int_equal(ztxn_outbox_last(txn), 0);
    ztxn_outbox_put(txn, 5, "x", 1); /* no-op, so no assertion either */
    assert_int_equal(ztxn_commit(&txn), ZE_INVALID);

    txn = ztxn_begin(f->store, false);
    expect_str(txn, f->items, "before", NULL);
    expect_str(txn, f->items, "after", NULL);
    assert_int_equal(ztxn_err(txn), 0); /* ZE_NOT_FOUND is not sticky */
    assert_string_equal(ztxn_errmsg(txn), "");
    ztxn_abort(&txn);
}

static void test_key_limits(void **state)
{
    /* Goal: empty or oversize keys, prefixes and request ids are ZE_INVALID;
     * keys at the limit work; deleting a missing key is not an error. */
    fixture_t *f = *state;
    char big[ZSTORE_KEY_BYTES_MAX + 1];
    memset(big, 'k', sizeof big);
    char id[ZSTORE_REQUEST_ID_BYTES_MAX + 2];
    memset(id, 'r', sizeof id - 1);
    id[sizeof id - 1] = '\0';

    ztxn_t *txn = ztxn_begin(f->store, true);
    ztxn_put(txn, f->items, big, ZSTORE_KEY_BYTES_MAX, "v", 1);
    ztxn_del(txn, f->items, "missing", 7);
    ztxn_request_put(txn, id + 1, "r", 1, 1); /* exactly the limit */
    assert_int_equal(ztxn_err(txn), 0);
    assert_int_equal(ztxn_commit(&txn), 0);

    struct {
        int table;
        const char *key;
        size_t len;
    } bad[] = {{f->items, "", 0}, {f->items, NULL, 0}, {f->items, big, sizeof big}};
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        txn = ztxn_begin(f->store, true);
        ztxn_del(txn, bad[i].table, bad[i].key, bad[i].len);
        assert_int_equal(ztxn_err(txn), ZE_INVALID);
        ztxn_abort(&txn);
    }
    txn = ztxn_begin(f->store, true);
    ztxn_request_put(txn, id, "r", 1, 1);
    assert_int_equal(ztxn_err(txn), ZE_INVALID);
    assert_non_null(strstr(ztxn_errmsg(txn), "request_id"));
    ztxn_abort(&txn);
    txn = ztxn_begin(f->store, false);
    zval_t v = {0};
    int64_t ts;
    assert_int_equal(ztxn_request_get(txn, "", &v, &ts), ZE_INVALID);
    ztxn_abort(&txn);
    txn = ztxn_begin(f->store, false);
    assert_int_equal(ztxn_cursor_get(txn, ""), 0);
    assert_int_equal(ztxn_err(txn), ZE_INVALID);
    ztxn_abort(&txn);
}

static void test_child_error_propagation(void **state)
{
    /* Goal: a child's input error stays in the child, a child's storage error
     * reaches the parent when the child is committed, and an aborted child
     * leaves the parent untouched. */
    fixture_t *f = *state;
    ztxn_t *txn = ztxn_begin(f->store, true);
    ztxn_t *child = ztxn_begin_child(txn);
    put_str(child, f->items, "half", "done");
    ztxn_put(child, f->items, "", 0, "v", 1);
    assert_int_equal(ztxn_commit(&child), ZE_INVALID);
    assert_int_equal(ztxn_err(txn), 0);
    expect_str(txn, f->items, "half", NULL);

    child = ztxn_begin_child(txn);
    ztxn_fail(child, ZE_MAP_FULL, "simulated map full");
    ztxn_abort(&child);
    assert_int_equal(ztxn_err(txn), 0);

    child = ztxn_begin_child(txn);
    ztxn_fail(child, ZE_UNAVAILABLE, "simulated disk full");
    assert_int_equal(ztxn_commit(&child), ZE_UNAVAILABLE);
    assert_int_equal(ztxn_err(txn), ZE_UNAVAILABLE);
    assert_string_equal(ztxn_errmsg(txn), "simulated disk full");

    child = ztxn_begin_child(txn); /* a child of a failed parent fails the same way */
    assert_int_equal(ztxn_err(child), ZE_UNAVAILABLE);
    assert_int_equal(ztxn_commit(&child), ZE_UNAVAILABLE);
    assert_int_equal(ztxn_commit(&txn), ZE_UNAVAILABLE);
}

static void parent_used_body(const char *dir)
{
    if (store_open_sized(dir, 0, 0, &doomed_store) != 0) {
        _exit(10);
    }
    doomed_txn = ztxn_begin(doomed_store, true);
    doomed_child = ztxn_begin_child(doomed_txn);
    ztxn_put(doomed_txn, zstore_table(doomed_store, "items"), "k", 1, "v", 1); /* must assert */
}

static void grow_in_txn_body(const char *dir)
{
    if (store_open_sized(dir, 0, 0, &doomed_store) != 0) {
        _exit(10);
    }
    doomed_txn = ztxn_begin(doomed_store, false);
    zstore_grow(doomed_store); /* must assert: a transaction is open */
}

static void test_misuse_asserts(void **state)
{
    /* Goal: using a parent while its child is open, and growing the map with a
     * transaction open, are programmer errors that stop the process. */
    fixture_t *f = *state;
    char dir[PATH_BYTES_MAX];
    snprintf(dir, sizeof dir, "%s/parent", f->root);
    expect_abort(f, parent_used_body, dir);
    snprintf(dir, sizeof dir, "%s/grow", f->root);
    expect_abort(f, grow_in_txn_body, dir);
}

/* ------------------------------------------------------ scan, backup */

typedef struct {
    char keys[8][16];
    int count;
    int stop_after; /* 0 = never stop */
} scan_ctx_t;

static int collect_row(void *ctx, zval_t key, zval_t val)
{
    (void)val;
    scan_ctx_t *c = ctx;
    assert_true(c->count < 8 && key.len < 16);
    memcpy(c->keys[c->count], key.data, key.len);
    c->keys[c->count][key.len] = '\0';
    c->count++;
    return c->stop_after != 0 && c->count == c->stop_after ? 7 : 0;
}

/* Scan and compare the keys seen with the space-separated `want`. */
static void expect_scan(ztxn_t *txn, int table, const char *prefix, const char *start,
                        int stop_after, int want_rc, const char *want)
{
    scan_ctx_t c = {.stop_after = stop_after};
    int rc = ztxn_scan(txn, table, prefix, strlen(prefix), start, start ? strlen(start) : 0, &c,
                       collect_row);
    assert_int_equal(rc, want_rc);
    char seen[128] = "";
    for (int i = 0; i < c.count; i++) {
        strcat(seen, i > 0 ? " " : "");
        strcat(seen, c.keys[i]);
    }
    assert_string_equal(seen, want);
}

static void test_scan_prefix_and_start(void **state)
{
    /* Goal: ztxn_scan visits exactly the keys with the prefix, in key order,
     * from the first key >= start, and stops when the callback says so. */
    fixture_t *f = *state;
    const char *keys[] = {"b/1", "a/3", "ab", "a", "a/1", "a/2"};
    ztxn_t *txn = ztxn_begin(f->store, true);
    for (size_t i = 0; i < ZARRAY_LEN(keys); i++) {
        put_str(txn, f->items, keys[i], "v");
    }
    assert_int_equal(ztxn_commit(&txn), 0);

    txn = ztxn_begin(f->store, false);
    expect_scan(txn, f->items, "a/", NULL, 0, 0, "a/1 a/2 a/3");
    expect_scan(txn, f->items, "a/", "a/2", 0, 0, "a/2 a/3");
    expect_scan(txn, f->items, "a/", "0", 0, 0, "a/1 a/2 a/3");
    expect_scan(txn, f->items, "a/", "a/9", 0, 0, "");
    expect_scan(txn, f->items, "", NULL, 0, 0, "a a/1 a/2 a/3 ab b/1");
    expect_scan(txn, f->items, "", "ab", 0, 0, "ab b/1");
    expect_scan(txn, f->items, "a", NULL, 2, 7, "a a/1");
    expect_scan(txn, f->items, "c", NULL, 0, 0, "");
    expect_scan(txn, f->effects, "", NULL, 0, 0, "");
    assert_int_equal(ztxn_err(txn), 0);
    char big[ZSTORE_KEY_BYTES_MAX + 1];
    memset(big, 'a', sizeof big);
    scan_ctx_t c = {0};
    assert_int_equal(ztxn_scan(txn, f->items, big, sizeof big, NULL, 0, &c, collect_row),
                     ZE_INVALID);
    assert_int_equal(c.count, 0);
    ztxn_abort(&txn);
}

static void test_backup_copy(void **state)
{
    /* Goal: zstore_backup makes a copy that opens as a store with the same
     * rows; a target that is missing or not empty is ZE_INVALID. */
    fixture_t *f = *state;
    ztxn_t *txn = ztxn_begin(f->store, true);
    put_str(txn, f->items, "k1", "v1");
    put_str(txn, f->items, "k2", "v2");
    outbox_put_str(txn, 1);
    ztxn_cursor_set(txn, "grid", 42);
    assert_int_equal(ztxn_commit(&txn), 0);

    char copy[PATH_BYTES_MAX];
    snprintf(copy, sizeof copy, "%s/backup", f->root);
    assert_int_equal(zstore_backup(f->store, copy), ZE_INVALID); /* missing */
    assert_int_equal(mkdir(copy, 0750), 0);
    assert_int_equal(zstore_backup(f->store, copy), 0);
    assert_int_equal(zstore_backup(f->store, copy), ZE_INVALID); /* not empty */

    zstore_t *restored = NULL;
    assert_int_equal(store_open_sized(copy, 0, 0, &restored), 0);
    txn = ztxn_begin(restored, false);
    expect_str(txn, zstore_table(restored, "items"), "k1", "v1");
    expect_str(txn, zstore_table(restored, "items"), "k2", "v2");
    assert_int_equal(ztxn_outbox_last(txn), 1);
    assert_int_equal(ztxn_cursor_get(txn, "grid"), 42);
    ztxn_abort(&txn);
    zstore_destroy(&restored);
    assert_null(restored);
    zstore_destroy(&restored); /* idempotent */
}

enum {
    BACKUP_WRITES_READY = 200,  /* commits before the writer says it is under way */
    BACKUP_WRITES_MAX = 100000, /* bound on the writer's loop */
};

/* The writer process of test_backup_dir_hot: one transaction per row
 * "row/NNNNNNNN", which also sets "count" to the number of rows; says so on
 * ready_fd after BACKUP_WRITES_READY commits, stops at a byte on stop_fd. */
static void backup_writer(const char *dir, int ready_fd, int stop_fd)
{
    zstore_t *store = NULL;
    if (store_open_sized(dir, 0, 0, &store) != 0 || fcntl(stop_fd, F_SETFL, O_NONBLOCK) != 0) {
        _exit(1);
    }
    int items = zstore_table(store, "items");
    for (uint32_t n = 1; n <= BACKUP_WRITES_MAX; n++) {
        char key[16];
        uint8_t count[8];
        snprintf(key, sizeof key, "row/%08u", n);
        zstore_be64_put(count, n);
        ztxn_t *txn = ztxn_begin(store, true);
        ztxn_put(txn, items, key, strlen(key), "v", 1);
        ztxn_put(txn, items, "count", 5, count, sizeof count);
        if (ztxn_commit(&txn) != 0) {
            _exit(2);
        }
        char b;
        if (n == BACKUP_WRITES_READY && write(ready_fd, "r", 1) != 1) {
            _exit(3);
        }
        if (n > BACKUP_WRITES_READY && read(stop_fd, &b, 1) == 1) {
            break;
        }
    }
    zstore_destroy(&store);
    _exit(0);
}

static int count_any_row(void *ctx, zval_t key, zval_t val)
{
    (void)key;
    (void)val;
    (*(uint64_t *)ctx)++;
    return 0;
}

static void test_backup_dir_hot(void **state)
{
    /* Goal: zstore_backup_dir copies a store that another process keeps
     * writing: the copy is one committed state (its count equals its rows),
     * holds every commit made before the backup began, is complete under its
     * final name and is as large as reported. */
    fixture_t *f = *state;
    zstore_destroy(&f->store); /* an environment must not cross fork */
    int ready[2], stop[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(stop), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(stop[1]);
        backup_writer(f->dir, ready[1], stop[0]);
    }
    close(ready[1]);
    close(stop[0]);
    char b;
    assert_int_equal(read(ready[0], &b, 1), 1);

    char copy[PATH_BYTES_MAX], err[256];
    snprintf(copy, sizeof copy, "%s/copy", f->root);
    uint64_t bytes = 0;
    int rc = zstore_backup_dir(f->dir, copy, &bytes, err, sizeof err);
    assert_int_equal(write(stop[1], "s", 1), 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(ready[0]);
    close(stop[1]);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (rc != 0) {
        fail_msg("zstore_backup_dir: %d %s", rc, err);
    }

    char file[PATH_BYTES_MAX + 32];
    struct stat st;
    snprintf(file, sizeof file, "%s/data.mdb.partial", copy);
    assert_int_equal(stat(file, &st), -1);
    snprintf(file, sizeof file, "%s/data.mdb", copy);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal((uint64_t)st.st_size, bytes);

    zstore_t *restored = NULL;
    assert_int_equal(store_open_sized(copy, 0, 0, &restored), 0);
    ztxn_t *txn = ztxn_begin(restored, false);
    zval_t v = {0};
    assert_int_equal(ztxn_get(txn, zstore_table(restored, "items"), "count", 5, &v), 0);
    assert_int_equal(v.len, 8);
    uint64_t count = zstore_be64_get(v.data), rows = 0;
    assert_int_equal(
        ztxn_scan(txn, zstore_table(restored, "items"), "row/", 4, NULL, 0, &rows, count_any_row),
        0);
    assert_true(count >= BACKUP_WRITES_READY);
    assert_int_equal(rows, count);
    ztxn_abort(&txn);
    zstore_destroy(&restored);
}

/* zstore_backup_dir(src, dest) fails with `want`, a sentence holding `words`
 * and no size. */
static void expect_backup_refused(const char *src, const char *dest, int want, const char *words)
{
    char err[256] = "";
    uint64_t bytes = 7;
    assert_int_equal(zstore_backup_dir(src, dest, &bytes, err, sizeof err), want);
    assert_int_equal(bytes, 0);
    if (strstr(err, words) == NULL) {
        fail_msg("the error \"%s\" does not say \"%s\"", err, words);
    }
}

static void test_backup_dir_refuses_bad_paths(void **state)
{
    /* Goal: each bad path gets its code and a sentence, and nothing is made:
     * no environment where none was, no destination directory; a copy goes
     * into an existing empty directory, never over an earlier copy. */
    fixture_t *f = *state;
    zstore_destroy(&f->store);
    char missing[PATH_BYTES_MAX], empty[PATH_BYTES_MAX], file[PATH_BYTES_MAX];
    char dest[PATH_BYTES_MAX], full[PATH_BYTES_MAX], orphan[PATH_BYTES_MAX];
    snprintf(missing, sizeof missing, "%s/missing", f->root);
    snprintf(empty, sizeof empty, "%s/empty", f->root);
    snprintf(file, sizeof file, "%s/file", f->root);
    snprintf(dest, sizeof dest, "%s/dest", f->root);
    snprintf(full, sizeof full, "%s/full", f->root);
    snprintf(orphan, sizeof orphan, "%s/no/parent", f->root);
    assert_int_equal(mkdir(empty, 0750), 0);
    assert_int_equal(mkdir(full, 0750), 0);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    char inside[PATH_BYTES_MAX + 32];
    snprintf(inside, sizeof inside, "%s/keep", full);
    fp = fopen(inside, "w");
    assert_non_null(fp);
    fclose(fp);
    static char too_long[PATH_MAX + 1];
    memset(too_long, 'a', PATH_MAX);

    expect_backup_refused(missing, dest, ZE_NOT_FOUND, "no LMDB environment at");
    expect_backup_refused(empty, dest, ZE_NOT_FOUND, "holds no data.mdb");
    expect_backup_refused(file, dest, ZE_INVALID, "is not a directory");
    expect_backup_refused(f->dir, full, ZE_INVALID, "is not empty");
    expect_backup_refused(f->dir, f->dir, ZE_INVALID, "is not empty");
    expect_backup_refused(f->dir, file, ZE_INVALID, "is not a directory");
    expect_backup_refused(f->dir, orphan, ZE_NOT_FOUND, "its parent must exist");
    expect_backup_refused("", dest, ZE_INVALID, "must be 1 to");
    expect_backup_refused(f->dir, too_long, ZE_INVALID, "must be 1 to");
    struct stat st;
    assert_int_equal(stat(dest, &st), -1);
    snprintf(inside, sizeof inside, "%s/data.mdb", empty);
    assert_int_equal(stat(inside, &st), -1);

    /* An existing empty directory, named with a trailing slash. */
    snprintf(inside, sizeof inside, "%s/", empty);
    uint64_t bytes = 0;
    char err[256];
    assert_int_equal(zstore_backup_dir(f->dir, inside, &bytes, err, sizeof err), 0);
    assert_true(bytes > 0);
    expect_backup_refused(f->dir, empty, ZE_INVALID, "never overwrites");
}

/* ------------------------------------------------------ open, helpers */

static void test_open_rejects_bad_options(void **state)
{
    /* Goal: bad options give an error code, a sentence and no store; table
     * names resolve to their indexes. */
    fixture_t *f = *state;
    assert_int_equal(zstore_table(f->store, "outbox"), ZSTORE_OUTBOX);
    assert_int_equal(zstore_table(f->store, "meta"), ZSTORE_META);
    assert_int_equal(f->items, 4);
    assert_int_equal(f->effects, 5);
    assert_int_equal(zstore_table(f->store, "nope"), -1);

    char file[PATH_BYTES_MAX];
    snprintf(file, sizeof file, "%s/plain-file", f->root);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    char under_file[2 * PATH_BYTES_MAX];
    snprintf(under_file, sizeof under_file, "%s/sub", file);

    static const char *const dup[] = {"items", "items", NULL};
    static const char *const runtime_dup[] = {"cursors", NULL};
    static const char *const empty_name[] = {"", NULL};
    const char *many[ZSTORE_TABLES_MAX + 1];
    char many_names[ZSTORE_TABLES_MAX][16];
    for (int i = 0; i < ZSTORE_TABLES_MAX; i++) {
        snprintf(many_names[i], sizeof many_names[i], "t%d", i);
        many[i] = many_names[i];
    }
    many[ZSTORE_TABLES_MAX - 3] = NULL; /* one more than fits beside the runtime tables */
    zstore_options_t bad[] = {
        {.dir = NULL},
        {.dir = ""},
        {.dir = file},
        {.dir = under_file},
        {.dir = f->dir, .tables = dup},
        {.dir = f->dir, .tables = runtime_dup},
        {.dir = f->dir, .tables = empty_name},
        {.dir = f->dir, .tables = many},
        {.dir = f->dir, .map_bytes_initial = 4 * MIB, .map_bytes_max = 2 * MIB},
    };
    for (size_t i = 0; i < ZARRAY_LEN(bad); i++) {
        zstore_t *store = (zstore_t *)&bad; /* any non-NULL value, to see it nulled */
        char errbuf[256] = "";
        assert_int_equal(zstore_open(&bad[i], &store, errbuf, sizeof errbuf), ZE_INVALID);
        assert_null(store);
        assert_true(strlen(errbuf) > 0);
    }
    many[ZSTORE_TABLES_MAX - 4] = NULL; /* exactly fits */
    char many_dir[PATH_BYTES_MAX];
    snprintf(many_dir, sizeof many_dir, "%s/many", f->root);
    zstore_options_t fits = {.dir = many_dir, .tables = many};
    zstore_t *store = NULL;
    char errbuf[256] = "";
    assert_int_equal(zstore_open(&fits, &store, errbuf, sizeof errbuf), 0);
    assert_int_equal(zstore_table(store, many_names[ZSTORE_TABLES_MAX - 5]), ZSTORE_TABLES_MAX - 1);
    zstore_destroy(&store);
}

static void test_be64_order(void **state)
{
    /* Goal: big-endian keys round-trip and sort in numeric order. */
    (void)state;
    const uint64_t values[] = {0, 1, 255, 256, 65535, 1ull << 32, UINT64_MAX - 1, UINT64_MAX};
    uint8_t prev[8];
    for (size_t i = 0; i < ZARRAY_LEN(values); i++) {
        uint8_t b[8];
        zstore_be64_put(b, values[i]);
        assert_int_equal(zstore_be64_get(b), values[i]);
        if (i > 0) {
            assert_true(memcmp(prev, b, 8) < 0);
        }
        memcpy(prev, b, 8);
    }
}

int main(void)
{
    zlog_init("test_store", ZLOG_WARN); /* the expected failures log at warn and above */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outbox_gapless_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_last_in_child, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_wrong_seq_asserts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_moves_with_effect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_handles_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full_grows_and_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grow_stops_at_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_runs_ahead_of_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_ahead_one_chunk_per_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_ahead_stops_at_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_is_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sticky_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_error_propagation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misuse_asserts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_prefix_and_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_dir_hot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup_dir_refuses_bad_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_rejects_bad_options, setup, teardown),
        cmocka_unit_test(test_be64_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
