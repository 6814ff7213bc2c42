/* zhilictl import / export / qr: the grid service's units as CSV, and the
 * printable QR codes of grids and buildings (docs/grid.md).
 *
 *   zhilictl import units FILE.csv [--skip-bad]
 *   zhilictl export units --area PREFIX [--out FILE]
 *   zhilictl qr --area PREFIX --out DIR [--base-url URL] [--format svg|png]
 *
 * An import checks every row with the service's own rules (services/grid/
 * grid.c) before it sends anything: a file with a bad row imports nothing
 * unless --skip-bad. It sends batches of up to ZGRID_IMPORT_UNITS_MAX units,
 * parents first, with request ids made of the file's hash and the batch
 * index, so running the same import again changes nothing twice.
 * Exit status: 0 done, 1 bad rows or a refusal, 2 usage or transport. */
#include <errno.h>
#include <qrencode.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/codec.h"
#include "common/err.h"
#include "services/grid/grid.h"
#include "tools/zhilictl/commands.h"

#define CALL_TIMEOUT_MS 30000
#define FILE_HASH_BYTES 16
#define QR_MODULE_PX 8
#define QR_QUIET_MODULES 4
#define BASE_URL_BYTES_MAX 200
#define BASE_URL_DEFAULT "http://127.0.0.1:8080"
#define CSV_LINE_BYTES_MAX (ZGRID_CSV_COLUMNS_MAX * (ZGRID_CSV_FIELD_BYTES_MAX + 1))

static int usage(void)
{
    fprintf(stderr,
            "usage: zhilictl import units FILE.csv [--skip-bad]\n"
            "       zhilictl export units --area PREFIX [--out FILE]\n"
            "       zhilictl qr --area PREFIX --out DIR [--base-url URL] [--format svg|png]\n"
            "CSV columns: " ZGRID_CSV_HEADER " (docs/grid.md)\n");
    return 2;
}

/* Send a command as the operator; 0 with *reply, or 2 after saying so. */
static int call(zbus_client_t *client, Zhili__V1__Command *cmd, Zhili__V1__Reply **reply)
{
    Zhili__V1__Actor cli = ZHILI__V1__ACTOR__INIT;
    cli.id = "zhilictl";
    cli.role = "admin";
    cmd->actor = &cli;
    int rc = zbus_call(client, "grid", cmd, CALL_TIMEOUT_MS, reply);
    cmd->actor = NULL;
    if (rc != 0) {
        fprintf(stderr, "zhilictl: no reply from service 'grid' within %d ms (%s)\n",
                CALL_TIMEOUT_MS, zerr_name(rc));
        return 2;
    }
    return 0;
}

/* ---- reading the file ---------------------------------------------------------------- */

typedef struct {
    long line;
    char *code, *name, *leader, *branch;
    bool has_centroid;
    zgrid_point_t centroid;
    zgrid_point_t *boundary;
    size_t n_boundary;
    bool bad;
} row_t;

typedef struct {
    const char *path;
    row_t *rows;
    size_t n, cap;
    size_t bad;
    size_t shown;
    char hash_hex[2 * FILE_HASH_BYTES + 1];
} import_t;

static void row_bad(import_t *im, row_t *r, long line, const char *field, const char *msg)
{
    if (r != NULL) {
        r->bad = true;
    }
    im->bad++;
    if (im->shown++ < ZGRID_CSV_ERRORS_SHOWN_MAX) {
        fprintf(stderr, "%s:%ld: %s: %s\n", im->path, line, field, msg);
    }
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "zhilictl: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(ZGRID_CSV_FILE_BYTES_MAX + 1);
    ZASSERT(buf != NULL);
    *len = fread(buf, 1, ZGRID_CSV_FILE_BYTES_MAX + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed || *len > ZGRID_CSV_FILE_BYTES_MAX) {
        fprintf(stderr, "zhilictl: %s: %s\n", path,
                failed ? "read error" : "larger than the 64 MiB an import takes; split it");
        free(buf);
        return NULL;
    }
    return buf;
}

static char *dup_str(const char *s)
{
    char *d = strdup(s ? s : "");
    ZASSERT(d != NULL);
    return d;
}

static void row_keep(import_t *im, long line, const zgrid_unit_in_t *u)
{
    if (im->n == im->cap) {
        im->cap = im->cap ? im->cap * 2 : 1024;
        im->rows = realloc(im->rows, im->cap * sizeof *im->rows);
        ZASSERT(im->rows != NULL);
    }
    row_t *r = &im->rows[im->n++];
    memset(r, 0, sizeof *r);
    r->line = line;
    r->code = dup_str(u->code);
    r->name = dup_str(u->name);
    r->leader = dup_str(u->leader);
    r->branch = dup_str(u->branch);
    r->has_centroid = u->has_centroid;
    r->centroid = u->centroid;
    r->n_boundary = u->n_boundary;
    if (u->n_boundary > 0) {
        r->boundary = malloc(u->n_boundary * sizeof *r->boundary);
        ZASSERT(r->boundary != NULL);
        memcpy(r->boundary, u->boundary, u->n_boundary * sizeof *r->boundary);
    }
}

/* Every record of the file: good rows kept, bad ones reported by line. */
static int parse_file(import_t *im, const char *data, size_t len)
{
    zgrid_csv_t csv;
    zgrid_csv_init(&csv, data, len);
    char *buf = malloc(CSV_LINE_BYTES_MAX);
    zgrid_point_t *pts = malloc((ZGRID_BOUNDARY_POINTS_MAX + 1) * sizeof *pts);
    ZASSERT(buf != NULL && pts != NULL);
    char *fields[ZGRID_CSV_COLUMNS_MAX];
    char why[160];
    long line = 0;
    zgrid_csv_columns_t cols;
    zgrid_err_t err;
    int n = zgrid_csv_next(&csv, buf, CSV_LINE_BYTES_MAX, fields, ZGRID_CSV_COLUMNS_MAX, &line, why,
                           sizeof why);
    int rc = 0;
    if (n <= 0 || zgrid_csv_header(fields, n, &cols, &err) != 0) {
        row_bad(im, NULL, n < 0 ? line : 1, "header",
                n < 0    ? why
                : n == 0 ? "the file is empty; it needs a header line"
                         : err.message);
        rc = -1;
    }
    size_t records = 0;
    while (rc == 0 && (n = zgrid_csv_next(&csv, buf, CSV_LINE_BYTES_MAX, fields,
                                          ZGRID_CSV_COLUMNS_MAX, &line, why, sizeof why)) != 0) {
        zgrid_unit_in_t u;
        if (n == 1 && fields[0][0] == '\0') {
            continue; /* a blank line */
        }
        if (++records > ZGRID_CSV_ROWS_MAX) {
            row_bad(im, NULL, line, "file", "more than 200000 rows; split the file");
            rc = -1;
        } else if (n < 0) {
            row_bad(im, NULL, line, "row", why);
        } else if (zgrid_csv_unit(fields, n, &cols, &u, pts, &err) != 0) {
            row_bad(im, NULL, line, err.field, err.message);
        } else {
            row_keep(im, line, &u);
        }
    }
    free(buf);
    free(pts);
    return rc;
}

static int row_by_code(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    size_t lx = strlen(x->code), ly = strlen(y->code);
    if (lx != ly) {
        return lx < ly ? -1 : 1; /* parents before children */
    }
    int c = strcmp(x->code, y->code);
    return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

static int row_code_cmp(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    size_t lx = strlen(x->code), ly = strlen(y->code);
    return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->code, y->code);
}

/* The first row of code (the one a duplicate is measured against). */
static row_t *find_row(import_t *im, const char *code)
{
    row_t key = {.code = (char *)code};
    row_t *r = bsearch(&key, im->rows, im->n, sizeof *im->rows, row_code_cmp);
    while (r != NULL && r > im->rows && strcmp(r[-1].code, code) == 0) {
        r--;
    }
    return r;
}

/* Does the service know the unit? 1 yes, 0 no, -1 transport error. */
static int service_has(zbus_client_t *client, const char *code)
{
    Zhili__Grid__UnitGet g = ZHILI__GRID__UNIT_GET__INIT;
    g.code = (char *)code;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_GRID_UNIT_GET;
    cmd.grid_unit_get = &g;
    Zhili__V1__Reply *r = NULL;
    if (call(client, &cmd, &r) != 0) {
        return -1;
    }
    int has = r->status == ZHILI__V1__STATUS__STATUS_OK;
    zhili__v1__reply__free_unpacked(r, NULL);
    return has;
}

/* Duplicates, and parents that are neither good rows of the file nor units
 * the service has. Rows are sorted parents first, so a parent's verdict is
 * final when its children are judged. */
static int check_rows(zbus_client_t *client, import_t *im)
{
    qsort(im->rows, im->n, sizeof *im->rows, row_by_code);
    char msg[200], known_missing[ZAREA_BYTES_MAX + 1] = "";
    for (size_t i = 0; i < im->n; i++) {
        row_t *r = &im->rows[i];
        if (i > 0 && strcmp(im->rows[i - 1].code, r->code) == 0) {
            snprintf(msg, sizeof msg, "code %s already appears on line %ld", r->code,
                     im->rows[i - 1].line);
            row_bad(im, r, r->line, "code", msg);
            continue;
        }
        char parent[ZAREA_BYTES_MAX + 1];
        zarea_parent(r->code, parent);
        if (parent[0] == '\0') {
            continue;
        }
        row_t *p = find_row(im, parent);
        if (p != NULL && !p->bad) {
            continue;
        }
        int has = strcmp(parent, known_missing) == 0 ? 0 : service_has(client, parent);
        if (has < 0) {
            return 2;
        }
        if (has == 0) {
            snprintf(known_missing, sizeof known_missing, "%s", parent);
            snprintf(msg, sizeof msg, "the parent unit %s is %s", parent,
                     p != NULL ? "a bad row of this file"
                               : "neither in the file nor in the grid "
                                 "service");
            row_bad(im, r, r->line, "code", msg);
        }
    }
    return 0;
}

/* ---- sending ---------------------------------------------------------------------------- */

static Zhili__Grid__UnitUpsert *upsert_of(const row_t *r)
{
    Zhili__Grid__UnitUpsert *u = calloc(1, sizeof *u);
    ZASSERT(u != NULL);
    zhili__grid__unit_upsert__init(u);
    u->code = r->code;
    u->name = r->name;
    u->leader = r->leader;
    u->branch = r->branch;
    if (r->has_centroid) {
        Zhili__Grid__Point *c = calloc(1, sizeof *c);
        ZASSERT(c != NULL);
        zhili__grid__point__init(c);
        c->lat = r->centroid.lat;
        c->long_ = r->centroid.lon;
        u->centroid_present_case = ZHILI__GRID__UNIT_UPSERT__CENTROID_PRESENT_CENTROID;
        u->centroid = c;
    }
    if (r->n_boundary > 0) {
        u->boundary = calloc(r->n_boundary, sizeof *u->boundary);
        Zhili__Grid__Point *pts = calloc(r->n_boundary, sizeof *pts);
        ZASSERT(u->boundary != NULL && pts != NULL);
        for (size_t i = 0; i < r->n_boundary; i++) {
            zhili__grid__point__init(&pts[i]);
            pts[i].lat = r->boundary[i].lat;
            pts[i].long_ = r->boundary[i].lon;
            u->boundary[i] = &pts[i];
        }
        u->n_boundary = r->n_boundary;
    }
    return u;
}

static void upsert_free(Zhili__Grid__UnitUpsert *u)
{
    free(u->centroid);
    if (u->n_boundary > 0) {
        free(u->boundary[0]);
    }
    free(u->boundary);
    free(u);
}

typedef struct {
    uint32_t created, changed, unchanged, batches;
} totals_t;

/* One batch: units[0..n) with request id "grid-import-<hash>-<index>". */
static int send_batch(zbus_client_t *client, import_t *im, Zhili__Grid__UnitUpsert **units,
                      size_t n, size_t index, long first_line, totals_t *t)
{
    char rid[64];
    snprintf(rid, sizeof rid, "grid-import-%s-%zu", im->hash_hex, index);
    Zhili__Grid__UnitsImport imp = ZHILI__GRID__UNITS_IMPORT__INIT;
    imp.units = units;
    imp.n_units = n;
    imp.source = im->hash_hex;
    Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
    cmd.request_id = rid;
    cmd.body_case = ZHILI__V1__COMMAND__BODY_GRID_UNITS_IMPORT;
    cmd.grid_units_import = &imp;
    Zhili__V1__Reply *r = NULL;
    int rc = call(client, &cmd, &r);
    if (rc != 0) {
        fprintf(stderr,
                "zhilictl: batch %zu was not confirmed; running the same import again "
                "is safe\n",
                index + 1);
        return rc;
    }
    if (r->status != ZHILI__V1__STATUS__STATUS_OK) {
        fprintf(stderr,
                "zhilictl: batch %zu (rows from line %ld) was refused: %s; batches "
                "before it were imported, and running the import again after the fix "
                "is safe\n",
                index + 1, first_line, r->message);
        rc = 1;
    } else if (r->result_case == ZHILI__V1__REPLY__RESULT_GRID_IMPORT) {
        t->created += r->grid_import->created;
        t->changed += r->grid_import->changed;
        t->unchanged += r->grid_import->unchanged;
        t->batches++;
    }
    zhili__v1__reply__free_unpacked(r, NULL);
    return rc;
}

/* Batches of at most ZGRID_IMPORT_UNITS_MAX units and
 * ZGRID_IMPORT_BATCH_BYTES_MAX bytes, in the sorted order (parents first). */
static int send_all(zbus_client_t *client, import_t *im, totals_t *t)
{
    Zhili__Grid__UnitUpsert **batch = calloc(ZGRID_IMPORT_UNITS_MAX, sizeof *batch);
    ZASSERT(batch != NULL);
    size_t n = 0, bytes = 0, index = 0;
    long first_line = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i <= im->n; i++) {
        Zhili__Grid__UnitUpsert *u = NULL;
        size_t len = 0;
        if (i < im->n) {
            if (im->rows[i].bad) {
                continue;
            }
            u = upsert_of(&im->rows[i]);
            len = protobuf_c_message_get_packed_size(&u->base) + 8;
        }
        if (n > 0 && (u == NULL || n == ZGRID_IMPORT_UNITS_MAX ||
                      bytes + len > ZGRID_IMPORT_BATCH_BYTES_MAX)) {
            rc = send_batch(client, im, batch, n, index++, first_line, t);
            for (size_t k = 0; k < n; k++) {
                upsert_free(batch[k]);
            }
            n = 0;
            bytes = 0;
        }
        if (u != NULL && rc != 0) {
            upsert_free(u);
        } else if (u != NULL) {
            first_line = n == 0 ? im->rows[i].line : first_line;
            batch[n++] = u;
            bytes += len;
        }
    }
    free(batch);
    return rc;
}

static void import_free(import_t *im)
{
    for (size_t i = 0; i < im->n; i++) {
        free(im->rows[i].code);
        free(im->rows[i].name);
        free(im->rows[i].leader);
        free(im->rows[i].branch);
        free(im->rows[i].boundary);
    }
    free(im->rows);
}

static int cmd_import(zbus_client_t *client, int argc, char **argv)
{
    bool skip_bad = false;
    const char *path = NULL;
    if (argc < 2 || strcmp(argv[0], "units") != 0) {
        return usage();
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--skip-bad") == 0) {
            skip_bad = true;
        } else if (path == NULL && argv[i][0] != '-') {
            path = argv[i];
        } else {
            return usage();
        }
    }
    if (path == NULL) {
        return usage();
    }
    size_t len = 0;
    char *data = slurp(path, &len);
    if (data == NULL) {
        return 2;
    }
    import_t im = {.path = path};
    uint8_t hash[FILE_HASH_BYTES];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)data, len, NULL, 0);
    sodium_bin2hex(im.hash_hex, sizeof im.hash_hex, hash, sizeof hash);
    int rc = parse_file(&im, data, len) != 0 ? 1 : check_rows(client, &im);
    free(data);
    if (rc == 1) {
        fprintf(stderr, "zhilictl: %s cannot be read as a unit file; nothing was imported\n", path);
    }
    size_t good = im.n;
    for (size_t i = 0; i < im.n; i++) {
        good -= im.rows[i].bad;
    }
    if (rc == 0 && im.bad > 0 && !skip_bad) {
        if (im.shown > ZGRID_CSV_ERRORS_SHOWN_MAX) {
            fprintf(stderr, "%s: … and %zu more\n", path, im.shown - ZGRID_CSV_ERRORS_SHOWN_MAX);
        }
        fprintf(stderr,
                "zhilictl: %s has %zu bad row(s); nothing was imported (fix them, or "
                "pass --skip-bad to import the %zu good rows)\n",
                path, im.bad, good);
        rc = 1;
    }
    totals_t t = {0, 0, 0, 0};
    if (rc == 0 && good > 0) {
        rc = send_all(client, &im, &t);
    }
    if (rc == 0) {
        printf("imported %s: %zu units in %u batches: created %u, changed %u, unchanged %u; "
               "skipped %zu bad rows\n",
               path, good, t.batches, t.created, t.changed, t.unchanged, im.bad);
    }
    import_free(&im);
    return rc;
}

/* ---- listing units ------------------------------------------------------------------------ */

typedef int (*unit_fn)(void *arg, const Zhili__Grid__Unit *u);

/* Every unit under area, in code order, page by page. */
static int each_unit(zbus_client_t *client, const char *area, void *arg, unit_fn on_unit)
{
    char after[ZGRID_KEY_HEX_MAX + 1] = "";
    for (;;) {
        Zhili__Grid__UnitsList l = ZHILI__GRID__UNITS_LIST__INIT;
        l.after = after;
        Zhili__V1__Command cmd = ZHILI__V1__COMMAND__INIT;
        cmd.area = (char *)area;
        cmd.body_case = ZHILI__V1__COMMAND__BODY_GRID_UNITS_LIST;
        cmd.grid_units_list = &l;
        Zhili__V1__Reply *r = NULL;
        int rc = call(client, &cmd, &r);
        if (rc != 0) {
            return rc;
        }
        if (r->status != ZHILI__V1__STATUS__STATUS_OK) {
            fprintf(stderr, "zhilictl: the grid service refused the list: %s\n", r->message);
            zhili__v1__reply__free_unpacked(r, NULL);
            return 1;
        }
        for (size_t i = 0; rc == 0 && i < r->grid_units->n_units; i++) {
            rc = on_unit(arg, r->grid_units->units[i]);
        }
        snprintf(after, sizeof after, "%s", r->grid_units->next_after);
        zhili__v1__reply__free_unpacked(r, NULL);
        if (rc != 0 || after[0] == '\0') {
            return rc;
        }
    }
}

static bool area_arg(const char *area)
{
    if (!zarea_prefix_valid(area)) {
        fprintf(stderr, "zhilictl: --area must be an area-code prefix of up to 18 digits\n");
        return false;
    }
    return true;
}

/* ---- export --------------------------------------------------------------------------------- */

static void csv_put(FILE *out, const char *s, bool last)
{
    size_t cap = 2 * strlen(s) + 3;
    char *buf = malloc(cap);
    ZASSERT(buf != NULL);
    if (zgrid_csv_field(s, buf, cap) >= 0) {
        fputs(buf, out);
    }
    fputs(last ? "\r\n" : ",", out);
    free(buf);
}

static int export_unit(void *arg, const Zhili__Grid__Unit *u)
{
    FILE *out = arg;
    char lat[32] = "", lon[32] = "";
    if (u->centroid_present_case == ZHILI__GRID__UNIT__CENTROID_PRESENT_CENTROID) {
        snprintf(lat, sizeof lat, "%.15g", u->centroid->lat);
        snprintf(lon, sizeof lon, "%.15g", u->centroid->long_);
    }
    csv_put(out, u->code, false);
    csv_put(out, u->name, false);
    csv_put(out, u->leader, false);
    csv_put(out, u->branch, false);
    csv_put(out, lat, false);
    csv_put(out, lon, false);
    for (size_t i = 0; i < u->n_boundary; i++) {
        fprintf(out, "%s%.15g %.15g", i ? ";" : "", u->boundary[i]->lat, u->boundary[i]->long_);
    }
    fputs("\r\n", out);
    return ferror(out) ? 2 : 0;
}

static int cmd_export(zbus_client_t *client, int argc, char **argv)
{
    const char *area = NULL, *path = NULL;
    if (argc < 1 || strcmp(argv[0], "units") != 0) {
        return usage();
    }
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v != NULL && strcmp(argv[i], "--area") == 0) {
            area = v;
        } else if (v != NULL && strcmp(argv[i], "--out") == 0) {
            path = v;
        } else {
            return usage();
        }
    }
    if (area == NULL || !area_arg(area)) {
        return area == NULL ? usage() : 2;
    }
    FILE *out = path ? fopen(path, "wb") : stdout;
    if (out == NULL) {
        fprintf(stderr, "zhilictl: cannot write %s: %s\n", path, strerror(errno));
        return 2;
    }
    /* UTF-8 with a BOM, so Excel shows the Chinese names; import skips it. */
    fputs("\xEF\xBB\xBF" ZGRID_CSV_HEADER "\r\n", out);
    int rc = each_unit(client, area, out, export_unit);
    if (fflush(out) != 0 && rc == 0) {
        fprintf(stderr, "zhilictl: writing %s failed: %s\n", path ? path : "stdout",
                strerror(errno));
        rc = 2;
    }
    if (path != NULL) {
        fclose(out);
    }
    return rc;
}

/* ---- QR codes ----------------------------------------------------------------------------------
 */

typedef struct {
    const char *dir;
    const char *base_url;
    bool png;
    size_t written;
} qr_job_t;

static void xml_put(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* A printable page: the code, the unit's name and area code, and the short
 * code a resident can type when the camera fails. */
static void write_svg(FILE *f, const QRcode *q, const Zhili__Grid__Unit *u, const char *url)
{
    int side = (q->width + 2 * QR_QUIET_MODULES) * QR_MODULE_PX;
    int height = side + 96;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\">\n<title>",
            side, height, side, height);
    xml_put(f, u->name);
    fputs(" 扫码即办</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n<path d=\"", f);
    for (int y = 0; y < q->width; y++) {
        for (int x = 0; x < q->width; x++) {
            if (q->data[y * q->width + x] & 1) {
                fprintf(f, "M%d %dh%dv%dh-%dz", (x + QR_QUIET_MODULES) * QR_MODULE_PX,
                        (y + QR_QUIET_MODULES) * QR_MODULE_PX, QR_MODULE_PX, QR_MODULE_PX,
                        QR_MODULE_PX);
            }
        }
    }
    fprintf(f,
            "\" fill=\"#000\"/>\n<g font-family=\"sans-serif\" text-anchor=\"middle\" "
            "fill=\"#000\">\n<text x=\"%d\" y=\"%d\" font-size=\"22\">",
            side / 2, side + 20);
    xml_put(f, u->name);
    fprintf(f,
            " · 扫码即办</text>\n<text x=\"%d\" y=\"%d\" font-size=\"14\">%s</text>\n"
            "<text x=\"%d\" y=\"%d\" font-size=\"14\">",
            side / 2, side + 48, u->code, side / 2, side + 72);
    xml_put(f, url);
    fputs("</text>\n</g>\n</svg>\n", f);
}

/* ---- a PNG without zlib: stored deflate blocks ---- */

static uint32_t crc32_of(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static void be32(uint8_t *out, uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

static void png_chunk(FILE *f, const char *type, const uint8_t *data, size_t len)
{
    uint8_t head[8], tail[4];
    be32(head, (uint32_t)len);
    memcpy(head + 4, type, 4);
    uint32_t crc = crc32_of(crc32_of(0, head + 4, 4), data, len);
    be32(tail, crc);
    fwrite(head, 1, 8, f);
    if (len > 0) { /* IEND has no data (NULL): fwrite must not be given it */
        fwrite(data, 1, len, f);
    }
    fwrite(tail, 1, 4, f);
}

static void write_png(FILE *f, const QRcode *q)
{
    uint32_t side = (uint32_t)(q->width + 2 * QR_QUIET_MODULES) * QR_MODULE_PX;
    size_t raw_len = (size_t)side * (side + 1);
    uint8_t *raw = malloc(raw_len);
    ZASSERT(raw != NULL);
    for (uint32_t y = 0; y < side; y++) {
        uint8_t *row = raw + (size_t)y * (side + 1);
        row[0] = 0; /* filter: none */
        int my = (int)(y / QR_MODULE_PX) - QR_QUIET_MODULES;
        for (uint32_t x = 0; x < side; x++) {
            int mx = (int)(x / QR_MODULE_PX) - QR_QUIET_MODULES;
            bool dark = my >= 0 && mx >= 0 && my < q->width && mx < q->width &&
                        (q->data[my * q->width + mx] & 1);
            row[1 + x] = dark ? 0 : 255;
        }
    }
    size_t blocks = (raw_len + 65534) / 65535;
    size_t z_len = 2 + raw_len + 5 * blocks + 4;
    uint8_t *z = malloc(z_len);
    ZASSERT(z != NULL);
    size_t o = 0;
    z[o++] = 0x78;
    z[o++] = 0x01;
    uint32_t a = 1, b = 0;
    for (size_t at = 0; at < raw_len; at += 65535) {
        size_t n = raw_len - at < 65535 ? raw_len - at : 65535;
        z[o++] = at + n == raw_len ? 1 : 0;
        z[o++] = (uint8_t)(n & 0xFF);
        z[o++] = (uint8_t)(n >> 8);
        z[o++] = (uint8_t)(~n & 0xFF);
        z[o++] = (uint8_t)((~n >> 8) & 0xFF);
        memcpy(z + o, raw + at, n);
        o += n;
        for (size_t i = 0; i < n; i++) {
            a = (a + raw[at + i]) % 65521;
            b = (b + a) % 65521;
        }
    }
    be32(z + o, (b << 16) | a);
    o += 4;
    uint8_t ihdr[13];
    be32(ihdr, side);
    be32(ihdr + 4, side);
    ihdr[8] = 8; /* bit depth */
    ihdr[9] = 0; /* grayscale */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    png_chunk(f, "IHDR", ihdr, sizeof ihdr);
    png_chunk(f, "IDAT", z, o);
    png_chunk(f, "IEND", NULL, 0);
    free(z);
    free(raw);
}

static int qr_unit(void *arg, const Zhili__Grid__Unit *u)
{
    qr_job_t *job = arg;
    if (u->qr[0] == '\0') {
        return 0; /* only grids and buildings carry one */
    }
    char url[BASE_URL_BYTES_MAX + 64], path[4096];
    snprintf(url, sizeof url, "%s/api/v1/qr/%s", job->base_url, u->qr);
    snprintf(path, sizeof path, "%s/%s.%s", job->dir, u->code, job->png ? "png" : "svg");
    QRcode *q = QRcode_encodeString(url, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (q == NULL) {
        fprintf(stderr, "zhilictl: cannot encode %s: %s\n", url, strerror(errno));
        return 2;
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "zhilictl: cannot write %s: %s\n", path, strerror(errno));
        QRcode_free(q);
        return 2;
    }
    if (job->png) {
        write_png(f, q);
    } else {
        write_svg(f, q, u, url);
    }
    QRcode_free(q);
    if (fclose(f) != 0) {
        fprintf(stderr, "zhilictl: writing %s failed: %s\n", path, strerror(errno));
        return 2;
    }
    job->written++;
    return 0;
}

static bool base_url_ok(const char *url)
{
    size_t len = strlen(url);
    if (len == 0 || len > BASE_URL_BYTES_MAX ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)url[i] <= ' ' || url[i] == '"' || url[i] == '<' || url[i] == '>') {
            return false;
        }
    }
    return true;
}

static int cmd_qr(zbus_client_t *client, int argc, char **argv)
{
    const char *area = NULL, *format = "svg";
    char base[BASE_URL_BYTES_MAX + 1];
    qr_job_t job = {NULL, base, false, 0};
    snprintf(base, sizeof base, "%s",
             getenv("ZHILI_PUBLIC_URL") ? getenv("ZHILI_PUBLIC_URL") : BASE_URL_DEFAULT);
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            return usage();
        } else if (strcmp(argv[i], "--area") == 0) {
            area = v;
        } else if (strcmp(argv[i], "--out") == 0) {
            job.dir = v;
        } else if (strcmp(argv[i], "--base-url") == 0) {
            snprintf(base, sizeof base, "%s", v);
        } else if (strcmp(argv[i], "--format") == 0) {
            format = v;
        } else {
            return usage();
        }
    }
    if (area == NULL || job.dir == NULL) {
        return usage();
    }
    if (!area_arg(area)) {
        return 2;
    }
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') {
        base[--blen] = '\0';
    }
    if (!base_url_ok(base)) {
        fprintf(stderr,
                "zhilictl: --base-url must be an http:// or https:// URL of at most %d "
                "characters without spaces\n",
                BASE_URL_BYTES_MAX);
        return 2;
    }
    if (strcmp(format, "svg") != 0 && strcmp(format, "png") != 0) {
        fprintf(stderr, "zhilictl: --format must be svg or png\n");
        return 2;
    }
    job.png = strcmp(format, "png") == 0;
    if (mkdir(job.dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "zhilictl: cannot create %s: %s\n", job.dir, strerror(errno));
        return 2;
    }
    int rc = each_unit(client, area, &job, qr_unit);
    if (rc == 0) {
        printf("wrote %zu QR codes (%s) to %s\n", job.written, format, job.dir);
    }
    return rc;
}

int zctl_grid(zbus_client_t *client, const zcfg_common_t *cfg, int argc, char **argv)
{
    (void)cfg;
    if (sodium_init() < 0) {
        fprintf(stderr, "zhilictl: libsodium could not be initialised\n");
        return 2;
    }
    if (strcmp(argv[0], "import") == 0) {
        return cmd_import(client, argc - 1, argv + 1);
    }
    if (strcmp(argv[0], "export") == 0) {
        return cmd_export(client, argc - 1, argv + 1);
    }
    return cmd_qr(client, argc, argv);
}
