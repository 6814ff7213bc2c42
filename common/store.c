/* store: a thin LMDB wrapper with a sticky-error transaction (see store.h).
 *
 * Every ztxn_* operation first checks the transaction's sticky error and does
 * nothing when one is set, so callers write straight-line code and check once
 * at commit. LMDB and errno codes are mapped to project codes in one place,
 * store_code(). */
#include "common/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"

enum {
    STORE_RUNTIME_TABLES = 4,
    STORE_TABLE_NAME_BYTES_MAX = 64, /* including the terminating NUL */
    STORE_ERRMSG_BYTES_MAX = 320,
    STORE_DIR_MODE = 0750,
    STORE_FILE_MODE = 0640,
    /* A backup starts again when the service grew the map between its open
     * and its snapshot; maps grow by doubling, so one retry is the rule. */
    STORE_BACKUP_ATTEMPTS_MAX = 4,
    /* A backup's directories, with room for the file names below them. */
    STORE_BACKUP_PATH_BYTES_MAX = PATH_MAX - 32,
};

/* The data file is kept ahead of LMDB's last page with written zeros (see
 * store_prealloc): a step is a quarter of what is used, within these bounds;
 * when less than half a step is left, the file is extended toward a whole
 * step, by at most a chunk per commit (1 MiB of zeros, flushed with the
 * commit, costs about 1 ms here; 64 MiB at once would hold a batch's replies
 * for 45 ms). */
#define STORE_PREALLOC_BYTES_MIN (256ull << 10)
#define STORE_PREALLOC_BYTES_MAX (64ull << 20)
#define STORE_PREALLOC_CHUNK_BYTES (1ull << 20)
#define STORE_PREALLOC_WRITE_BYTES (64u << 10)

#define STORE_BACKUP_PARTIAL_NAME "data.mdb.partial" /* renamed to data.mdb when complete */
_Static_assert(sizeof "/" STORE_BACKUP_PARTIAL_NAME < PATH_MAX - STORE_BACKUP_PATH_BYTES_MAX,
               "a backup's file names fit below its directory");

_Static_assert(ZSTORE_TABLES_MAX > STORE_RUNTIME_TABLES, "room for service tables");
_Static_assert(ZSTORE_REQUEST_ID_BYTES_MAX <= ZSTORE_KEY_BYTES_MAX, "request ids are keys");
_Static_assert(STORE_TABLE_NAME_BYTES_MAX <= ZSTORE_KEY_BYTES_MAX, "table names are keys");
_Static_assert(sizeof(size_t) >= sizeof(uint64_t), "map sizes up to map_bytes_max fit size_t");
_Static_assert(ZSTORE_MAP_BYTES_INITIAL <= ZSTORE_MAP_BYTES_MAX_DEFAULT, "initial within max");

static void spare_drop(zstore_t *store);

static const char *const runtime_tables[STORE_RUNTIME_TABLES] = {"outbox", "requests", "cursors",
                                                                 "meta"};

struct zstore {
    MDB_env *env;
    MDB_dbi dbis[ZSTORE_TABLES_MAX];
    char names[ZSTORE_TABLES_MAX][STORE_TABLE_NAME_BYTES_MAX];
    int table_count;
    uint64_t map_bytes;
    uint64_t map_bytes_max;
    /* Every ztxn_t alive (top-level and child): the map may only be resized at 0. */
    int txns_open;
    /* LMDB allows one write transaction per process; a second would deadlock. */
    bool write_open;
    /* The last finished read transaction, reset (mdb_txn_reset) for
     * mdb_txn_renew: a read then costs no allocation. A reset read handle
     * belongs to the thread that used it (its reader slot is per thread). */
    ztxn_t *spare;
    pthread_t spare_thread;
    /* Preallocation of the data file (store_prealloc). */
    int fd;                       /* LMDB's descriptor of data.mdb; -1 when unknown */
    uint64_t page_bytes;
    uint64_t file_bytes;          /* the file's size as last extended or seen */
    uint64_t prealloc_retry_used; /* after a failed extension: try again past this use */
};

struct ztxn {
    zstore_t *store;
    MDB_txn *txn; /* NULL when begin failed; err is then set */
    ztxn_t *parent;
    bool write;
    bool child_open;
    /* The outbox's last seq as this transaction sees it, once read: every
     * event a command emits asks for it twice (its seq, and the gap check
     * of the put), a cursor walk each time. Kept up to date by outbox puts,
     * forgotten by any other write to the outbox, taken over by the parent
     * when a child commits. */
    bool outbox_known;
    uint64_t outbox_last;
    int err;
    char errmsg[STORE_ERRMSG_BYTES_MAX];
};

/* The one mapping from LMDB and errno codes to project codes. EIO counts as a
 * full disk because LMDB reports a short write (the file-size limit cut it)
 * as EIO. */
static int store_code(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return ZE_NOT_FOUND;
    case MDB_MAP_FULL:
        return ZE_MAP_FULL;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
    case EIO:
        return ZE_UNAVAILABLE;
    default:
        return ZE_INTERNAL;
    }
}

/* ---------------------------------------------------------------- helpers */

void zstore_be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

uint64_t zstore_be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | in[i];
    }
    return v;
}

/* mkdir -p: create every missing component of dir with STORE_DIR_MODE. */
static int store_mkdirs(const char *dir)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') {
            continue;
        }
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, STORE_DIR_MODE) != 0 && errno != EEXIST) {
            return -1;
        }
        path[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- open/close */

/* Fill self->names with the runtime tables then the service's, rejecting
 * duplicates, empty or overlong names and too many tables. */
static int store_names_set(zstore_t *self, const char *const *tables, char *errbuf,
                           size_t errbuf_len)
{
    self->table_count = 0;
    for (int i = 0; i < STORE_RUNTIME_TABLES; i++) {
        snprintf(self->names[i], STORE_TABLE_NAME_BYTES_MAX, "%s", runtime_tables[i]);
        self->table_count++;
    }
    for (size_t i = 0; tables != NULL && tables[i] != NULL; i++) {
        const char *name = tables[i];
        size_t len = strlen(name);
        if (self->table_count == ZSTORE_TABLES_MAX) {
            snprintf(errbuf, errbuf_len, "store: too many tables (at most %d service tables)",
                     ZSTORE_TABLES_MAX - STORE_RUNTIME_TABLES);
            return ZE_INVALID;
        }
        if (len == 0 || len >= STORE_TABLE_NAME_BYTES_MAX) {
            snprintf(errbuf, errbuf_len, "store: table name \"%.64s\" must be 1 to %d bytes", name,
                     STORE_TABLE_NAME_BYTES_MAX - 1);
            return ZE_INVALID;
        }
        if (zstore_table(self, name) >= 0) {
            snprintf(errbuf, errbuf_len, "store: table name \"%s\" is used twice", name);
            return ZE_INVALID;
        }
        memcpy(self->names[self->table_count], name, len + 1);
        self->table_count++;
    }
    return 0;
}

/* Check the options and fill in the defaults. */
static int store_limits_set(zstore_t *self, const zstore_options_t *opts, size_t *initial,
                            char *errbuf, size_t errbuf_len)
{
    if (opts->dir == NULL || opts->dir[0] == '\0') {
        snprintf(errbuf, errbuf_len, "store: the data directory is not set");
        return ZE_INVALID;
    }
    *initial = opts->map_bytes_initial != 0 ? opts->map_bytes_initial : ZSTORE_MAP_BYTES_INITIAL;
    self->map_bytes_max =
        opts->map_bytes_max != 0 ? opts->map_bytes_max : ZSTORE_MAP_BYTES_MAX_DEFAULT;
    if (*initial > self->map_bytes_max) {
        snprintf(errbuf, errbuf_len,
                 "store: map_bytes_initial %zu is larger than map_bytes_max %llu", *initial,
                 (unsigned long long)self->map_bytes_max);
        return ZE_INVALID;
    }
    return 0;
}

/* Open the environment. The map size is left unset for mdb_env_open so an
 * existing environment adopts the size stored in its file (it may have grown
 * past map_bytes_initial); only then is it raised to map_bytes_initial. */
static int store_env_open(zstore_t *self, const char *dir, size_t initial, char *errbuf,
                          size_t errbuf_len)
{
    int rc = mdb_env_create(&self->env);
    if (rc != 0) {
        snprintf(errbuf, errbuf_len, "store: mdb_env_create failed: %s", mdb_strerror(rc));
        return store_code(rc) == ZE_UNAVAILABLE ? ZE_UNAVAILABLE : ZE_INTERNAL;
    }
    ZASSERT(mdb_env_get_maxkeysize(self->env) >= ZSTORE_KEY_BYTES_MAX);
    rc = mdb_env_set_maxdbs(self->env, ZSTORE_TABLES_MAX);
    if (rc == 0) {
        rc = mdb_env_open(self->env, dir, 0, STORE_FILE_MODE);
    }
    MDB_envinfo info;
    if (rc == 0) {
        rc = mdb_env_info(self->env, &info);
    }
    if (rc == 0 && info.me_mapsize < initial) {
        rc = mdb_env_set_mapsize(self->env, initial);
    }
    if (rc == 0) {
        rc = mdb_env_info(self->env, &info);
    }
    if (rc != 0) {
        snprintf(errbuf, errbuf_len, "store: cannot open LMDB environment in %s: %s", dir,
                 mdb_strerror(rc));
        return store_code(rc) == ZE_UNAVAILABLE ? ZE_UNAVAILABLE : ZE_INTERNAL;
    }
    self->map_bytes = info.me_mapsize;
    MDB_stat st;
    struct stat fst;
    self->fd = -1;
    if (mdb_env_get_fd(self->env, &self->fd) == 0 && mdb_env_stat(self->env, &st) == 0 &&
        fstat(self->fd, &fst) == 0) {
        self->page_bytes = st.ms_psize;
        self->file_bytes = (uint64_t)fst.st_size;
    } else {
        self->fd = -1;
    }
    return 0;
}

/* Keep the data file ahead of LMDB's last page, filled with written zeros.
 *
 * Why: LMDB appends pages at the end of data.mdb (the outbox only grows), so
 * nearly every commit made the file longer. On ext4 the commit's fdatasync
 * must then also write the inode (the new size) and the allocation bitmaps,
 * each its own synchronous write: 9.5 device writes per commit of 26 ordered
 * puts here, against 7.5 when the pages already exist, and 25% fewer commits
 * a second (docs/performance.md, fourth round). Zeros written ahead make
 * LMDB's appends overwrites. fallocate would not do: its unwritten extents
 * are converted, and that metadata written, on first write.
 *
 * LMDB reads no page past its last one, so the zeros are never data; a
 * backup copies the used pages only. Run inside a top-level write
 * transaction just before its commit: LMDB's write lock (in lock.mdb, across
 * processes) is held, so no other writer is putting pages past the end of
 * the file, and this transaction's own pages are written after the zeros, by
 * the commit, whose fdatasync flushes both. "Used" is the size before this
 * transaction, so the policy lags one batch. A failure (disk full, the
 * file-size limit) is not an error: what was written stays, LMDB extends the
 * file itself as before, and the next try waits until the store has grown by
 * another step. */
static void store_prealloc(zstore_t *self)
{
    static const uint8_t zeros[STORE_PREALLOC_WRITE_BYTES];
    MDB_envinfo info;
    if (self->fd < 0 || mdb_env_info(self->env, &info) != 0) {
        return;
    }
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * self->page_bytes;
    uint64_t step = used / 4;
    step = step < STORE_PREALLOC_BYTES_MIN   ? STORE_PREALLOC_BYTES_MIN
           : step > STORE_PREALLOC_BYTES_MAX ? STORE_PREALLOC_BYTES_MAX
                                             : step;
    if (self->file_bytes >= used + step / 2 || used < self->prealloc_retry_used) {
        return;
    }
    uint64_t target = used + step < self->map_bytes ? used + step : self->map_bytes;
    struct stat st;
    if (fstat(self->fd, &st) != 0) {
        return;
    }
    uint64_t at = (uint64_t)st.st_size; /* LMDB may have extended it itself */
    if (target > at + STORE_PREALLOC_CHUNK_BYTES) {
        target = at + STORE_PREALLOC_CHUNK_BYTES; /* the rest on the next commits */
    }
    int err = 0;
    while (at < target) {
        size_t n = target - at < sizeof zeros ? (size_t)(target - at) : sizeof zeros;
        ssize_t w = pwrite(self->fd, zeros, n, (off_t)at);
        if (w > 0) {
            at += (uint64_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            err = w < 0 ? errno : ENOSPC;
            break;
        }
    }
    self->file_bytes = at > self->file_bytes ? at : self->file_bytes;
    if (err != 0) {
        self->prealloc_retry_used = used + step / 2;
        zlogf(ZLOG_INFO, "store_prealloc_stopped",
              "the data file was extended to %llu of %llu bytes ahead of use: %s; LMDB extends "
              "it as it writes",
              (unsigned long long)at, (unsigned long long)target, strerror(err));
    }
}

/* Create (when missing) and open every table in one write transaction. */
static int store_tables_open(zstore_t *self, char *errbuf, size_t errbuf_len)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(self->env, NULL, 0, &txn);
    int i = 0;
    for (; rc == 0 && i < self->table_count; i++) {
        rc = mdb_dbi_open(txn, self->names[i], MDB_CREATE, &self->dbis[i]);
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
    } else if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (rc != 0) {
        snprintf(errbuf, errbuf_len, "store: cannot create table \"%s\": %s",
                 self->names[i > 0 ? i - 1 : 0], mdb_strerror(rc));
        int code = store_code(rc);
        return code == ZE_MAP_FULL || code == ZE_UNAVAILABLE ? ZE_UNAVAILABLE : ZE_INTERNAL;
    }
    return 0;
}

int zstore_open(const zstore_options_t *opts, zstore_t **out, char *errbuf, size_t errbuf_len)
{
    ZASSERT(opts != NULL && out != NULL && errbuf != NULL && errbuf_len > 0);
    *out = NULL;
    errbuf[0] = '\0';
    zstore_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        snprintf(errbuf, errbuf_len, "store: out of memory");
        return ZE_INTERNAL;
    }
    size_t initial = 0;
    int rc = store_limits_set(self, opts, &initial, errbuf, errbuf_len);
    if (rc == 0) {
        rc = store_names_set(self, opts->tables, errbuf, errbuf_len);
    }
    if (rc == 0 && store_mkdirs(opts->dir) != 0) {
        int e = errno;
        snprintf(errbuf, errbuf_len, "store: cannot create data directory %s: %s", opts->dir,
                 strerror(e));
        rc = store_code(e) == ZE_UNAVAILABLE ? ZE_UNAVAILABLE : ZE_INVALID;
    }
    if (rc == 0) {
        rc = store_env_open(self, opts->dir, initial, errbuf, errbuf_len);
    }
    if (rc == 0) {
        rc = store_tables_open(self, errbuf, errbuf_len);
    }
    if (rc != 0) {
        zstore_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void zstore_destroy(zstore_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    zstore_t *self = *self_p;
    ZASSERT(self->txns_open == 0);
    spare_drop(self);
    if (self->env != NULL) {
        mdb_env_close(self->env);
    }
    free(self);
    *self_p = NULL;
}

int zstore_table(const zstore_t *self, const char *name)
{
    for (int i = 0; i < self->table_count; i++) {
        if (strcmp(self->names[i], name) == 0) {
            return i;
        }
    }
    return -1;
}

int zstore_grow(zstore_t *self)
{
    /* LMDB may only remap while this process has no transaction open. */
    ZASSERT(self->txns_open == 0);
    spare_drop(self);
    if (self->map_bytes >= self->map_bytes_max) {
        zlogf(ZLOG_ERROR, "store_map_max",
              "the LMDB map is full at its maximum of %llu bytes (map_bytes_max)",
              (unsigned long long)self->map_bytes_max);
        return ZE_UNAVAILABLE;
    }
    uint64_t next =
        self->map_bytes > self->map_bytes_max / 2 ? self->map_bytes_max : self->map_bytes * 2;
    int rc = mdb_env_set_mapsize(self->env, (size_t)next);
    MDB_envinfo info;
    if (rc == 0) {
        rc = mdb_env_info(self->env, &info);
    }
    if (rc != 0) {
        zlogf(ZLOG_ERROR, "store_grow_failed", "cannot grow the LMDB map to %llu bytes: %s",
              (unsigned long long)next, mdb_strerror(rc));
        return store_code(rc) == ZE_UNAVAILABLE ? ZE_UNAVAILABLE : ZE_INTERNAL;
    }
    zlogf(ZLOG_INFO, "store_grown", "LMDB map grown from %llu to %llu bytes",
          (unsigned long long)self->map_bytes, (unsigned long long)info.me_mapsize);
    self->map_bytes = info.me_mapsize;
    return 0;
}

uint64_t zstore_map_bytes(const zstore_t *self)
{
    return self->map_bytes;
}

uint64_t zstore_used_bytes(const zstore_t *self)
{
    MDB_envinfo info;
    if (self->page_bytes == 0 || mdb_env_info(self->env, &info) != 0) {
        return 0;
    }
    return ((uint64_t)info.me_last_pgno + 1) * self->page_bytes;
}

uint64_t zstore_file_bytes(const zstore_t *self)
{
    struct stat st;
    return self->fd >= 0 && fstat(self->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* A backup target that is missing, not a directory or not empty is the
 * caller's mistake, not a storage failure. */
static bool store_backup_target_bad(int rc)
{
    return rc == ENOENT || rc == ENOTDIR || rc == EEXIST || rc == EACCES;
}

int zstore_backup(zstore_t *self, const char *path)
{
    ZASSERT(path != NULL);
    int rc = mdb_env_copy2(self->env, path, MDB_CP_COMPACT);
    if (rc == 0) {
        zlog(ZLOG_INFO, "store_backup", "path", path, NULL);
        return 0;
    }
    zlogf(ZLOG_ERROR, "store_backup_failed", "backup into %s failed: %s", path, mdb_strerror(rc));
    if (store_backup_target_bad(rc)) {
        return ZE_INVALID;
    }
    /* The copy was created by us (O_EXCL) and is incomplete: remove it so a
     * retry into the same directory can succeed. */
    char file[PATH_MAX];
    if (snprintf(file, sizeof file, "%s/data.mdb", path) < (int)sizeof file) {
        unlink(file);
    }
    return store_code(rc) == ZE_UNAVAILABLE ? ZE_UNAVAILABLE : ZE_INTERNAL;
}

/* ------------------------------------------------ backup of a directory */

/* The code for an errno met on a backup's paths. */
static int backup_errno_code(int e)
{
    switch (e) {
    case ENOENT:
        return ZE_NOT_FOUND;
    case EACCES:
    case EPERM:
    case EROFS:
        return ZE_FORBIDDEN;
    case ENOTDIR:
    case ENAMETOOLONG:
    case ELOOP:
    case EEXIST:
        return ZE_INVALID;
    default:
        return store_code(e) == ZE_UNAVAILABLE ? ZE_UNAVAILABLE : ZE_INTERNAL;
    }
}

/* The code for an LMDB or errno code from opening or copying. */
static int backup_mdb_code(int rc)
{
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
        return ZE_INVALID;
    }
    return rc > 0 ? backup_errno_code(rc) : ZE_INTERNAL;
}

/* src_dir must be a directory holding data.mdb: an open would otherwise make
 * an empty environment where the operator expected their data. */
static int backup_src_check(const char *src_dir, char *errbuf, size_t errbuf_len)
{
    struct stat st;
    if (stat(src_dir, &st) != 0) {
        int e = errno;
        snprintf(errbuf, errbuf_len, "store: %s %s: %s",
                 e == ENOENT ? "no LMDB environment at" : "cannot read", src_dir, strerror(e));
        return backup_errno_code(e);
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(errbuf, errbuf_len,
                 "store: %s is not a directory; give a service's data directory "
                 "($ZHILI_DATA/<service>)",
                 src_dir);
        return ZE_INVALID;
    }
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/data.mdb", src_dir); /* the length is checked */
    if (stat(file, &st) != 0) {
        int e = errno;
        if (e == ENOENT) {
            snprintf(errbuf, errbuf_len,
                     "store: no LMDB environment in %s (it holds no data.mdb); a service keeps "
                     "its store in $ZHILI_DATA/<service>/",
                     src_dir);
        } else {
            snprintf(errbuf, errbuf_len, "store: cannot read %s: %s", file, strerror(e));
        }
        return backup_errno_code(e);
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(errbuf, errbuf_len, "store: %s is not a regular file", file);
        return ZE_INVALID;
    }
    return 0;
}

/* dest_dir must be an empty directory. */
static int backup_dest_empty(const char *dest_dir, char *errbuf, size_t errbuf_len)
{
    DIR *dir = opendir(dest_dir);
    if (dir == NULL) {
        int e = errno;
        snprintf(errbuf, errbuf_len, "store: cannot read the backup directory %s: %s", dest_dir,
                 strerror(e));
        return backup_errno_code(e);
    }
    bool empty = true;
    const struct dirent *ent = NULL;
    /* Stops at the first entry other than "." and "..": at most three reads. */
    while (empty && (ent = readdir(dir)) != NULL) {
        empty = strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0;
    }
    closedir(dir);
    if (!empty) {
        snprintf(errbuf, errbuf_len,
                 "store: the backup directory %s is not empty; give a new or empty directory "
                 "(a backup never overwrites)",
                 dest_dir);
        return ZE_INVALID;
    }
    return 0;
}

/* Create dest_dir (its parent must exist; *created is then true) or check
 * that it is an empty directory. */
static int backup_dest_prepare(const char *dest_dir, bool *created, char *errbuf, size_t errbuf_len)
{
    *created = false;
    struct stat st;
    int e = stat(dest_dir, &st) == 0 ? 0 : errno;
    if (e == ENOENT) {
        if (mkdir(dest_dir, STORE_DIR_MODE) != 0) {
            e = errno;
            snprintf(errbuf, errbuf_len, "store: cannot create the backup directory %s: %s%s",
                     dest_dir, strerror(e), e == ENOENT ? " (its parent must exist)" : "");
            return backup_errno_code(e);
        }
        *created = true;
        return 0;
    }
    if (e != 0) {
        snprintf(errbuf, errbuf_len, "store: cannot use the backup directory %s: %s", dest_dir,
                 strerror(e));
        return backup_errno_code(e);
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(errbuf, errbuf_len, "store: the backup destination %s is not a directory",
                 dest_dir);
        return ZE_INVALID;
    }
    return backup_dest_empty(dest_dir, errbuf, errbuf_len);
}

/* Open src_dir read-only with the services' table limit. MDB_RDONLY still
 * takes a reader slot in lock.mdb (LMDB goes without locks only on a
 * read-only file system, where nothing writes): that slot is what keeps the
 * service's writer off the pages of the copy's snapshot. */
static int backup_env_open(const char *src_dir, MDB_env **env, char *errbuf, size_t errbuf_len)
{
    *env = NULL;
    int rc = mdb_env_create(env);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(*env, ZSTORE_TABLES_MAX);
    }
    if (rc == 0) {
        rc = mdb_env_open(*env, src_dir, MDB_RDONLY, STORE_FILE_MODE);
    }
    if (rc != 0) {
        snprintf(errbuf, errbuf_len, "store: cannot open the LMDB environment in %s: %s%s", src_dir,
                 mdb_strerror(rc),
                 rc == EACCES ? " (run as the service's user: a backup takes a reader slot in "
                                "lock.mdb)"
                              : "");
        if (*env != NULL) {
            mdb_env_close(*env);
            *env = NULL;
        }
        return backup_mdb_code(rc);
    }
    /* Slots of readers that died (a backup killed halfway) would keep the
     * service from reusing pages until it restarts. */
    int dead = 0;
    if (mdb_reader_check(*env, &dead) == 0 && dead > 0) {
        zlogf(ZLOG_INFO, "store_readers_cleared", "cleared %d reader slots of dead processes in %s",
              dead, src_dir);
    }
    return 0;
}

/* Copy into fd. When the service grew the map past this process's view
 * since the open (MDB_MAP_RESIZED), adopt the new size and start again. */
static int backup_copy_fd(MDB_env *env, int fd)
{
    int rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
    for (int i = 1; rc == MDB_MAP_RESIZED && i < STORE_BACKUP_ATTEMPTS_MAX; i++) {
        if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
            return errno;
        }
        rc = mdb_env_set_mapsize(env, 0);
        if (rc == 0) {
            rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
        }
    }
    return rc;
}

/* Write the copy to `partial`, fsync it and rename it to `final`. */
static int backup_write(MDB_env *env, const char *partial, const char *final, uint64_t *bytes_out,
                        char *errbuf, size_t errbuf_len)
{
    int fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, STORE_FILE_MODE);
    if (fd < 0) {
        int e = errno;
        snprintf(errbuf, errbuf_len, "store: cannot create %s: %s", partial, strerror(e));
        return backup_errno_code(e);
    }
    const char *step = "copy";
    int rc = backup_copy_fd(env, fd);
    struct stat st;
    memset(&st, 0, sizeof st);
    if (rc == 0) {
        step = "fsync";
        rc = fsync(fd) == 0 ? 0 : errno;
    }
    if (rc == 0) {
        step = "stat";
        rc = fstat(fd, &st) == 0 ? 0 : errno;
    }
    if (close(fd) != 0 && rc == 0) {
        step = "close";
        rc = errno;
    }
    if (rc == 0) {
        step = "rename";
        rc = rename(partial, final) == 0 ? 0 : errno;
    }
    if (rc != 0) {
        unlink(partial);
        snprintf(errbuf, errbuf_len, "store: the backup into %s failed (%s): %s", partial, step,
                 mdb_strerror(rc));
        return rc == MDB_MAP_RESIZED ? ZE_UNAVAILABLE : backup_mdb_code(rc);
    }
    *bytes_out = (uint64_t)st.st_size;
    return 0;
}

/* fsync a directory, so an entry made in it (a rename, a mkdir) is durable. */
static int store_dir_sync(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    int rc = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

/* Make the rename, and dest_dir itself when this backup created it, durable. */
static int backup_dirs_sync(const char *dest_dir, bool created, char *errbuf, size_t errbuf_len)
{
    int rc = store_dir_sync(dest_dir);
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dest_dir); /* the length is checked */
    for (size_t n = strlen(parent); n > 1 && parent[n - 1] == '/'; n--) {
        parent[n - 1] = '\0'; /* "a/b/" names b, whose parent is a */
    }
    char *slash = strrchr(parent, '/');
    if (slash == parent) {
        slash[1] = '\0'; /* "/x": the root */
    } else if (slash != NULL) {
        *slash = '\0';
    } else {
        snprintf(parent, sizeof parent, ".");
    }
    if (rc == 0 && created) {
        rc = store_dir_sync(parent);
    }
    if (rc != 0) {
        snprintf(errbuf, errbuf_len, "store: cannot fsync the backup directory %s: %s", dest_dir,
                 strerror(rc));
        return backup_errno_code(rc);
    }
    return 0;
}

int zstore_backup_dir(const char *src_dir, const char *dest_dir, uint64_t *bytes_out, char *errbuf,
                      size_t errbuf_len)
{
    ZASSERT(src_dir != NULL && dest_dir != NULL && bytes_out != NULL);
    ZASSERT(errbuf != NULL && errbuf_len > 0);
    *bytes_out = 0;
    errbuf[0] = '\0';
    size_t src_len = strlen(src_dir), dest_len = strlen(dest_dir);
    if (src_len == 0 || dest_len == 0 || src_len > STORE_BACKUP_PATH_BYTES_MAX ||
        dest_len > STORE_BACKUP_PATH_BYTES_MAX) {
        snprintf(errbuf, errbuf_len, "store: a backup path must be 1 to %d bytes",
                 STORE_BACKUP_PATH_BYTES_MAX);
        return ZE_INVALID;
    }
    char partial[PATH_MAX], final[PATH_MAX];
    snprintf(partial, sizeof partial, "%s/%s", dest_dir, STORE_BACKUP_PARTIAL_NAME);
    snprintf(final, sizeof final, "%s/data.mdb", dest_dir);
    bool created = false;
    int rc = backup_src_check(src_dir, errbuf, errbuf_len);
    if (rc == 0) {
        rc = backup_dest_prepare(dest_dir, &created, errbuf, errbuf_len);
    }
    if (rc != 0) {
        return rc; /* nothing made yet */
    }
    MDB_env *env = NULL;
    rc = backup_env_open(src_dir, &env, errbuf, errbuf_len);
    if (rc == 0) {
        rc = backup_write(env, partial, final, bytes_out, errbuf, errbuf_len);
        mdb_env_close(env);
    }
    if (rc == 0) {
        rc = backup_dirs_sync(dest_dir, created, errbuf, errbuf_len);
        if (rc != 0) {
            unlink(final); /* not known to be durable: not a backup */
        }
    }
    if (rc != 0) {
        *bytes_out = 0;
        if (created) {
            rmdir(dest_dir);
        }
    }
    return rc;
}

/* ----------------------------------------------------------- transactions */

void ztxn_fail(ztxn_t *self, int code, const char *msg)
{
    ZASSERT(code < 0);
    if (self->err != 0) {
        return; /* the first error is the one that explains the others */
    }
    self->err = code;
    snprintf(self->errmsg, sizeof self->errmsg, "%s", msg != NULL ? msg : zerr_name(code));
}

/* Make an LMDB failure of `op` (on `table`, or -1) sticky, with a sentence. */
static void txn_fail_mdb(ztxn_t *self, int rc, const char *op, int table)
{
    char where[STORE_TABLE_NAME_BYTES_MAX + 64];
    if (table >= 0) {
        snprintf(where, sizeof where, "%s on table \"%s\"", op, self->store->names[table]);
    } else {
        snprintf(where, sizeof where, "%s", op);
    }
    int code = store_code(rc);
    const char *why = "";
    if (rc == MDB_TXN_FULL) {
        why = "the transaction has too many dirty pages; split it: ";
        code = ZE_INTERNAL;
    } else if (code == ZE_MAP_FULL) {
        why = "the map is full: ";
    } else if (code == ZE_UNAVAILABLE) {
        why = "disk full or file size limit reached: ";
    } else {
        code = ZE_INTERNAL; /* MDB_NOTFOUND is never sticky */
    }
    char msg[STORE_ERRMSG_BYTES_MAX];
    snprintf(msg, sizeof msg, "store: %s failed: %s%s", where, why, mdb_strerror(rc));
    ztxn_fail(self, code, msg);
}

static ztxn_t *txn_new(zstore_t *store, ztxn_t *parent, bool write)
{
    ztxn_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        return NULL;
    }
    self->store = store;
    self->parent = parent;
    self->write = write;
    store->txns_open++;
    return self;
}

/* The spare read handle renewed for this thread, or NULL. */
static ztxn_t *spare_take(zstore_t *store)
{
    ztxn_t *self = store->spare;
    if (self == NULL || !pthread_equal(store->spare_thread, pthread_self())) {
        return NULL;
    }
    store->spare = NULL;
    if (mdb_txn_renew(self->txn) != 0) {
        mdb_txn_abort(self->txn);
        free(self);
        return NULL; /* a fresh begin reports what is wrong */
    }
    self->err = 0;
    self->errmsg[0] = '\0';
    self->outbox_known = false;
    store->txns_open++;
    return self;
}

/* Drop the spare read handle (before a remap, or closing). */
static void spare_drop(zstore_t *store)
{
    if (store->spare != NULL) {
        mdb_txn_abort(store->spare->txn);
        free(store->spare);
        store->spare = NULL;
    }
}

ztxn_t *ztxn_begin(zstore_t *store, bool write)
{
    ZASSERT(store != NULL);
    ZASSERT(!(write && store->write_open));
    if (!write) {
        ztxn_t *spare = spare_take(store);
        if (spare != NULL) {
            return spare;
        }
    }
    ztxn_t *self = txn_new(store, NULL, write);
    if (self == NULL) {
        return NULL;
    }
    if (write) {
        store->write_open = true;
    }
    int rc = mdb_txn_begin(store->env, NULL, write ? 0 : MDB_RDONLY, &self->txn);
    if (rc != 0) {
        self->txn = NULL;
        txn_fail_mdb(self, rc, write ? "begin write" : "begin read", -1);
    }
    return self;
}

ztxn_t *ztxn_begin_child(ztxn_t *parent)
{
    ZASSERT(parent != NULL && parent->write && !parent->child_open);
    ztxn_t *self = txn_new(parent->store, parent, true);
    if (self == NULL) {
        return NULL;
    }
    parent->child_open = true;
    if (parent->err != 0) {
        /* The parent cannot take writes; the child fails the same way. */
        ztxn_fail(self, parent->err, parent->errmsg);
        return self;
    }
    int rc = mdb_txn_begin(parent->store->env, parent->txn, 0, &self->txn);
    if (rc != 0) {
        self->txn = NULL;
        txn_fail_mdb(self, rc, "begin child", -1);
    }
    self->outbox_known = parent->outbox_known;
    self->outbox_last = parent->outbox_last;
    return self;
}

/* A top-level read transaction that finished cleanly is reset and kept as
 * the spare instead of freed. True when kept (*self_p is then NULL). */
static bool txn_keep(ztxn_t **self_p)
{
    ztxn_t *self = *self_p;
    zstore_t *store = self->store;
    if (self->write || self->parent != NULL || self->txn == NULL || self->err != 0 ||
        store->spare != NULL) {
        return false;
    }
    mdb_txn_reset(self->txn);
    store->spare = self;
    store->spare_thread = pthread_self();
    store->txns_open--;
    *self_p = NULL;
    return true;
}

/* Unlink from the store and the parent, and free. The MDB txn is already gone. */
static void txn_free(ztxn_t **self_p)
{
    ztxn_t *self = *self_p;
    self->store->txns_open--;
    if (self->parent != NULL) {
        self->parent->child_open = false;
    } else if (self->write) {
        self->store->write_open = false;
    }
    free(self);
    *self_p = NULL;
}

/* Storage errors (not input errors such as ZE_INVALID) in a child make the
 * parent's commit fail too: the parent no longer matches what the caller
 * believes was written. */
static void txn_propagate(ztxn_t *self)
{
    int err = self->err;
    if (self->parent != NULL &&
        (err == ZE_MAP_FULL || err == ZE_UNAVAILABLE || err == ZE_INTERNAL)) {
        ztxn_fail(self->parent, err, self->errmsg);
    }
}

int ztxn_commit(ztxn_t **self_p)
{
    ZASSERT(self_p != NULL && *self_p != NULL);
    ztxn_t *self = *self_p;
    ZASSERT(!self->child_open);
    if (self->err == 0 && !self->write) {
        if (txn_keep(self_p)) { /* a read snapshot has nothing to commit */
            return 0;
        }
        mdb_txn_abort(self->txn);
        self->txn = NULL;
    } else if (self->err == 0) {
        if (self->parent == NULL) {
            store_prealloc(self->store); /* under the write lock, before the pages are written */
        }
        int rc = mdb_txn_commit(self->txn); /* frees the txn, also on failure */
        self->txn = NULL;
        if (rc != 0) {
            txn_fail_mdb(self, rc, "commit", -1);
        } else if (self->parent != NULL) {
            self->parent->outbox_known = self->outbox_known;
            self->parent->outbox_last = self->outbox_last;
        }
    }
    if (self->txn != NULL) {
        mdb_txn_abort(self->txn);
        self->txn = NULL;
    }
    int err = self->err;
    txn_propagate(self);
    if (self->parent == NULL && err != 0 && err != ZE_INVALID) {
        /* The caller gets only the code; operators get the sentence. */
        zlog(err == ZE_MAP_FULL ? ZLOG_INFO : ZLOG_ERROR, "store_commit_failed", "error",
             zerr_name(err), "msg", self->errmsg, NULL);
    }
    txn_free(self_p);
    return err;
}

void ztxn_abort(ztxn_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    ztxn_t *self = *self_p;
    ZASSERT(!self->child_open);
    if (txn_keep(self_p)) {
        return;
    }
    if (self->txn != NULL) {
        mdb_txn_abort(self->txn);
        self->txn = NULL;
    }
    txn_free(self_p);
}

int ztxn_err(const ztxn_t *self)
{
    return self->err;
}

const char *ztxn_errmsg(const ztxn_t *self)
{
    return self->errmsg;
}

/* ------------------------------------------------------------- operations */

/* True when an operation may proceed. Asserts the caller's duties (a valid
 * table, no open child) and returns false on a sticky error. */
static bool txn_usable(ztxn_t *self, int table)
{
    ZASSERT(self != NULL);
    ZASSERT(!self->child_open);
    ZASSERT(table >= 0 && table < self->store->table_count);
    return self->err == 0;
}

/* Keys come from input: a bad one is a sticky ZE_INVALID, never a crash. */
static bool txn_key_ok(ztxn_t *self, int table, const void *key, size_t key_len, const char *what)
{
    if (key != NULL && key_len > 0 && key_len <= ZSTORE_KEY_BYTES_MAX) {
        return true;
    }
    char msg[STORE_ERRMSG_BYTES_MAX];
    snprintf(msg, sizeof msg, "store: %s for table \"%s\" is %zu bytes; it must be 1 to %d", what,
             self->store->names[table], key_len, ZSTORE_KEY_BYTES_MAX);
    ztxn_fail(self, ZE_INVALID, msg);
    return false;
}

static void txn_write_ok(const ztxn_t *self)
{
    ZASSERT(self->write);
}

/* Put with LMDB flags; with MDB_RESERVE, val->mv_data receives where to write. */
static void txn_put_flags(ztxn_t *self, int table, const void *key, size_t key_len, MDB_val *val,
                          unsigned flags)
{
    if (!txn_usable(self, table) || !txn_key_ok(self, table, key, key_len, "key")) {
        return;
    }
    txn_write_ok(self);
    if (table == ZSTORE_OUTBOX) {
        self->outbox_known = false; /* ztxn_outbox_put says what it wrote */
    }
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    int rc = mdb_put(self->txn, self->store->dbis[table], &k, val, flags);
    if (rc != 0) {
        txn_fail_mdb(self, rc, "put", table);
    }
}

void ztxn_put(ztxn_t *self, int table, const void *key, size_t key_len, const void *val,
              size_t val_len)
{
    static const uint8_t empty[1];
    MDB_val v = {.mv_size = val_len, .mv_data = (void *)(val != NULL ? val : empty)};
    ZASSERT(val != NULL || val_len == 0);
    txn_put_flags(self, table, key, key_len, &v, 0);
}

void ztxn_del(ztxn_t *self, int table, const void *key, size_t key_len)
{
    if (!txn_usable(self, table) || !txn_key_ok(self, table, key, key_len, "key")) {
        return;
    }
    txn_write_ok(self);
    if (table == ZSTORE_OUTBOX) {
        self->outbox_known = false;
    }
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    int rc = mdb_del(self->txn, self->store->dbis[table], &k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) { /* deleting a missing key is no change */
        txn_fail_mdb(self, rc, "del", table);
    }
}

int ztxn_get(ztxn_t *self, int table, const void *key, size_t key_len, zval_t *val)
{
    ZASSERT(val != NULL);
    if (!txn_usable(self, table) || !txn_key_ok(self, table, key, key_len, "key")) {
        return self->err;
    }
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    MDB_val v;
    int rc = mdb_get(self->txn, self->store->dbis[table], &k, &v);
    if (rc == MDB_NOTFOUND) {
        return ZE_NOT_FOUND;
    }
    if (rc != 0) {
        txn_fail_mdb(self, rc, "get", table);
        return self->err;
    }
    val->data = v.mv_data;
    val->len = v.mv_size;
    return 0;
}

/* The first key to visit: the later of start and prefix, since keys before
 * the prefix cannot match it. */
static void scan_first(const void *prefix, size_t prefix_len, const void *start, size_t start_len,
                       MDB_val *first)
{
    first->mv_data = (void *)prefix;
    first->mv_size = prefix_len;
    if (start == NULL || start_len == 0) {
        return;
    }
    size_t common = start_len < prefix_len ? start_len : prefix_len;
    int cmp = common > 0 ? memcmp(start, prefix, common) : 0;
    if (cmp > 0 || (cmp == 0 && start_len > prefix_len)) {
        first->mv_data = (void *)start;
        first->mv_size = start_len;
    }
}

/* Walk the cursor from `first` while keys carry the prefix. */
static int scan_walk(ztxn_t *self, int table, MDB_cursor *cur, const void *prefix,
                     size_t prefix_len, MDB_val *first, void *ctx, ztxn_row_fn on_row)
{
    MDB_val k = *first;
    MDB_val v;
    int rc = mdb_cursor_get(cur, &k, &v, first->mv_size > 0 ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size < prefix_len ||
            (prefix_len > 0 && memcmp(k.mv_data, prefix, prefix_len) != 0)) {
            return 0;
        }
        int stop = on_row(ctx, (zval_t){k.mv_data, k.mv_size}, (zval_t){v.mv_data, v.mv_size});
        if (stop != 0) {
            return stop;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc != MDB_NOTFOUND) {
        txn_fail_mdb(self, rc, "scan", table);
        return self->err;
    }
    return 0;
}

int ztxn_scan(ztxn_t *self, int table, const void *prefix, size_t prefix_len, const void *start,
              size_t start_len, void *ctx, ztxn_row_fn on_row)
{
    ZASSERT(on_row != NULL);
    ZASSERT(prefix != NULL || prefix_len == 0);
    if (!txn_usable(self, table)) {
        return self->err;
    }
    if (prefix_len > ZSTORE_KEY_BYTES_MAX) {
        txn_key_ok(self, table, prefix, prefix_len, "scan prefix");
        return self->err;
    }
    if (start != NULL && start_len > 0 &&
        !txn_key_ok(self, table, start, start_len, "scan start")) {
        return self->err;
    }
    MDB_val first;
    scan_first(prefix, prefix_len, start, start_len, &first);
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(self->txn, self->store->dbis[table], &cur);
    if (rc != 0) {
        txn_fail_mdb(self, rc, "scan", table);
        return self->err;
    }
    int result = scan_walk(self, table, cur, prefix, prefix_len, &first, ctx, on_row);
    mdb_cursor_close(cur);
    return result;
}

/* ------------------------------------------------------------------ outbox */

uint64_t ztxn_outbox_last(ztxn_t *self)
{
    if (!txn_usable(self, ZSTORE_OUTBOX)) {
        return 0;
    }
    if (self->outbox_known) {
        return self->outbox_last;
    }
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(self->txn, self->store->dbis[ZSTORE_OUTBOX], &cur);
    MDB_val k = {0, NULL};
    MDB_val v;
    if (rc == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        mdb_cursor_close(cur);
    }
    if (rc == MDB_NOTFOUND) {
        self->outbox_last = 0;
        self->outbox_known = true;
        return 0;
    }
    if (rc != 0) {
        txn_fail_mdb(self, rc, "last", ZSTORE_OUTBOX);
        return 0;
    }
    if (k.mv_size != 8) {
        ztxn_fail(self, ZE_INTERNAL, "store: an outbox key is not 8 bytes; the store is corrupt");
        return 0;
    }
    self->outbox_last = zstore_be64_get(k.mv_data);
    self->outbox_known = true;
    return self->outbox_last;
}

void ztxn_outbox_put(ztxn_t *self, uint64_t seq, const void *event, size_t len)
{
    uint64_t last = ztxn_outbox_last(self);
    if (self->err != 0) {
        return;
    }
    /* A gap or a repeat would break every subscriber's cursor. */
    ZASSERT(seq == last + 1);
    uint8_t key[8];
    zstore_be64_put(key, seq);
    static const uint8_t empty[1];
    ZASSERT(event != NULL || len == 0);
    MDB_val v = {.mv_size = len, .mv_data = (void *)(event != NULL ? event : empty)};
    /* seq is the largest key, so LMDB can skip the search. */
    txn_put_flags(self, ZSTORE_OUTBOX, key, sizeof key, &v, MDB_APPEND);
    if (self->err == 0) {
        self->outbox_last = seq;
        self->outbox_known = true;
    }
}

int ztxn_outbox_get(ztxn_t *self, uint64_t seq, zval_t *event)
{
    uint8_t key[8];
    zstore_be64_put(key, seq);
    return ztxn_get(self, ZSTORE_OUTBOX, key, sizeof key, event);
}

/* ---------------------------------------------------------------- requests */

static bool request_id_ok(ztxn_t *self, const char *request_id, size_t *len)
{
    ZASSERT(request_id != NULL);
    *len = strlen(request_id);
    if (*len > 0 && *len <= ZSTORE_REQUEST_ID_BYTES_MAX) {
        return true;
    }
    char msg[STORE_ERRMSG_BYTES_MAX];
    snprintf(msg, sizeof msg, "store: request_id is %zu bytes; it must be 1 to %d", *len,
             ZSTORE_REQUEST_ID_BYTES_MAX);
    ztxn_fail(self, ZE_INVALID, msg);
    return false;
}

int ztxn_request_get(ztxn_t *self, const char *request_id, zval_t *reply, int64_t *ts_ms)
{
    ZASSERT(reply != NULL && ts_ms != NULL);
    size_t id_len = 0;
    if (!txn_usable(self, ZSTORE_REQUESTS) || !request_id_ok(self, request_id, &id_len)) {
        return self->err;
    }
    zval_t v = {0};
    int rc = ztxn_get(self, ZSTORE_REQUESTS, request_id, id_len, &v);
    if (rc != 0) {
        return rc;
    }
    if (v.len < 8) {
        ztxn_fail(self, ZE_INTERNAL, "store: a requests value is shorter than 8 bytes");
        return self->err;
    }
    *ts_ms = (int64_t)zstore_be64_get(v.data);
    reply->data = (const uint8_t *)v.data + 8;
    reply->len = v.len - 8;
    return 0;
}

void ztxn_request_put(ztxn_t *self, const char *request_id, const void *reply, size_t len,
                      int64_t ts_ms)
{
    size_t id_len = 0;
    if (!txn_usable(self, ZSTORE_REQUESTS) || !request_id_ok(self, request_id, &id_len)) {
        return;
    }
    ZASSERT(reply != NULL || len == 0);
    ZASSERT(len <= SIZE_MAX - 8);
    /* MDB_RESERVE lets us write ts and reply into the map without a copy buffer. */
    MDB_val v = {.mv_size = 8 + len, .mv_data = NULL};
    txn_put_flags(self, ZSTORE_REQUESTS, request_id, id_len, &v, MDB_RESERVE);
    if (self->err != 0) {
        return;
    }
    zstore_be64_put(v.mv_data, (uint64_t)ts_ms);
    if (len > 0) {
        memcpy((uint8_t *)v.mv_data + 8, reply, len);
    }
}

/* ----------------------------------------------------------------- cursors */

uint64_t ztxn_cursor_get(ztxn_t *self, const char *source)
{
    ZASSERT(source != NULL);
    zval_t v = {0};
    int rc = ztxn_get(self, ZSTORE_CURSORS, source, strlen(source), &v);
    if (rc != 0) {
        return 0;
    }
    if (v.len != 8) {
        ztxn_fail(self, ZE_INTERNAL, "store: a cursors value is not 8 bytes");
        return 0;
    }
    return zstore_be64_get(v.data);
}

void ztxn_cursor_set(ztxn_t *self, const char *source, uint64_t seq)
{
    ZASSERT(source != NULL);
    uint8_t val[8];
    zstore_be64_put(val, seq);
    ztxn_put(self, ZSTORE_CURSORS, source, strlen(source), val, sizeof val);
}
