/* Realistic 12345 petitions (petgen.h). */
#include "tools/zhilictl/petgen.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/grid/grid.h"
#include "services/grid/limits.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define AREA_BYTES_MAX 18     /* a building's code */
#define ADDRESS_BYTES_MAX 240 /* petitions take 300; room for the unit and room */

/* A unit of the file: its code and its name (JSON-escaped) in the arena. */
typedef struct {
    char code[AREA_BYTES_MAX + 1];
    size_t name_off, name_len;
} unit_t;

struct zpg_units {
    unit_t *units; /* sorted by code, no duplicates */
    size_t count;
    char *names; /* the arena of escaped names */
    size_t names_len, names_cap;
    size_t *places; /* indexes of the units petitions may lie at */
    size_t place_count;
};

typedef struct {
    const char *code;
    const char *const *texts;
    size_t count;
} category_t;

static const char *const property[] = {
    "小区电梯经常故障停运，老人上下楼困难，物业维修不及时",
    "物业收费后楼道保洁不到位，垃圾堆放多日无人清理",
    "单元门禁损坏一个多月，物业一直未修，存在安全隐患",
    "屋顶漏水影响顶楼住户，多次找物业未解决",
    "物业擅自提高停车管理费，未公示收费依据",
};
static const char *const noise[] = {
    "楼上住户夜间装修，晚上十点后仍在施工，影响休息",
    "小区门口烧烤店深夜噪音扰民，油烟也很大",
    "广场舞音响音量过大，每天晚上持续到九点半以后",
    "附近工地夜间打桩施工，噪音很大，希望核实是否有夜间施工许可",
};
static const char *const sanitation[] = {
    "小区垃圾桶满溢，连续三天未清运，气味难闻",
    "化粪池堵塞外溢，污水流到单元门口",
    "楼道内有人长期堆放杂物和废品，影响卫生和消防",
    "小区绿化带内蚊虫多，希望安排消杀",
};
static const char *const parking[] = {
    "有车辆长期占用消防通道，救护车无法通行",
    "小区内乱停车严重，早晚高峰出入困难",
    "外来车辆占用业主车位，物业不管",
    "共享单车堆放在小区门口人行道上，影响通行",
};
static const char *const neighbor[] = {
    "楼上卫生间漏水渗到我家天花板，协商无果",
    "邻居在公共楼道安装鞋柜，占用公共空间",
    "邻居饲养大型犬不拴绳，多次吓到孩子",
    "相邻住户空调外机正对我家窗户，噪音和热风影响生活",
};
static const char *const municipal[] = {
    "小区外道路路灯不亮，晚上出行不安全", "路边井盖缺失，存在安全隐患，请尽快处理",
    "供暖温度不达标，室内只有十五度",     "小区突然停水，没有提前通知，什么时候恢复",
    "人行道地砖破损翘起，老人容易绊倒",
};
static const char *const safety[] = {
    "地下室有人私拉电线给电动车充电，存在火灾隐患",
    "小区监控大部分损坏，近期发生多起电动车被盗",
    "楼道消防栓内没有水带，灭火器过期",
    "有陌生人频繁在小区内推销，怀疑诈骗",
};
static const char *const other[] = {
    "咨询老旧小区改造的申请条件和办理流程",
    "希望在小区增设老年人休闲座椅和健身器材",
    "咨询社区养老服务中心的开放时间和服务内容",
};

static const category_t categories[] = {
    {"property", property, ARRAY_LEN(property)},
    {"noise", noise, ARRAY_LEN(noise)},
    {"sanitation", sanitation, ARRAY_LEN(sanitation)},
    {"parking", parking, ARRAY_LEN(parking)},
    {"neighbor_dispute", neighbor, ARRAY_LEN(neighbor)},
    {"municipal", municipal, ARRAY_LEN(municipal)},
    {"public_safety", safety, ARRAY_LEN(safety)},
    {"other", other, ARRAY_LEN(other)},
};

static const char *const streets[] = {"东昌街道", "桃源街道", "五道江镇", "鸭园镇", "铁厂镇"};
static const char *const compounds[] = {"幸福家园", "和平小区", "龙泉花园", "春华苑",
                                        "江畔名居", "钢城新村", "翠湖湾",   "建设小区"};
static const char *const surnames[] = {"张", "王", "李", "刘", "陈", "杨", "赵", "黄", "周", "吴"};

static uint64_t next(zpg_t *g)
{
    uint64_t x = g->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g->state = x;
    return x * 2685821657736338717ull;
}

static size_t pick(zpg_t *g, size_t n)
{
    return (size_t)(next(g) % n);
}

int zpg_init(zpg_t *g, const char *prefix, uint64_t seed)
{
    size_t n = strlen(prefix);
    if (n > 18 || strspn(prefix, "0123456789") != n || (n > 0 && n < 6)) {
        return -1;
    }
    snprintf(g->prefix, sizeof g->prefix, "%s", prefix);
    g->state = seed ? seed : 0x9E3779B97F4A7C15ull;
    g->units = NULL;
    return 0;
}

/* Extend the prefix to a building (18 digits): at each level a few units
 * numbered 001.., so petitions meet in the same grids and buildings. */
static void area(zpg_t *g, char out[19])
{
    const char *p = g->prefix[0] ? g->prefix : "220503";
    size_t n = strlen(p);
    memcpy(out, p, n);
    while (n < 18) {
        size_t boundary = (n / 3 + 1) * 3;
        while (n + 1 < boundary) {
            out[n++] = '0';
        }
        out[n++] = (char)('1' + pick(g, boundary <= 12 ? 3 : 5));
    }
    out[18] = '\0';
}

/* ---- a units file ------------------------------------------------------ */

static bool area_code(const char *s)
{
    size_t n = strlen(s);
    return n >= 6 && n <= AREA_BYTES_MAX && n % 3 == 0 && strspn(s, "0123456789") == n;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t err_len, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return -1;
}

/* Keep a unit (escaped name in the arena). 0, or -1 when out of memory. */
static int units_add(zpg_units_t *u, const char *code, const char *name)
{
    if (u->count % 1024 == 0) {
        unit_t *grown = realloc(u->units, (u->count + 1024) * sizeof *grown);
        if (grown == NULL) {
            return -1;
        }
        u->units = grown;
    }
    size_t need = u->names_len + 2 * strlen(name) + 1;
    if (need > u->names_cap) {
        size_t cap = need > 2 * u->names_cap ? need + 4096 : 2 * u->names_cap;
        char *grown = realloc(u->names, cap);
        if (grown == NULL) {
            return -1;
        }
        u->names = grown;
        u->names_cap = cap;
    }
    unit_t *t = &u->units[u->count++];
    snprintf(t->code, sizeof t->code, "%s", code);
    t->name_off = u->names_len;
    for (const char *p = name; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20) {
            continue; /* a control character has no place in an address */
        }
        if (*p == '"' || *p == '\\') {
            u->names[u->names_len++] = '\\';
        }
        u->names[u->names_len++] = *p;
    }
    t->name_len = u->names_len - t->name_off;
    u->names[u->names_len++] = '\0';
    return 0;
}

static int unit_cmp(const void *a, const void *b)
{
    return strcmp(((const unit_t *)a)->code, ((const unit_t *)b)->code);
}

/* The whole file into memory (at most ZPG_UNITS_FILE_BYTES_MAX); the
 * buffer grows as the file is read, so a small file takes little. */
static char *file_read(const char *path, size_t *len, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fail(err, err_len, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0;
    bool bad = false;
    *len = 0;
    while (!bad && *len == cap && cap <= ZPG_UNITS_FILE_BYTES_MAX) {
        size_t grown_cap = cap == 0 ? 65536 : 2 * cap;
        char *grown = realloc(buf, grown_cap + 1);
        bad = grown == NULL;
        if (!bad) {
            buf = grown;
            cap = grown_cap;
            *len += fread(buf + *len, 1, cap - *len, f);
        }
    }
    bad = bad || ferror(f) || *len > ZPG_UNITS_FILE_BYTES_MAX;
    fclose(f);
    if (bad) {
        fail(err, err_len, "cannot read %s: unreadable, or larger than %d bytes", path,
             ZPG_UNITS_FILE_BYTES_MAX);
        free(buf);
        return NULL;
    }
    return buf;
}

/* The rows of the file under prefix or above it, unsorted. The file is read
 * with the grid service's own CSV reader and header rules (services/grid),
 * so a file `zhilictl import units` takes is one the simulator takes. */
static int units_parse(zpg_units_t *u, const char *path, const char *text, size_t len,
                       const char *prefix, char *err, size_t err_len)
{
    enum { LINE_BYTES = ZGRID_CSV_COLUMNS_MAX * (ZGRID_CSV_FIELD_BYTES_MAX + 1) };
    char *buf = malloc(LINE_BYTES);
    if (buf == NULL) {
        return fail(err, err_len, "%s: out of memory", path);
    }
    zgrid_csv_t csv;
    zgrid_csv_init(&csv, text, len);
    char *fields[ZGRID_CSV_COLUMNS_MAX], why[160];
    long line = 0;
    zgrid_csv_columns_t cols;
    zgrid_err_t gerr;
    int n = zgrid_csv_next(&csv, buf, LINE_BYTES, fields, ZGRID_CSV_COLUMNS_MAX, &line, why,
                           sizeof why);
    int rc = 0;
    if (n <= 0 || zgrid_csv_header(fields, n, &cols, &gerr) != 0) {
        rc = fail(err, err_len, "%s: the header must name the columns code and name (%s)", path,
                  n < 0 ? why : n == 0 ? "the file is empty" : gerr.message);
    }
    size_t plen = strlen(prefix);
    while (rc == 0 && (n = zgrid_csv_next(&csv, buf, LINE_BYTES, fields, ZGRID_CSV_COLUMNS_MAX,
                                          &line, why, sizeof why)) != 0) {
        if (n < 0) {
            rc = fail(err, err_len, "%s: line %ld: %s", path, line, why);
            break;
        }
        if (n == 1 && fields[0][0] == '\0') {
            continue; /* a blank line */
        }
        const char *code = cols.code < n ? fields[cols.code] : "";
        const char *name = cols.name < n ? fields[cols.name] : "";
        if (!area_code(code)) {
            rc = fail(err, err_len, "%s: line %ld: code must be 6, 9, 12, 15 or 18 digits", path,
                      line);
        } else if (strlen(name) > ZPG_UNIT_NAME_BYTES_MAX) {
            rc = fail(err, err_len, "%s: line %ld: name longer than %d bytes", path, line,
                      ZPG_UNIT_NAME_BYTES_MAX);
        } else if (strncmp(code, prefix, strlen(code) < plen ? strlen(code) : plen) != 0) {
            continue; /* neither under the prefix nor above it */
        } else if (u->count == ZPG_UNITS_MAX) {
            rc = fail(err, err_len, "%s: more than %d units under or above the area", path,
                      ZPG_UNITS_MAX);
        } else if (units_add(u, code, name) != 0) {
            rc = fail(err, err_len, "%s: out of memory at line %ld", path, line);
        }
    }
    free(buf);
    return rc;
}

/* Sort, drop duplicates, and list the places: units under the prefix with
 * none below them (in code order, the next unit would start with the code). */
static int units_index(zpg_units_t *u, const char *prefix)
{
    if (u->count == 0) {
        return 0;
    }
    qsort(u->units, u->count, sizeof *u->units, unit_cmp);
    size_t kept = 1;
    for (size_t i = 1; i < u->count; i++) {
        if (strcmp(u->units[i].code, u->units[kept - 1].code) != 0) {
            u->units[kept++] = u->units[i];
        }
    }
    u->count = kept;
    u->places = malloc(u->count * sizeof *u->places);
    if (u->places == NULL) {
        return -1;
    }
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < u->count; i++) {
        const char *code = u->units[i].code;
        bool parent = i + 1 < u->count && strncmp(u->units[i + 1].code, code, strlen(code)) == 0;
        if (!parent && strncmp(code, prefix, plen) == 0) {
            u->places[u->place_count++] = i;
        }
    }
    return 0;
}

int zpg_units_load(const char *path, const char *prefix, zpg_units_t **out, char *err,
                   size_t err_len)
{
    *out = NULL;
    size_t plen = strlen(prefix);
    if (plen > AREA_BYTES_MAX || strspn(prefix, "0123456789") != plen || (plen > 0 && plen < 6)) {
        return fail(err, err_len, "the area %s must be 6 to 18 digits", prefix);
    }
    size_t len = 0;
    char *text = file_read(path, &len, err, err_len);
    zpg_units_t *u = calloc(1, sizeof *u);
    int rc = text != NULL && u != NULL ? 0 : -1;
    if (rc == 0 && u == NULL) {
        rc = fail(err, err_len, "%s: out of memory", path);
    }
    if (rc == 0) {
        rc = units_parse(u, path, text, len, prefix, err, err_len);
    }
    if (rc == 0 && units_index(u, prefix) != 0) {
        rc = fail(err, err_len, "%s: out of memory", path);
    }
    if (rc == 0 && u->place_count == 0) {
        rc = fail(err, err_len, "%s: no unit under %s", path, prefix[0] ? prefix : "\"\"");
    }
    free(text);
    if (rc != 0) {
        zpg_units_destroy(&u);
        return -1;
    }
    *out = u;
    return 0;
}

void zpg_units_destroy(zpg_units_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    zpg_units_t *u = *self_p;
    free(u->units);
    free(u->names);
    free(u->places);
    free(u);
    *self_p = NULL;
}

size_t zpg_units_places(const zpg_units_t *u)
{
    return u->place_count;
}

void zpg_use_units(zpg_t *g, const zpg_units_t *u)
{
    g->units = u;
}

static const unit_t *unit_find(const zpg_units_t *u, const char *code)
{
    unit_t key;
    snprintf(key.code, sizeof key.code, "%s", code);
    return bsearch(&key, u->units, u->count, sizeof *u->units, unit_cmp);
}

/* One of the file's places. */
static void place(zpg_t *g, char code[19])
{
    const zpg_units_t *u = g->units;
    snprintf(code, 19, "%s", u->units[u->places[pick(g, u->place_count)]].code);
}

/* The address of a place: the names of the unit and its ancestors (the
 * broadest dropped first when too long), then building, unit and room. */
static void place_address(zpg_t *g, const char *code, unsigned unit, unsigned room, char *address,
                          size_t cap)
{
    const zpg_units_t *u = g->units;
    size_t len = strlen(code);
    const unit_t *chain[AREA_BYTES_MAX / 3];
    int n = 0;
    size_t total = 0;
    for (size_t l = len; l >= 6; l -= 3) { /* deepest first */
        char prefix[19];
        snprintf(prefix, sizeof prefix, "%.*s", (int)l, code);
        const unit_t *a = unit_find(u, prefix);
        if (a != NULL && total + a->name_len <= ADDRESS_BYTES_MAX) {
            chain[n++] = a;
            total += a->name_len;
        }
    }
    size_t at = 0;
    address[0] = '\0';
    while (n > 0 && at < cap) {
        const unit_t *a = chain[--n];
        at += (size_t)snprintf(address + at, cap - at, "%s", u->names + a->name_off);
    }
    if (at < cap && len == AREA_BYTES_MAX) {
        snprintf(address + at, cap - at, "%u单元%u室", unit, room);
    } else if (at < cap) {
        snprintf(address + at, cap - at, "%u号楼%u单元%u室", 1 + (unsigned)pick(g, 6), unit, room);
    }
}

int zpg_petition(zpg_t *g, const char *ticket, char *out, size_t cap)
{
    const category_t *c = &categories[pick(g, ARRAY_LEN(categories))];
    const char *text = c->texts[pick(g, c->count)];
    uint64_t roll = pick(g, 100);
    const char *urgency = roll < 3 ? "critical" : roll < 15 ? "urgent" : "normal";
    char code[19], address[ADDRESS_BYTES_MAX + 64];
    if (g->units != NULL) {
        place(g, code);
    } else {
        area(g, code);
    }
    unsigned unit = 1 + (unsigned)pick(g, 4);
    unsigned room = 101 + (unsigned)pick(g, 6) * 100 + (unsigned)pick(g, 4);
    unsigned long long phone = 13000000000ull + (unsigned long long)pick(g, 999999999);
    if (g->units != NULL) {
        place_address(g, code, unit, room, address, sizeof address);
    } else {
        unsigned building = (unsigned)(code[17] - '0');
        const char *street = streets[pick(g, ARRAY_LEN(streets))];
        snprintf(address, sizeof address, "二道江区%s%s%u号楼%u单元%u室", street,
                 compounds[pick(g, ARRAY_LEN(compounds))], building, unit, room);
    }
    char tk[256] = "";
    if (ticket != NULL && ticket[0] != '\0') {
        snprintf(tk, sizeof tk, ",\"ticket\":\"%s\"", ticket);
    }
    int n = snprintf(out, cap,
                     "{\"category\":\"%s\",\"urgency\":\"%s\",\"content\":\"%s\",\"area\":\"%s\","
                     "\"address\":\"%s\",\"citizen\":{\"name\":\"%s%s\","
                     "\"phone\":\"%llu\"},\"channel\":\"hotline\"%s}",
                     c->code, urgency, text, code, address, surnames[pick(g, ARRAY_LEN(surnames))],
                     pick(g, 2) ? "先生" : "女士", phone, tk);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
