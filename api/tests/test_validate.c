/* Name rules and body parsing in isolation. */
#include "../validate.h"
#include "harness.h"

#include <stdio.h>
#include <string.h>

static bool name_ok(const char *name)
{
    struct apierr err;

    return valid_name("sandbox", name, &err) == 0;
}

int main(void)
{
    static const char *const allowed[] = { "a", "b", NULL };
    struct apierr err;
    json_t *obj;
    int64_t v = 0;
    bool present;

    CHECK(name_ok("a") && name_ok("web-1") && name_ok("x0-y1-z2"));
    CHECK(name_ok("a23456789012345678901234567890123456789012345678901234567890123"));
    CHECK(!name_ok("a234567890123456789012345678901234567890123456789012345678901234"));
    CHECK(!name_ok("") && !name_ok("-a") && !name_ok("a-") && !name_ok("1a"));
    CHECK(!name_ok("a--b") && !name_ok("A") && !name_ok("a.b") && !name_ok("a/b"));
    CHECK(!name_ok("a b") && !name_ok("\xc3\xa9"));

    CHECK(valid_parse_object("", 0, true, &obj, &err) == 0 && json_object_size(obj) == 0);
    json_decref(obj);
    CHECK(valid_parse_object("", 0, false, &obj, &err) == -1);
    CHECK(valid_parse_object("{\"a\":1,\"a\":2}", 13, true, &obj, &err) == -1);
    CHECK(err.type == APIERR_VALIDATION && strstr(err.message, "duplicate"));
    CHECK(valid_parse_object("{\"a\":1} x", 9, true, &obj, &err) == -1);
    CHECK(valid_parse_object("{\"a\":\"\\u0000\"}", 14, true, &obj, &err) == -1);

    CHECK(valid_parse_object("{\"a\":5,\"c\":1}", 13, true, &obj, &err) == 0);
    CHECK(valid_known_fields(obj, allowed, &err) == -1 && strstr(err.message, "'c'"));
    CHECK(valid_int_field(obj, "a", 1, 10, &v, &present, &err) == 0 && present && v == 5);
    CHECK(valid_int_field(obj, "a", 6, 10, &v, &present, &err) == -1);
    CHECK(valid_int_field(obj, "b", 1, 10, &v, &present, &err) == 0 && !present);
    json_decref(obj);
    printf("ok\n");
    return 0;
}
