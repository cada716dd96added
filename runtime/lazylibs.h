/* libcurl, libmicrohttpd and SQLite are loaded when first used, not at
 * startup: with their dependencies (gnutls, krb5, ldap, ...) they were 40
 * shared objects and ~9 ms of every command's start, and most commands
 * (status, tag, add, log) use none of them.
 *
 * Include this instead of <curl/curl.h>, <microhttpd.h> or <sqlite3.h>: every
 * function of theirs that bbit calls becomes a macro reading a pointer from
 * a table filled by dlopen/dlsym on first use (runtime/lazylibs.c). A missing
 * library stops bbit with a message naming it and its Debian package. To
 * call a new function of these libraries, add it to the list here. */
#ifndef BBIT_LAZYLIBS_H
#define BBIT_LAZYLIBS_H

#define CURL_DISABLE_TYPECHECK /* curl_easy_setopt is a macro otherwise */
#include <curl/curl.h>
#include <microhttpd.h>
#include <sqlite3.h>

#define BBIT_CURL_FUNCTIONS(X)                                                                    \
    X(curl_easy_cleanup) X(curl_easy_getinfo) X(curl_easy_init) X(curl_easy_setopt)               \
    X(curl_easy_strerror) X(curl_free) X(curl_global_cleanup) X(curl_global_init)                 \
    X(curl_multi_add_handle) X(curl_multi_cleanup) X(curl_multi_info_read) X(curl_multi_init)     \
    X(curl_multi_perform) X(curl_multi_poll) X(curl_multi_remove_handle) X(curl_multi_strerror)   \
    X(curl_slist_append) X(curl_slist_free_all) X(curl_url) X(curl_url_cleanup) X(curl_url_get)   \
    X(curl_url_set) X(curl_version)

#define BBIT_MHD_FUNCTIONS(X)                                                                     \
    X(MHD_add_response_header) X(MHD_create_response_from_buffer)                                 \
    X(MHD_create_response_from_fd64) X(MHD_destroy_response) X(MHD_get_connection_info)           \
    X(MHD_get_daemon_info) X(MHD_lookup_connection_value) X(MHD_queue_response)                   \
    X(MHD_start_daemon) X(MHD_stop_daemon)

#define BBIT_SQLITE_FUNCTIONS(X)                                                                  \
    X(sqlite3_bind_int) X(sqlite3_bind_int64) X(sqlite3_bind_text) X(sqlite3_busy_timeout)        \
    X(sqlite3_changes) X(sqlite3_close) X(sqlite3_column_int) X(sqlite3_column_int64)             \
    X(sqlite3_column_text) X(sqlite3_column_type) X(sqlite3_errmsg) X(sqlite3_exec)               \
    X(sqlite3_finalize) X(sqlite3_free) X(sqlite3_get_autocommit) X(sqlite3_last_insert_rowid)    \
    X(sqlite3_open_v2) X(sqlite3_prepare_v2) X(sqlite3_reset) X(sqlite3_step)

#define BBIT_LAZY_FIELD(name) __typeof__(name) *name;
struct bbit_curl_api { BBIT_CURL_FUNCTIONS(BBIT_LAZY_FIELD) };
struct bbit_mhd_api { BBIT_MHD_FUNCTIONS(BBIT_LAZY_FIELD) };
struct bbit_sqlite_api { BBIT_SQLITE_FUNCTIONS(BBIT_LAZY_FIELD) };
#undef BBIT_LAZY_FIELD

/* The tables, loaded on first call (thread-safe; they never change after). */
const struct bbit_curl_api *bbit_curl_api(void);
const struct bbit_mhd_api *bbit_mhd_api(void);
const struct bbit_sqlite_api *bbit_sqlite_api(void);

#ifndef BBIT_LAZYLIBS_IMPL
#undef curl_easy_getinfo /* curl.h's argument-count checks */
#undef curl_easy_setopt
#define curl_easy_cleanup (bbit_curl_api()->curl_easy_cleanup)
#define curl_easy_getinfo (bbit_curl_api()->curl_easy_getinfo)
#define curl_easy_init (bbit_curl_api()->curl_easy_init)
#define curl_easy_setopt (bbit_curl_api()->curl_easy_setopt)
#define curl_easy_strerror (bbit_curl_api()->curl_easy_strerror)
#define curl_free (bbit_curl_api()->curl_free)
#define curl_global_cleanup (bbit_curl_api()->curl_global_cleanup)
#define curl_global_init (bbit_curl_api()->curl_global_init)
#define curl_multi_add_handle (bbit_curl_api()->curl_multi_add_handle)
#define curl_multi_cleanup (bbit_curl_api()->curl_multi_cleanup)
#define curl_multi_info_read (bbit_curl_api()->curl_multi_info_read)
#define curl_multi_init (bbit_curl_api()->curl_multi_init)
#define curl_multi_perform (bbit_curl_api()->curl_multi_perform)
#define curl_multi_poll (bbit_curl_api()->curl_multi_poll)
#define curl_multi_remove_handle (bbit_curl_api()->curl_multi_remove_handle)
#define curl_multi_strerror (bbit_curl_api()->curl_multi_strerror)
#define curl_slist_append (bbit_curl_api()->curl_slist_append)
#define curl_slist_free_all (bbit_curl_api()->curl_slist_free_all)
#define curl_url (bbit_curl_api()->curl_url)
#define curl_url_cleanup (bbit_curl_api()->curl_url_cleanup)
#define curl_url_get (bbit_curl_api()->curl_url_get)
#define curl_url_set (bbit_curl_api()->curl_url_set)
#define curl_version (bbit_curl_api()->curl_version)
#define MHD_add_response_header (bbit_mhd_api()->MHD_add_response_header)
#define MHD_create_response_from_buffer (bbit_mhd_api()->MHD_create_response_from_buffer)
#define MHD_create_response_from_fd64 (bbit_mhd_api()->MHD_create_response_from_fd64)
#define MHD_destroy_response (bbit_mhd_api()->MHD_destroy_response)
#define MHD_get_connection_info (bbit_mhd_api()->MHD_get_connection_info)
#define MHD_get_daemon_info (bbit_mhd_api()->MHD_get_daemon_info)
#define MHD_lookup_connection_value (bbit_mhd_api()->MHD_lookup_connection_value)
#define MHD_queue_response (bbit_mhd_api()->MHD_queue_response)
#define MHD_start_daemon (bbit_mhd_api()->MHD_start_daemon)
#define MHD_stop_daemon (bbit_mhd_api()->MHD_stop_daemon)
#define sqlite3_bind_int (bbit_sqlite_api()->sqlite3_bind_int)
#define sqlite3_bind_int64 (bbit_sqlite_api()->sqlite3_bind_int64)
#define sqlite3_bind_text (bbit_sqlite_api()->sqlite3_bind_text)
#define sqlite3_busy_timeout (bbit_sqlite_api()->sqlite3_busy_timeout)
#define sqlite3_changes (bbit_sqlite_api()->sqlite3_changes)
#define sqlite3_close (bbit_sqlite_api()->sqlite3_close)
#define sqlite3_column_int (bbit_sqlite_api()->sqlite3_column_int)
#define sqlite3_column_int64 (bbit_sqlite_api()->sqlite3_column_int64)
#define sqlite3_column_text (bbit_sqlite_api()->sqlite3_column_text)
#define sqlite3_column_type (bbit_sqlite_api()->sqlite3_column_type)
#define sqlite3_errmsg (bbit_sqlite_api()->sqlite3_errmsg)
#define sqlite3_exec (bbit_sqlite_api()->sqlite3_exec)
#define sqlite3_finalize (bbit_sqlite_api()->sqlite3_finalize)
#define sqlite3_free (bbit_sqlite_api()->sqlite3_free)
#define sqlite3_get_autocommit (bbit_sqlite_api()->sqlite3_get_autocommit)
#define sqlite3_last_insert_rowid (bbit_sqlite_api()->sqlite3_last_insert_rowid)
#define sqlite3_open_v2 (bbit_sqlite_api()->sqlite3_open_v2)
#define sqlite3_prepare_v2 (bbit_sqlite_api()->sqlite3_prepare_v2)
#define sqlite3_reset (bbit_sqlite_api()->sqlite3_reset)
#define sqlite3_step (bbit_sqlite_api()->sqlite3_step)
#endif

#endif
