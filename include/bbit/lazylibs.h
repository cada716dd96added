/* libcurl, libmicrohttpd, SQLite, libarchive, zlib and libcrypto are loaded when
 * first used, not at startup: with their dependencies (gnutls, krb5, ldap,
 * libxml2, icu, ...) they were 40 shared objects and ~25 ms of CPU at every
 * command's start, and most commands use one of them or none. libcrypto
 * alone (21,000 relocations) cost 3 ms of each start: SHA-256 runs on the
 * CPU's SHA extensions where it has them (core/sha256.c), so OpenSSL is
 * only loaded for scrypt, random bytes and SHA-256 on other CPUs.
 *
 * Include this instead of <curl/curl.h>, <microhttpd.h>, <sqlite3.h>,
 * <archive.h> and <archive_entry.h>, <zlib.h>, or OpenSSL's headers: every
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
#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>
/* SHA256_* are deprecated in OpenSSL 3 (see core/sha256.c): the tables
 * below take their types, which would warn in every file including this */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

/* Starts loading lib on another thread (once per process): a command about
 * to need it overlaps the load (libcurl ~13 ms, libarchive ~6 ms of dynamic
 * linking here) with its other work; the first use waits for the load. */
enum bbit_lazylib { BBIT_LAZY_CURL, BBIT_LAZY_ARCHIVE };
void bbit_lazylibs_prefetch(enum bbit_lazylib lib);

#define BBIT_CURL_FUNCTIONS(X)                                                                    \
    X(curl_easy_cleanup) X(curl_easy_getinfo) X(curl_easy_init) X(curl_easy_setopt)               \
    X(curl_easy_strerror) X(curl_free) X(curl_global_cleanup) X(curl_global_init)                 \
    X(curl_multi_add_handle) X(curl_multi_cleanup) X(curl_multi_info_read) X(curl_multi_init)     \
    X(curl_multi_perform) X(curl_multi_poll) X(curl_multi_remove_handle) X(curl_multi_strerror)   \
    X(curl_slist_append) X(curl_slist_free_all) X(curl_url) X(curl_url_cleanup) X(curl_url_get)   \
    X(curl_url_set)

#define BBIT_MHD_FUNCTIONS(X)                                                                     \
    X(MHD_add_response_header) X(MHD_create_response_from_buffer)                                 \
    X(MHD_create_response_from_fd_at_offset64) X(MHD_destroy_response)                            \
    X(MHD_get_connection_info)                                                                    \
    X(MHD_get_daemon_info) X(MHD_lookup_connection_value) X(MHD_queue_response)                   \
    X(MHD_start_daemon) X(MHD_stop_daemon)

#define BBIT_SQLITE_FUNCTIONS(X)                                                                  \
    X(sqlite3_bind_int) X(sqlite3_bind_int64) X(sqlite3_bind_text) X(sqlite3_busy_timeout)        \
    X(sqlite3_changes) X(sqlite3_close) X(sqlite3_column_int) X(sqlite3_column_int64)             \
    X(sqlite3_column_text) X(sqlite3_column_type) X(sqlite3_errmsg) X(sqlite3_exec)               \
    X(sqlite3_finalize) X(sqlite3_free) X(sqlite3_get_autocommit) X(sqlite3_last_insert_rowid)    \
    X(sqlite3_next_stmt) X(sqlite3_open_v2) X(sqlite3_prepare_v2) X(sqlite3_reset) X(sqlite3_step)

#define BBIT_ARCHIVE_FUNCTIONS(X) \
    X(archive_entry_filetype) X(archive_entry_free) X(archive_entry_hardlink) \
    X(archive_entry_new) X(archive_entry_pathname) X(archive_entry_pathname_utf8) \
    X(archive_entry_perm) X(archive_entry_set_filetype) X(archive_entry_set_gid) \
    X(archive_entry_set_mtime) X(archive_entry_set_pathname_utf8) X(archive_entry_set_perm) \
    X(archive_entry_set_size) X(archive_entry_set_uid) X(archive_entry_size) \
    X(archive_entry_symlink) X(archive_error_string) X(archive_read_data) X(archive_read_free) \
    X(archive_read_new) X(archive_read_next_header) X(archive_read_open_fd) \
    X(archive_read_support_filter_bzip2) X(archive_read_support_filter_gzip) \
    X(archive_read_support_filter_xz) X(archive_read_support_filter_zstd) \
    X(archive_read_support_format_tar) X(archive_set_error) X(archive_write_add_filter_gzip) \
    X(archive_write_add_filter_none) X(archive_write_add_filter_zstd) X(archive_write_close) \
    X(archive_write_data) X(archive_write_disk_new) X(archive_write_disk_set_options) \
    X(archive_write_finish_entry) X(archive_write_free) X(archive_write_header) \
    X(archive_write_new) X(archive_write_open) X(archive_write_open_fd) \
    X(archive_write_set_bytes_in_last_block) X(archive_write_set_format_pax_restricted) \
    X(archive_write_set_options)

#define BBIT_ZLIB_FUNCTIONS(X) X(crc32) X(deflate) X(deflateEnd) X(deflateInit2_)

#define BBIT_CRYPTO_FUNCTIONS(X) \
    X(CRYPTO_memcmp) X(EVP_PBE_scrypt) X(OPENSSL_cleanse) X(RAND_bytes) X(SHA256_Final) \
    X(SHA256_Init) X(SHA256_Update)

#define BBIT_LAZY_FIELD(name) __typeof__(name) *name;
struct bbit_curl_api { BBIT_CURL_FUNCTIONS(BBIT_LAZY_FIELD) };
struct bbit_mhd_api { BBIT_MHD_FUNCTIONS(BBIT_LAZY_FIELD) };
struct bbit_sqlite_api { BBIT_SQLITE_FUNCTIONS(BBIT_LAZY_FIELD) };
struct bbit_archive_api { BBIT_ARCHIVE_FUNCTIONS(BBIT_LAZY_FIELD) };
struct bbit_zlib_api { BBIT_ZLIB_FUNCTIONS(BBIT_LAZY_FIELD) };
struct bbit_crypto_api { BBIT_CRYPTO_FUNCTIONS(BBIT_LAZY_FIELD) };
#undef BBIT_LAZY_FIELD

/* The tables, loaded on first call (thread-safe; they never change after). */
const struct bbit_curl_api *bbit_curl_api(void);
const struct bbit_mhd_api *bbit_mhd_api(void);
const struct bbit_sqlite_api *bbit_sqlite_api(void);
const struct bbit_archive_api *bbit_archive_api(void);
const struct bbit_zlib_api *bbit_zlib_api(void);
const struct bbit_crypto_api *bbit_crypto_api(void);

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
#define MHD_add_response_header (bbit_mhd_api()->MHD_add_response_header)
#define MHD_create_response_from_buffer (bbit_mhd_api()->MHD_create_response_from_buffer)
#define MHD_create_response_from_fd_at_offset64 (bbit_mhd_api()->MHD_create_response_from_fd_at_offset64)
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
#define sqlite3_next_stmt (bbit_sqlite_api()->sqlite3_next_stmt)
#define sqlite3_open_v2 (bbit_sqlite_api()->sqlite3_open_v2)
#define sqlite3_prepare_v2 (bbit_sqlite_api()->sqlite3_prepare_v2)
#define sqlite3_reset (bbit_sqlite_api()->sqlite3_reset)
#define sqlite3_step (bbit_sqlite_api()->sqlite3_step)
#define archive_entry_filetype (bbit_archive_api()->archive_entry_filetype)
#define archive_entry_free (bbit_archive_api()->archive_entry_free)
#define archive_entry_hardlink (bbit_archive_api()->archive_entry_hardlink)
#define archive_entry_new (bbit_archive_api()->archive_entry_new)
#define archive_entry_pathname (bbit_archive_api()->archive_entry_pathname)
#define archive_entry_pathname_utf8 (bbit_archive_api()->archive_entry_pathname_utf8)
#define archive_entry_perm (bbit_archive_api()->archive_entry_perm)
#define archive_entry_set_filetype (bbit_archive_api()->archive_entry_set_filetype)
#define archive_entry_set_gid (bbit_archive_api()->archive_entry_set_gid)
#define archive_entry_set_mtime (bbit_archive_api()->archive_entry_set_mtime)
#define archive_entry_set_pathname_utf8 (bbit_archive_api()->archive_entry_set_pathname_utf8)
#define archive_entry_set_perm (bbit_archive_api()->archive_entry_set_perm)
#define archive_entry_set_size (bbit_archive_api()->archive_entry_set_size)
#define archive_entry_set_uid (bbit_archive_api()->archive_entry_set_uid)
#define archive_entry_size (bbit_archive_api()->archive_entry_size)
#define archive_entry_symlink (bbit_archive_api()->archive_entry_symlink)
#define archive_error_string (bbit_archive_api()->archive_error_string)
#define archive_read_data (bbit_archive_api()->archive_read_data)
#define archive_read_free (bbit_archive_api()->archive_read_free)
#define archive_read_new (bbit_archive_api()->archive_read_new)
#define archive_read_next_header (bbit_archive_api()->archive_read_next_header)
#define archive_read_open_fd (bbit_archive_api()->archive_read_open_fd)
#define archive_read_support_filter_bzip2 (bbit_archive_api()->archive_read_support_filter_bzip2)
#define archive_read_support_filter_gzip (bbit_archive_api()->archive_read_support_filter_gzip)
#define archive_read_support_filter_xz (bbit_archive_api()->archive_read_support_filter_xz)
#define archive_read_support_filter_zstd (bbit_archive_api()->archive_read_support_filter_zstd)
#define archive_read_support_format_tar (bbit_archive_api()->archive_read_support_format_tar)
#define archive_set_error (bbit_archive_api()->archive_set_error)
#define archive_write_add_filter_gzip (bbit_archive_api()->archive_write_add_filter_gzip)
#define archive_write_add_filter_none (bbit_archive_api()->archive_write_add_filter_none)
#define archive_write_add_filter_zstd (bbit_archive_api()->archive_write_add_filter_zstd)
#define archive_write_close (bbit_archive_api()->archive_write_close)
#define archive_write_data (bbit_archive_api()->archive_write_data)
#define archive_write_disk_new (bbit_archive_api()->archive_write_disk_new)
#define archive_write_disk_set_options (bbit_archive_api()->archive_write_disk_set_options)
#define archive_write_finish_entry (bbit_archive_api()->archive_write_finish_entry)
#define archive_write_free (bbit_archive_api()->archive_write_free)
#define archive_write_header (bbit_archive_api()->archive_write_header)
#define archive_write_new (bbit_archive_api()->archive_write_new)
#define archive_write_open (bbit_archive_api()->archive_write_open)
#define archive_write_open_fd (bbit_archive_api()->archive_write_open_fd)
#define archive_write_set_bytes_in_last_block (bbit_archive_api()->archive_write_set_bytes_in_last_block)
#define archive_write_set_format_pax_restricted (bbit_archive_api()->archive_write_set_format_pax_restricted)
#define archive_write_set_options (bbit_archive_api()->archive_write_set_options)
#define crc32 (bbit_zlib_api()->crc32)
#define deflate (bbit_zlib_api()->deflate)
#define deflateEnd (bbit_zlib_api()->deflateEnd)
#define deflateInit2_ (bbit_zlib_api()->deflateInit2_)
#define CRYPTO_memcmp (bbit_crypto_api()->CRYPTO_memcmp)
#define EVP_PBE_scrypt (bbit_crypto_api()->EVP_PBE_scrypt)
#define OPENSSL_cleanse (bbit_crypto_api()->OPENSSL_cleanse)
#define RAND_bytes (bbit_crypto_api()->RAND_bytes)
#define SHA256_Final (bbit_crypto_api()->SHA256_Final)
#define SHA256_Init (bbit_crypto_api()->SHA256_Init)
#define SHA256_Update (bbit_crypto_api()->SHA256_Update)
#endif

#endif
