// timeit: runs a command and writes what it cost, for bench/run.
//
//   timeit OUT CMD [ARGS...]
//
// Writes one line to OUT: "<wall seconds> <user seconds> <sys seconds> <max RSS KB>"
// and exits with the command's status (128+N when a signal N ended it).
// The wall time runs from just before the command is spawned to its exit:
// the cost of starting this timer from a shell (fork and exec of a large
// process, several ms on a VM) is not counted, for bbit and git alike.
// CPU and RSS come from wait4's rusage (the command and its children).
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: timeit OUT CMD [ARGS...]\n");
        return 2;
    }
    FILE *out = fopen(argv[1], "we"); /* not inherited by the command */
    if (!out) {
        perror(argv[1]);
        return 2;
    }
    pid_t pid;
    double t0 = now();
    int rc = posix_spawnp(&pid, argv[2], NULL, NULL, argv + 2, environ);
    if (rc != 0) {
        fprintf(stderr, "timeit: cannot run %s\n", argv[2]);
        return 127;
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) {
        perror("timeit: wait4");
        return 2;
    }
    double t1 = now();
    fprintf(out, "%.6f %.3f %.3f %ld\n", t1 - t0,
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss);
    if (fclose(out) != 0)
        return 2;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
