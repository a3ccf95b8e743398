/* SPDX-License-Identifier: Apache-2.0
 *
 * test_event.c - decoding native and Segment Engage audience events, and
 * the exact dead-letter reasons for every class of bad message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mlsync/event.h"
#include "../support/support.h"

#define KEY "123-ABC-456"

static enum mls_err decode_buf(const char *key, const void *buf, size_t len,
                               struct mls_event *ev, char *errstr,
                               size_t errstr_size)
{
        return mls_event_decode(key, key ? strlen(key) : 0, buf, len, ev,
                                errstr, errstr_size);
}

static enum mls_err decode(const char *name, const char *key,
                           struct mls_event *ev, char *errstr,
                           size_t errstr_size)
{
        char rel[256];
        enum mls_err err;
        size_t len;
        char *buf;

        snprintf(rel, sizeof(rel), "events/%s.json", name);
        buf = mls_fixture_load(rel, &len);
        assert_non_null(buf);
        err = decode_buf(key, buf, len, ev, errstr, errstr_size);
        free(buf);
        return err;
}

/* Decode a fixture that must succeed; the caller finis ev. */
static void decode_ok(const char *name, const char *key, struct mls_event *ev)
{
        char errstr[256] = "";
        enum mls_err err = decode(name, key, ev, errstr, sizeof(errstr));

        if (err != MLS_OK)
                fail_msg("%s: %s (%s)", name, mls_err_name(err), errstr);
}

/* An event left by a failed decode holds nothing. */
static void assert_empty(const struct mls_event *ev)
{
        assert_null(ev->munchkin_id);
        assert_null(ev->audience_id);
        assert_null(ev->list_name);
        assert_null(ev->user_id);
        assert_null(ev->emails);
        assert_int_equal(ev->email_cnt, 0);
}

/* The reason is exact (it becomes a dead-letter header) and never quotes
 * an email address. */
static void check_bad(enum mls_err err, const char *errstr,
                      const struct mls_event *ev, const char *reason)
{
        assert_int_equal(err, MLS_ERR_BAD_MESSAGE);
        assert_string_equal(errstr, reason);
        assert_null(strchr(errstr, '@'));
        assert_empty(ev);
}

static void expect_bad(const char *name, const char *key, const char *reason)
{
        struct mls_event ev;
        char errstr[256] = "";
        enum mls_err err;

        memset(&ev, 0xa5, sizeof(ev)); /* decode must zero it */
        err = decode(name, key, &ev, errstr, sizeof(errstr));
        check_bad(err, errstr, &ev, reason);
}

static void expect_emails(const struct mls_event *ev,
                          const char *const *want, size_t n)
{
        assert_int_equal(ev->email_cnt, n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(ev->emails[i], want[i]);
}

/* --- native format ------------------------------------------------------ */

static void native__add_event_decodes_all_fields(void **state)
{
        static const char *const want[] = { "ann@example.com",
                                            "ann@work.example" };
        struct mls_event ev;

        decode_ok("native_add", KEY, &ev);
        assert_int_equal(ev.format, MLS_EVENT_NATIVE);
        assert_int_equal(ev.action, MLS_EVENT_ADD);
        assert_string_equal(ev.munchkin_id, KEY);
        assert_string_equal(ev.audience_id, "aud_42");
        assert_string_equal(ev.list_name, "Churn Risk");
        assert_string_equal(ev.user_id, "u-1");
        expect_emails(&ev, want, 2);
        mls_event_fini(&ev);
        assert_empty(&ev);
}

static void native__remove_action_decodes_remove(void **state)
{
        struct mls_event ev;

        decode_ok("native_remove", KEY, &ev);
        assert_int_equal(ev.action, MLS_EVENT_REMOVE);
        mls_event_fini(&ev);
}

static void native__action_upper_case_accepted(void **state)
{
        struct mls_event ev;

        decode_ok("native_action_upper", KEY, &ev);
        assert_int_equal(ev.action, MLS_EVENT_REMOVE);
        mls_event_fini(&ev);
}

static void native__case_dupes_deduplicated_in_order(void **state)
{
        static const char *const want[] = { "ann@example.com",
                                            "bob@example.com",
                                            "carol@example.com" };
        struct mls_event ev;

        decode_ok("native_case_duplicates", KEY, &ev);
        expect_emails(&ev, want, 3);
        mls_event_fini(&ev);
}

static void native__no_emails_valid_without_emails(void **state)
{
        static const char *const names[] = { "native_no_emails",
                                             "native_empty_emails",
                                             "native_blank_emails" };
        struct mls_event ev;

        for (size_t i = 0; i < 3; i++) {
                decode_ok(names[i], KEY, &ev);
                assert_int_equal(ev.email_cnt, 0);
                assert_string_equal(ev.list_name, "Churn Risk");
                mls_event_fini(&ev);
        }
}

static void native__odd_emails_kept_for_marketo(void **state)
{
        struct mls_event ev;

        decode_ok("native_odd_emails", KEY, &ev);
        assert_int_equal(ev.email_cnt, 3);
        assert_string_equal(ev.emails[0], "not an email");
        assert_string_equal(ev.emails[1], "a\ab@example.com");
        assert_int_equal(strlen(ev.emails[2]), 300 + strlen("@example.com"));
        mls_event_fini(&ev);
}

static void native__email_with_nul_rejected(void **state)
{
        expect_bad("native_email_nul", KEY,
                   "emails[0] contains a NUL character");
}

static void native__emails_not_array_rejected(void **state)
{
        expect_bad("native_emails_not_array", KEY, "emails is not an array");
}

static void native__email_not_string_names_index(void **state)
{
        expect_bad("native_email_not_string", KEY,
                   "emails[2] is not a string");
}

static void native__missing_munchkin_uses_key(void **state)
{
        struct mls_event ev;

        decode_ok("native_no_munchkin", KEY, &ev);
        assert_string_equal(ev.munchkin_id, KEY);
        mls_event_fini(&ev);
}

static void native__body_munchkin_used_without_key(void **state)
{
        struct mls_event ev;
        char errstr[128];
        size_t len;
        char *buf = mls_fixture_load("events/native_add.json", &len);

        assert_non_null(buf);
        assert_int_equal(mls_event_decode(NULL, 0, buf, len, &ev, errstr,
                                          sizeof(errstr)),
                         MLS_OK);
        assert_string_equal(ev.munchkin_id, KEY);
        mls_event_fini(&ev);
        assert_int_equal(mls_event_decode("", 0, buf, len, &ev, errstr,
                                          sizeof(errstr)),
                         MLS_OK);
        assert_string_equal(ev.munchkin_id, KEY);
        mls_event_fini(&ev);
        free(buf);
}

static void native__no_munchkin_anywhere_rejected(void **state)
{
        expect_bad("native_no_munchkin", NULL,
                   "no munchkin id: the message key is empty and the body names none");
        expect_bad("native_nulls", NULL,
                   "no munchkin id: the message key is empty and the body names none");
}

static void native__munchkin_case_differs_accepted(void **state)
{
        struct mls_event ev;

        decode_ok("native_munchkin_lower", KEY, &ev);
        assert_string_equal(ev.munchkin_id, KEY); /* the key's spelling */
        mls_event_fini(&ev);
}

static void native__munchkin_disagrees_with_key_rejected(void **state)
{
        expect_bad("native_munchkin_mismatch", KEY,
                   "munchkin_id disagrees with the message key");
}

static void native__munchkin_not_string_rejected(void **state)
{
        expect_bad("native_munchkin_not_string", KEY,
                   "munchkin_id is not a string");
}

static void native__munchkin_with_spaces_rejected(void **state)
{
        expect_bad("native_munchkin_spaces", NULL,
                   "munchkin_id is not a valid munchkin id");
}

static void native__audience_id_only_names_list_after_id(void **state)
{
        struct mls_event ev;

        decode_ok("native_audience_id_only", KEY, &ev);
        assert_string_equal(ev.audience_id, "aud_42");
        assert_string_equal(ev.list_name, "aud_42");
        mls_event_fini(&ev);
}

static void native__audience_name_only_trimmed_without_id(void **state)
{
        struct mls_event ev;

        decode_ok("native_audience_name_only", KEY, &ev);
        assert_null(ev.audience_id);
        assert_string_equal(ev.list_name, "Churn Risk");
        mls_event_fini(&ev);
}

static void native__audience_without_id_or_name_rejected(void **state)
{
        expect_bad("native_audience_empty", KEY,
                   "audience has neither id nor name");
        expect_bad("native_audience_blank", KEY,
                   "audience has neither id nor name");
}

static void native__audience_missing_rejected(void **state)
{
        expect_bad("native_audience_missing", KEY, "audience is missing");
}

static void native__audience_not_object_rejected(void **state)
{
        expect_bad("native_audience_not_object", KEY,
                   "audience is not an object");
}

static void native__audience_name_wrong_type_rejected(void **state)
{
        expect_bad("native_audience_name_not_string", KEY,
                   "audience.name is not a string");
}

static void native__audience_name_control_rejected(void **state)
{
        expect_bad("native_audience_name_control", KEY,
                   "audience.name contains control characters");
}

static void native__action_problems_rejected(void **state)
{
        expect_bad("native_action_missing", KEY, "action is missing");
        expect_bad("native_action_unknown", KEY,
                   "action must be \"add\" or \"remove\"");
        expect_bad("native_action_not_string", KEY,
                   "action is not a string");
}

static void native__user_id_not_string_rejected(void **state)
{
        expect_bad("native_user_id_not_string", KEY,
                   "user_id is not a string");
}

static void native__user_id_optional(void **state)
{
        struct mls_event ev;

        decode_ok("native_no_user_id", KEY, &ev);
        assert_null(ev.user_id);
        mls_event_fini(&ev);
}

static void native__ts_not_string_rejected(void **state)
{
        expect_bad("native_ts_not_string", KEY, "ts is not a string");
}

static void native__nulls_treated_as_missing(void **state)
{
        struct mls_event ev;

        decode_ok("native_nulls", KEY, &ev);
        assert_string_equal(ev.munchkin_id, KEY);
        assert_null(ev.user_id);
        assert_int_equal(ev.email_cnt, 0);
        mls_event_fini(&ev);
}

static void native__deep_within_limit_accepted(void **state)
{
        struct mls_event ev;

        decode_ok("native_deep_ok", KEY, &ev);
        assert_string_equal(ev.list_name, "aud_42");
        mls_event_fini(&ev);
}

/* --- Segment Engage ----------------------------------------------------- */

static void segment__identify_true_adds(void **state)
{
        static const char *const want[] = { "ann@example.com" };
        struct mls_event ev;

        decode_ok("segment_identify_true", KEY, &ev);
        assert_int_equal(ev.format, MLS_EVENT_SEGMENT);
        assert_int_equal(ev.action, MLS_EVENT_ADD);
        assert_string_equal(ev.munchkin_id, KEY);
        assert_string_equal(ev.audience_id, "aud_2djnfxHHnYGVQfOAEBroQ9Ti87N");
        assert_string_equal(ev.list_name, "churn_risk"); /* no name: key */
        assert_string_equal(ev.user_id, "u-1");
        expect_emails(&ev, want, 1);
        mls_event_fini(&ev);
}

static void segment__identify_false_removes(void **state)
{
        struct mls_event ev;

        decode_ok("segment_identify_false", KEY, &ev);
        assert_int_equal(ev.action, MLS_EVENT_REMOVE);
        assert_int_equal(ev.email_cnt, 1);
        mls_event_fini(&ev);
}

static void segment__identify_trait_problems_rejected(void **state)
{
        expect_bad("segment_identify_trait_missing", KEY,
                   "traits[computation_key] is missing");
        expect_bad("segment_identify_no_traits", KEY,
                   "traits[computation_key] is missing");
        expect_bad("segment_identify_trait_not_boolean", KEY,
                   "traits[computation_key] is not a boolean");
}

static void segment__identify_without_personas_rejected(void **state)
{
        expect_bad("segment_identify_no_personas", KEY,
                   "context.personas is missing: not an Engage audience event");
        expect_bad("segment_identify_no_class", KEY,
                   "context.personas.computation_class is missing");
        expect_bad("segment_identify_no_key", KEY,
                   "context.personas.computation_key is missing");
}

static void segment__non_audience_class_rejected(void **state)
{
        expect_bad("segment_computed_trait", KEY,
                   "context.personas.computation_class is not \"audience\"");
        expect_bad("segment_track_trait_class", KEY,
                   "context.personas.computation_class is not \"audience\"");
}

static void segment__track_entered_adds(void **state)
{
        static const char *const want[] = { "ann@example.com" };
        struct mls_event ev;

        decode_ok("segment_track_entered", KEY, &ev);
        assert_int_equal(ev.action, MLS_EVENT_ADD);
        assert_string_equal(ev.list_name, "churn_risk");
        expect_emails(&ev, want, 1);
        mls_event_fini(&ev);
}

static void segment__track_exited_removes(void **state)
{
        struct mls_event ev;

        decode_ok("segment_track_exited", KEY, &ev);
        assert_int_equal(ev.action, MLS_EVENT_REMOVE);
        mls_event_fini(&ev);
}

static void segment__track_flag_contradiction_rejected(void **state)
{
        expect_bad("segment_track_entered_false", KEY,
                   "properties[computation_key] contradicts the event name");
}

static void segment__track_other_event_rejected(void **state)
{
        expect_bad("segment_track_other_event", KEY,
                   "track event must be \"Audience Entered\" or \"Audience Exited\"");
}

static void segment__track_no_personas_uses_audience_key(void **state)
{
        struct mls_event ev;

        decode_ok("segment_track_no_personas", KEY, &ev);
        assert_int_equal(ev.action, MLS_EVENT_REMOVE);
        assert_null(ev.audience_id);
        assert_string_equal(ev.list_name, "churn_risk");
        mls_event_fini(&ev);
}

static void segment__track_without_any_key_rejected(void **state)
{
        expect_bad("segment_track_no_key", KEY,
                   "audience key is missing: no context.personas.computation_key or properties.audience_key");
}

static void segment__track_key_mismatch_rejected(void **state)
{
        expect_bad("segment_track_key_mismatch", KEY,
                   "properties.audience_key disagrees with context.personas.computation_key");
}

static void segment__track_without_flag_uses_event_name(void **state)
{
        struct mls_event ev;

        decode_ok("segment_track_no_flag", KEY, &ev);
        assert_int_equal(ev.action, MLS_EVENT_ADD);
        mls_event_fini(&ev);
}

static void segment__track_flag_not_boolean_rejected(void **state)
{
        expect_bad("segment_track_flag_not_boolean", KEY,
                   "properties[computation_key] is not a boolean");
}

static void segment__track_properties_email_collected(void **state)
{
        static const char *const want[] = { "ann@example.com",
                                            "props@example.com" };
        struct mls_event ev;

        decode_ok("segment_track_properties_email", KEY, &ev);
        expect_emails(&ev, want, 2);
        mls_event_fini(&ev);
}

static void segment__type_problems_rejected(void **state)
{
        expect_bad("segment_page", KEY,
                   "Segment event type must be identify or track");
        expect_bad("segment_type_not_string", KEY, "type is not a string");
}

static void segment__external_ids_mixed_emails_only(void **state)
{
        static const char *const want[] = { "ann@example.com",
                                            "ann.work@example.com",
                                            "ann.home@example.com" };
        struct mls_event ev;

        decode_ok("segment_external_ids_mixed", KEY, &ev);
        expect_emails(&ev, want, 3);
        mls_event_fini(&ev);
}

static void segment__personas_external_ids_collected(void **state)
{
        static const char *const want[] = { "p1@example.com",
                                            "p2@example.com" };
        struct mls_event ev;

        decode_ok("segment_personas_external_ids", KEY, &ev);
        expect_emails(&ev, want, 2);
        mls_event_fini(&ev);
}

static void segment__external_id_problems_rejected(void **state)
{
        expect_bad("segment_external_id_not_string", KEY,
                   "context.externalIds[1].id is not a string");
        expect_bad("segment_external_ids_not_array", KEY,
                   "context.externalIds is not an array");
        expect_bad("segment_external_id_not_object", KEY,
                   "context.externalIds[0] is not an object");
        expect_bad("segment_external_id_type_not_string", KEY,
                   "context.externalIds[0].type is not a string");
}

static void segment__no_email_valid_without_emails(void **state)
{
        struct mls_event ev;

        decode_ok("segment_no_email", KEY, &ev);
        assert_int_equal(ev.email_cnt, 0);
        assert_int_equal(ev.action, MLS_EVENT_ADD);
        mls_event_fini(&ev);
}

static void segment__email_not_string_rejected(void **state)
{
        expect_bad("segment_email_not_string", KEY,
                   "traits.email is not a string");
}

static void segment__audience_name_names_list(void **state)
{
        struct mls_event ev;

        decode_ok("segment_audience_name", KEY, &ev);
        assert_string_equal(ev.list_name, "Churn Risk");
        assert_string_equal(ev.audience_id, "aud_2djnfxHHnYGVQfOAEBroQ9Ti87N");
        mls_event_fini(&ev);
}

static void segment__personas_munchkin_agrees_or_fills(void **state)
{
        struct mls_event ev;

        decode_ok("segment_munchkin_personas", KEY, &ev);
        assert_string_equal(ev.munchkin_id, KEY);
        mls_event_fini(&ev);
        decode_ok("segment_munchkin_personas", NULL, &ev);
        assert_string_equal(ev.munchkin_id, "123-abc-456");
        mls_event_fini(&ev);
}

static void segment__munchkin_disagreement_rejected(void **state)
{
        expect_bad("segment_munchkin_mismatch", KEY,
                   "properties.munchkin_id disagrees with the message key");
        expect_bad("segment_munchkin_body_conflict", NULL,
                   "properties.munchkin_id disagrees with another munchkin_id in the body");
        expect_bad("segment_identify_true", NULL,
                   "no munchkin id: the message key is empty and the body names none");
}

static void segment__context_not_object_rejected(void **state)
{
        expect_bad("segment_context_not_object", KEY,
                   "context is not an object");
}

/* --- payload and key ---------------------------------------------------- */

static void payload__not_json_rejected_with_reason(void **state)
{
        expect_bad("bad_truncated", KEY,
                   "payload is not valid JSON: unexpected end of data");
        expect_bad("bad_two_objects", KEY,
                   "payload is not valid JSON: unexpected character");
        expect_bad("bad_trailing_comma", KEY,
                   "payload is not valid JSON: unexpected character");
}

static void payload__deep_nesting_rejected(void **state)
{
        expect_bad("bad_deep", KEY,
                   "payload is not valid JSON: nesting too deep");
}

static void payload__invalid_utf8_rejected(void **state)
{
        expect_bad("bad_utf8", KEY, "payload is not valid UTF-8");
}

static void payload__non_object_rejected(void **state)
{
        static const char *const names[] = { "bad_array", "bad_string",
                                             "bad_number", "bad_null" };

        for (size_t i = 0; i < 4; i++)
                expect_bad(names[i], KEY, "payload is not a JSON object");
}

static void payload__empty_rejected(void **state)
{
        struct mls_event ev;
        char errstr[128];
        enum mls_err err;

        err = decode_buf(KEY, "", 0, &ev, errstr, sizeof(errstr));
        check_bad(err, errstr, &ev, "payload is empty");
        err = decode_buf(KEY, NULL, 10, &ev, errstr, sizeof(errstr));
        check_bad(err, errstr, &ev, "payload is empty");
}

static void payload__nul_after_object_rejected(void **state)
{
        static const char body[] =
                "{\"audience\":{\"id\":\"a\"},\"action\":\"add\"}";
        struct mls_event ev;
        char errstr[128];
        enum mls_err err;

        /* sizeof includes the terminating NUL: one byte past the object. */
        err = decode_buf(KEY, body, sizeof(body), &ev, errstr, sizeof(errstr));
        check_bad(err, errstr, &ev,
                  "payload is not valid JSON: data after the object");
        err = decode_buf(KEY, body, sizeof(body) - 1, &ev, errstr,
                         sizeof(errstr));
        assert_int_equal(err, MLS_OK);
        mls_event_fini(&ev);
}

/* A valid event padded with spaces to exactly len bytes. */
static char *padded_event(size_t len)
{
        static const char head[] =
                "{\"audience\":{\"id\":\"a\"},\"action\":\"add\"}";
        char *buf = malloc(len);

        assert_non_null(buf);
        memset(buf, ' ', len);
        memcpy(buf, head, sizeof(head) - 1);
        return buf;
}

static void payload__over_1mib_rejected_1mib_accepted(void **state)
{
        size_t mib = 1024 * 1024;
        char *buf = padded_event(mib + 1);
        struct mls_event ev;
        char errstr[128];
        enum mls_err err;

        err = decode_buf(KEY, buf, mib, &ev, errstr, sizeof(errstr));
        assert_int_equal(err, MLS_OK);
        mls_event_fini(&ev);
        err = decode_buf(KEY, buf, mib + 1, &ev, errstr, sizeof(errstr));
        check_bad(err, errstr, &ev, "payload is larger than 1 MiB");
        free(buf);
}

static void key__invalid_key_rejected(void **state)
{
        char long_key[80];

        expect_bad("native_add", "123 ABC 456",
                   "message key is not a valid munchkin id");
        memset(long_key, 'A', 65);
        long_key[65] = '\0';
        expect_bad("native_no_munchkin", long_key,
                   "message key is not a valid munchkin id");
}

static void decode__many_duplicate_emails_deduplicated(void **state)
{
        size_t n = 20000, cap = n * 40 + 200, off;
        char *buf = malloc(cap);
        struct mls_event ev;
        char errstr[128], want[32];
        enum mls_err err;

        assert_non_null(buf);
        off = (size_t)snprintf(buf, cap, "{\"audience\":{\"id\":\"a\"},"
                                         "\"action\":\"add\",\"emails\":[");
        /* 5000 distinct addresses, each four times in different cases. */
        for (size_t i = 0; i < n; i++)
                off += (size_t)snprintf(buf + off, cap - off,
                                        "%s\"%s%zu@example.com\"",
                                        i ? "," : "",
                                        (i / 5000) % 2 ? "U" : "u",
                                        i % 5000);
        off += (size_t)snprintf(buf + off, cap - off, "]}");
        err = decode_buf(KEY, buf, off, &ev, errstr, sizeof(errstr));
        assert_int_equal(err, MLS_OK);
        assert_int_equal(ev.email_cnt, 5000);
        snprintf(want, sizeof(want), "u%d@example.com", 4999);
        assert_string_equal(ev.emails[4999], want);
        assert_string_equal(ev.emails[0], "u0@example.com");
        mls_event_fini(&ev);
        free(buf);
}

static void decode__null_or_tiny_errstr_safe(void **state)
{
        struct mls_event ev;
        char tiny[8];
        enum mls_err err;

        err = decode_buf(KEY, "[]", 2, &ev, NULL, 0);
        assert_int_equal(err, MLS_ERR_BAD_MESSAGE);
        err = decode_buf(KEY, "[]", 2, &ev, tiny, sizeof(tiny));
        assert_int_equal(err, MLS_ERR_BAD_MESSAGE);
        assert_string_equal(tiny, "payload");
}

static void fini__zeroed_or_null_event_is_noop(void **state)
{
        struct mls_event ev;

        memset(&ev, 0, sizeof(ev));
        mls_event_fini(&ev);
        mls_event_fini(NULL);
        assert_empty(&ev);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(native__add_event_decodes_all_fields),
                cmocka_unit_test(native__remove_action_decodes_remove),
                cmocka_unit_test(native__action_upper_case_accepted),
                cmocka_unit_test(native__case_dupes_deduplicated_in_order),
                cmocka_unit_test(native__no_emails_valid_without_emails),
                cmocka_unit_test(native__odd_emails_kept_for_marketo),
                cmocka_unit_test(native__email_with_nul_rejected),
                cmocka_unit_test(native__emails_not_array_rejected),
                cmocka_unit_test(native__email_not_string_names_index),
                cmocka_unit_test(native__missing_munchkin_uses_key),
                cmocka_unit_test(native__body_munchkin_used_without_key),
                cmocka_unit_test(native__no_munchkin_anywhere_rejected),
                cmocka_unit_test(native__munchkin_case_differs_accepted),
                cmocka_unit_test(native__munchkin_disagrees_with_key_rejected),
                cmocka_unit_test(native__munchkin_not_string_rejected),
                cmocka_unit_test(native__munchkin_with_spaces_rejected),
                cmocka_unit_test(native__audience_id_only_names_list_after_id),
                cmocka_unit_test(native__audience_name_only_trimmed_without_id),
                cmocka_unit_test(native__audience_without_id_or_name_rejected),
                cmocka_unit_test(native__audience_missing_rejected),
                cmocka_unit_test(native__audience_not_object_rejected),
                cmocka_unit_test(native__audience_name_wrong_type_rejected),
                cmocka_unit_test(native__audience_name_control_rejected),
                cmocka_unit_test(native__action_problems_rejected),
                cmocka_unit_test(native__user_id_not_string_rejected),
                cmocka_unit_test(native__user_id_optional),
                cmocka_unit_test(native__ts_not_string_rejected),
                cmocka_unit_test(native__nulls_treated_as_missing),
                cmocka_unit_test(native__deep_within_limit_accepted),
                cmocka_unit_test(segment__identify_true_adds),
                cmocka_unit_test(segment__identify_false_removes),
                cmocka_unit_test(segment__identify_trait_problems_rejected),
                cmocka_unit_test(segment__identify_without_personas_rejected),
                cmocka_unit_test(segment__non_audience_class_rejected),
                cmocka_unit_test(segment__track_entered_adds),
                cmocka_unit_test(segment__track_exited_removes),
                cmocka_unit_test(segment__track_flag_contradiction_rejected),
                cmocka_unit_test(segment__track_other_event_rejected),
                cmocka_unit_test(segment__track_no_personas_uses_audience_key),
                cmocka_unit_test(segment__track_without_any_key_rejected),
                cmocka_unit_test(segment__track_key_mismatch_rejected),
                cmocka_unit_test(segment__track_without_flag_uses_event_name),
                cmocka_unit_test(segment__track_flag_not_boolean_rejected),
                cmocka_unit_test(segment__track_properties_email_collected),
                cmocka_unit_test(segment__type_problems_rejected),
                cmocka_unit_test(segment__external_ids_mixed_emails_only),
                cmocka_unit_test(segment__personas_external_ids_collected),
                cmocka_unit_test(segment__external_id_problems_rejected),
                cmocka_unit_test(segment__no_email_valid_without_emails),
                cmocka_unit_test(segment__email_not_string_rejected),
                cmocka_unit_test(segment__audience_name_names_list),
                cmocka_unit_test(segment__personas_munchkin_agrees_or_fills),
                cmocka_unit_test(segment__munchkin_disagreement_rejected),
                cmocka_unit_test(segment__context_not_object_rejected),
                cmocka_unit_test(payload__not_json_rejected_with_reason),
                cmocka_unit_test(payload__deep_nesting_rejected),
                cmocka_unit_test(payload__invalid_utf8_rejected),
                cmocka_unit_test(payload__non_object_rejected),
                cmocka_unit_test(payload__empty_rejected),
                cmocka_unit_test(payload__nul_after_object_rejected),
                cmocka_unit_test(payload__over_1mib_rejected_1mib_accepted),
                cmocka_unit_test(key__invalid_key_rejected),
                cmocka_unit_test(decode__many_duplicate_emails_deduplicated),
                cmocka_unit_test(decode__null_or_tiny_errstr_safe),
                cmocka_unit_test(fini__zeroed_or_null_event_is_noop),
        };

        return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
