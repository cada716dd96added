/* Loads libcurl, libmicrohttpd, SQLite, libarchive, zlib and libcrypto on first use: see lazylibs.h. */
#define BBIT_LAZYLIBS_IMPL
#include "bbit/lazylibs.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a function pointer of a table looks up. */
struct slot {
    const char *name;
    void **at;
};

/* Opens soname and fills every slot; a missing library or function stops
 * bbit (exit 70) with what to install: nothing can go on without it. */
static void load(const char *soname, const char *package, const struct slot *slots, size_t n)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "bbit: cannot load %s (%s): install it with `apt-get install %s`\n",
                soname, dlerror(), package);
        exit(70);
    }
    for (size_t i = 0; i < n; i++) {
        *slots[i].at = dlsym(h, slots[i].name);
        if (!*slots[i].at) {
            fprintf(stderr, "bbit: %s has no %s: it is too old (install a newer %s)\n", soname,
                    slots[i].name, package);
            exit(70);
        }
    }
}

#define BBIT_LAZY_SLOT(name) {#name, (void **)&api->name},

/* The table of library NAME (struct bbit_NAME_api, its FUNCTIONS list), its
 * loader and bbit_NAME_api(): loaded once, on the first call. */
#define BBIT_LAZY_LIB(NAME, FUNCTIONS, SONAME, PACKAGE)                                          \
    static struct bbit_##NAME##_api NAME;                                                        \
    static pthread_once_t NAME##_once = PTHREAD_ONCE_INIT;                                       \
    static void load_##NAME(void)                                                                \
    {                                                                                            \
        struct bbit_##NAME##_api *api = &NAME;                                                   \
        const struct slot slots[] = {FUNCTIONS(BBIT_LAZY_SLOT)};                                 \
        load(SONAME, PACKAGE, slots, sizeof slots / sizeof *slots);                              \
    }                                                                                            \
    const struct bbit_##NAME##_api *bbit_##NAME##_api(void)                                      \
    {                                                                                            \
        pthread_once(&NAME##_once, load_##NAME);                                                 \
        return &NAME;                                                                            \
    }

BBIT_LAZY_LIB(curl, BBIT_CURL_FUNCTIONS, "libcurl.so.4", "libcurl4")
BBIT_LAZY_LIB(mhd, BBIT_MHD_FUNCTIONS, "libmicrohttpd.so.12", "libmicrohttpd12")
BBIT_LAZY_LIB(sqlite, BBIT_SQLITE_FUNCTIONS, "libsqlite3.so.0", "libsqlite3-0")
BBIT_LAZY_LIB(archive, BBIT_ARCHIVE_FUNCTIONS, "libarchive.so.13", "libarchive13")
BBIT_LAZY_LIB(zlib, BBIT_ZLIB_FUNCTIONS, "libz.so.1", "zlib1g")
BBIT_LAZY_LIB(crypto, BBIT_CRYPTO_FUNCTIONS, "libcrypto.so.3", "libssl3")

/* Prefetching: a thread dlopens the library; the dynamic linker's lock
 * makes a first use on the main thread wait for it. The threads are joined
 * at exit (a library's constructors must not run while exit runs
 * destructors; main.c's _exit runs none) and block every signal (they go to
 * the main thread). */
static pthread_t prefetchers[2];
static int nprefetchers;
static pthread_mutex_t prefetch_lock = PTHREAD_MUTEX_INITIALIZER;

/* libcurl's global init (OpenSSL's among others, ~2 ms) is done here too
 * when libcurl says it is thread-safe (7.84+): the first request then only
 * counts one more reference. */
static void prefetch_curl_init(void *h)
{
    curl_version_info_data *(*info)(CURLversion);
    CURLcode (*init)(long);
    void *pi = dlsym(h, "curl_version_info"), *pg = dlsym(h, "curl_global_init");
    if (!pi || !pg)
        return;
    memcpy(&info, &pi, sizeof pi);
    memcpy(&init, &pg, sizeof pg);
    if (info(CURLVERSION_NOW)->features & CURL_VERSION_THREADSAFE)
        init(CURL_GLOBAL_DEFAULT);
}

/* Best effort: the library and its dependencies are mapped and relocated,
 * so the loader's own dlopen at first use finds them done. A missing
 * library is only reported then (by load), when a command needs it. */
static void *prefetch(void *soname)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL); /* kept open: the first use opens it again */
    if (h && strcmp(soname, "libcurl.so.4") == 0)
        prefetch_curl_init(h);
    return NULL;
}

static void join_prefetchers(void)
{
    pthread_mutex_lock(&prefetch_lock);
    for (int i = 0; i < nprefetchers; i++)
        pthread_join(prefetchers[i], NULL);
    nprefetchers = 0;
    pthread_mutex_unlock(&prefetch_lock);
}

void bbit_lazylibs_prefetch(enum bbit_lazylib lib)
{
    static bool started[2];
    pthread_mutex_lock(&prefetch_lock);
    if (!started[lib]) {
        started[lib] = true;
        if (nprefetchers == 0)
            atexit(join_prefetchers);
        /* without a thread the library is simply loaded at first use */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited by the thread */
        if (pthread_create(&prefetchers[nprefetchers], NULL, prefetch,
                           lib == BBIT_LAZY_CURL ? "libcurl.so.4" : "libarchive.so.13") == 0)
            nprefetchers++;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_mutex_unlock(&prefetch_lock);
}
