/* Red team: the container's root watches for every new process in the container and
 * tries to catch it: PTRACE_SEIZE, and pidfd_getfd of each of its first 64 fds. Each
 * success goes to LOG as a line `CAUGHT <how> pid=<pid> comm=<comm> [fd=<n> -> <target>]`.
 * Runs in the background for DURATION_MS, then writes `done`.
 *
 * usage: catch DURATION_MS LOG
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEEN 65536
static char seen[MAX_SEEN];

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void comm_of(int pid, char *buf, size_t len) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    int fd = open(path, O_RDONLY);
    buf[0] = 0;
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        n = 0;
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
}

/* One attempt; returns whether anything was caught. */
static int try_catch(FILE *log, int pid) {
    char comm[64];
    int caught = 0;
    comm_of(pid, comm, sizeof comm);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd >= 0) {
        for (int fd = 0; fd < 64; fd++) {
            int got = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
            if (got < 0)
                continue;
            char link[64], target[256];
            snprintf(link, sizeof link, "/proc/self/fd/%d", got);
            ssize_t n = readlink(link, target, sizeof target - 1);
            target[n < 0 ? 0 : n] = 0;
            /* Named as it is now that it is caught: a process that executed a program
             * meanwhile is the container's own, and fair game. */
            comm_of(pid, comm, sizeof comm);
            fprintf(log, "CAUGHT getfd pid=%d comm=%s fd=%d -> %s\n", pid, comm, fd, target);
            close(got);
            caught = 1;
        }
        close(pidfd);
    }
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) {
        comm_of(pid, comm, sizeof comm);
        fprintf(log, "CAUGHT seize pid=%d comm=%s\n", pid, comm);
        ptrace(PTRACE_DETACH, pid, 0, 0);
        caught = 1;
    }
    fflush(log);
    return caught;
}

/* Keeps trying a new process while it has not executed a program yet (its name is still
 * the one it was forked with), so that a short window is not missed. */
static void hunt(FILE *log, int pid) {
    char first[64], comm[64];
    comm_of(pid, first, sizeof first);
    for (int i = 0; i < 2000; i++) {
        if (try_catch(log, pid))
            return;
        comm_of(pid, comm, sizeof comm);
        if (!comm[0] || strcmp(comm, first) != 0)
            return;
    }
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    long duration = atol(argv[1]);
    FILE *log = fopen(argv[2], "w");
    if (!log)
        return 1;
    if (fork() != 0)
        return 0;
    setsid();
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0), dup2(null, 1), dup2(null, 2);
    int self = getpid();
    long end = now_ms() + duration;
    /* Everything already there is not new. */
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && (e = readdir(d));) {
        int pid = atoi(e->d_name);
        if (pid > 0 && pid < MAX_SEEN)
            seen[pid] = 1;
    }
    if (d)
        closedir(d);
    fprintf(log, "watching\n");
    fflush(log);
    while (now_ms() < end) {
        d = opendir("/proc");
        for (struct dirent *e; d && (e = readdir(d));) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid >= MAX_SEEN || pid == self || seen[pid])
                continue;
            seen[pid] = 1;
            hunt(log, pid);
        }
        if (d)
            closedir(d);
    }
    fprintf(log, "done\n");
    fclose(log);
    return 0;
}
