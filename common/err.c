#include "common/err.h"

#include "zhili.pb-c.h"

int zerr_status(int code)
{
    switch (code) {
    case ZE_OK: return ZHILI__V1__STATUS__STATUS_OK;
    case ZE_INVALID: return ZHILI__V1__STATUS__STATUS_INVALID;
    case ZE_NOT_FOUND: return ZHILI__V1__STATUS__STATUS_NOT_FOUND;
    case ZE_CONFLICT: return ZHILI__V1__STATUS__STATUS_CONFLICT;
    case ZE_FORBIDDEN: return ZHILI__V1__STATUS__STATUS_FORBIDDEN;
    case ZE_UNAVAILABLE:
    case ZE_MAP_FULL:
    case ZE_AGAIN:
    case ZE_TIMEOUT: return ZHILI__V1__STATUS__STATUS_UNAVAILABLE;
    default: return ZHILI__V1__STATUS__STATUS_INTERNAL;
    }
}

int zerr_from_status(int status)
{
    switch (status) {
    case ZHILI__V1__STATUS__STATUS_OK: return ZE_OK;
    case ZHILI__V1__STATUS__STATUS_INVALID: return ZE_INVALID;
    case ZHILI__V1__STATUS__STATUS_NOT_FOUND: return ZE_NOT_FOUND;
    case ZHILI__V1__STATUS__STATUS_CONFLICT: return ZE_CONFLICT;
    case ZHILI__V1__STATUS__STATUS_FORBIDDEN: return ZE_FORBIDDEN;
    case ZHILI__V1__STATUS__STATUS_UNAVAILABLE: return ZE_UNAVAILABLE;
    default: return ZE_INTERNAL;
    }
}

const char *zerr_name(int code)
{
    switch (code) {
    case ZE_OK: return "ok";
    case ZE_INVALID: return "invalid";
    case ZE_NOT_FOUND: return "not_found";
    case ZE_CONFLICT: return "conflict";
    case ZE_FORBIDDEN: return "forbidden";
    case ZE_UNAVAILABLE:
    case ZE_MAP_FULL:
    case ZE_AGAIN:
    case ZE_TIMEOUT: return "unavailable";
    default: return "internal";
    }
}
